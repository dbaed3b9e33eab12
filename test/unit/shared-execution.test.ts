/**
 * Shared executors: subscriptions with the same document, operation,
 * variables and scopes share one SharedExecutor (one ExecutionArgs and
 * context, not one per subscription); different variables or scopes do not;
 * a subscription keeps executing after the one whose args the executor holds ends;
 * an executor runs the operation compiled by graphql-jit, with the results
 * graphql-js gives, and falls back to graphql-js when it does not compile.
 */
import { buildSchema, execute, parse, type ExecutionArgs, type ExecutionResult, type GraphQLObjectType } from 'graphql';
import { describe, expect, it } from 'vitest';
import { LiveStream } from '../../src/delivery/live-stream.js';
import { compiledExecutionStats, SharedExecutor, takeSharedSubscription, useSharedSubscriptionExecution, type SharedSubscription } from '../../src/delivery/shared-execution.js';

/** A source event: the root value of its execution (the default resolver reads `ticks`). */
type Ev = { offset: number; ticks: { n: number } };

const schema = buildSchema(`
  type Query { ok: Boolean }
  type Ev { n: Int }
  type Subscription { ticks(step: Int!): Ev }
`);
const document = parse('subscription($step: Int!) { ticks(step: $step) { n } }');

/** The plugin's subscribe function (what envelop would call). */
function sharedSubscribe(): (args: ExecutionArgs) => Promise<unknown> {
  let fn: ((args: ExecutionArgs) => Promise<unknown>) | undefined;
  const plugin = useSharedSubscriptionExecution() as { onSubscribe(p: { setSubscribeFn(f: unknown): void }): void };
  plugin.onSubscribe({ setSubscribeFn: (f) => (fn = f as typeof fn) });
  return fn!;
}

/** Subscribes with a fresh context; returns the stream and what the transport would take. */
async function subscribe(step: number, scopes: string[]): Promise<{ stream: LiveStream<Ev>; shared: SharedSubscription }> {
  const stream = new LiveStream<Ev>({
    offsetOf: (e) => e.offset,
    isConflatable: () => false,
    isFinal: () => false,
    conflateAbove: 10,
    maxQueued: 10,
    onOverflow: () => {},
  });
  stream.goLive([]);
  const contextValue = { viewer: { scopes: new Set(scopes) } };
  const rootValue = { ticks: () => stream };
  const result = await sharedSubscribe()({ schema, document, variableValues: { step }, contextValue, rootValue });
  expect(Symbol.asyncIterator in (result as object)).toBe(true);
  const shared = takeSharedSubscription(contextValue);
  expect(shared?.source).toBe(stream);
  return { stream, shared: shared! };
}

describe('shared executors', () => {
  it('share one executor per document, variables and scopes; the second keeps executing after the first ends', async () => {
    const a = await subscribe(1, ['jobs:read']);
    const b = await subscribe(1, ['jobs:read']);
    expect(b.shared.executor).toBe(a.shared.executor);
    await a.stream.return();
    const result = (await b.shared.executor.execute({ offset: 1, ticks: { n: 7 } })) as ExecutionResult;
    expect(result).toEqual({ data: { ticks: { n: 7 } } });
    // A third subscriber while the second runs still shares it.
    const c = await subscribe(1, ['jobs:read']);
    expect(c.shared.executor).toBe(b.shared.executor);
  });

  it('does not share between different variables or different scopes', async () => {
    const a = await subscribe(2, ['jobs:read']);
    const otherVariables = await subscribe(3, ['jobs:read']);
    const otherScopes = await subscribe(2, ['jobs:read', 'jobs:write']);
    expect(otherVariables.shared.executor).not.toBe(a.shared.executor);
    expect(otherScopes.shared.executor).not.toBe(a.shared.executor);
    expect(otherScopes.shared.executor).not.toBe(otherVariables.shared.executor);
  });

  it('executes an event shared by subscribers once', async () => {
    const a = await subscribe(4, ['jobs:read']);
    const b = await subscribe(4, ['jobs:read']);
    const event = { offset: 1, ticks: { n: 9 } };
    const first = a.shared.executor.execute(event);
    expect(b.shared.executor.execute(event)).toBe(first);
  });
});

describe('compiled execution (graphql-jit behind SharedExecutor)', () => {
  const richSchema = buildSchema(`
    type Query { ok: Boolean }
    enum Kind { A B }
    interface Named { name: String! }
    type Item implements Named { name: String! size: Int }
    type Group implements Named { name: String! items: [Item!]! }
    type Ev { n: Int, kind: Kind, label(prefix: String = "#"): String, broken: String, things: [Named!]!, when: Float }
    type Subscription { ticks(step: Int!, after: String): Ev }
  `);
  // Field resolvers, as Pothos makes them (graphql-jit's default resolver reads properties; it does not call methods).
  const evFields = (richSchema.getType('Ev') as GraphQLObjectType).getFields();
  evFields.label!.resolve = (ev: { n: number }, { prefix }) => `${prefix}${ev.n}`;
  evFields.broken!.resolve = (ev: { n: number }) => {
    throw new Error(`broken ${ev.n}`);
  };
  const event = (n: number) => ({
    offset: n,
    ticks: {
      n,
      kind: n % 2 ? 'A' : 'B',
      things: [{ __typename: 'Item', name: 'i', size: n }, { __typename: 'Group', name: 'g', items: [{ name: 'j', size: 2 }] }],
      when: n / 10,
    },
  });
  const text = `subscription($step: Int!, $p: String) { t: ticks(step: $step) { n kind a: label b: label(prefix: $p) broken when
    things { __typename name ... on Item { size } ... on Group { items { name size } } } } }`;

  it('gives the results graphql-js gives, byte for byte, errors included, and compiles the operation once', async () => {
    const doc = parse(text);
    const before = compiledExecutionStats.compiled;
    const args = { schema: richSchema, document: doc, variableValues: { step: 1, p: '>' }, contextValue: {} };
    const executor = new SharedExecutor('rich', args);
    for (let n = 1; n <= 3; n++) {
      const mine = (await executor.execute(event(n))) as ExecutionResult;
      const reference = (await execute({ ...args, rootValue: event(n) })) as ExecutionResult;
      expect(JSON.stringify(mine)).toBe(JSON.stringify(reference));
      expect(mine.errors?.[0]?.message).toBe(`broken ${n}`);
      expect(mine.errors?.[0]?.path).toEqual(['t', 'broken']);
    }
    expect(compiledExecutionStats.compiled).toBe(before + 1);
  });

  it('falls back to graphql-js for an operation graphql-jit does not compile, with graphql-js answer', async () => {
    const before = compiledExecutionStats.fallbacks;
    const args = { schema: richSchema, document: parse(text), operationName: 'Missing', variableValues: { step: 1 }, contextValue: {} };
    const result = (await new SharedExecutor('missing', args).execute(event(1))) as ExecutionResult;
    expect(result.errors?.[0]?.message).toBe('Unknown operation named "Missing".');
    expect(compiledExecutionStats.fallbacks).toBe(before + 1);
  });
});
