/**
 * Shared execution of subscription events: an envelop plugin that executes
 * each event once per distinct operation, not once per subscriber.
 *
 * graphql-js runs a subscription as a source stream mapped through
 * `execute` per event per subscriber (graphql-js `subscribe`, spec
 * "MapSourceToResponseEvent"). When an event object is shared by many
 * subscribers — the topic fan-out hands every local subscriber the same
 * object — and they sent the same document with the same variables, those
 * executions return equal results. This plugin keeps the first result per
 * (event object, operation) on the event (a hidden property, {@link CacheSlot}), so the rest reuse it.
 * Results are never mutated downstream (graphql-ws and Yoga's SSE serialize them).
 *
 * Sharing is keyed by the document object (Yoga's parser cache returns one
 * object per query text), the operation name, the variables and the caller's
 * scopes; events created for one subscriber (a SNAPSHOT) simply are not shared.
 *
 * Each event is executed with the operation compiled once by graphql-jit
 * (`compiledFor`: per schema, document object and operation name), falling
 * back to graphql-js `execute` for operations it cannot compile.
 *
 * Subscriptions with the same key also share one {@link SharedExecutor}
 * (one ExecutionArgs and context per key while any of them runs), so a
 * subscription does not keep its own.
 *
 * For transports that push (src/transport/graphql-ws-server.ts) it also:
 * - registers each subscription's source stream and event executor under its
 *   context value ({@link takeSharedSubscription}), so the transport can reach
 *   the push-capable stream beneath the iterators envelop plugins wrap around it;
 * - serializes a shared result once ({@link serializeResult}: errors masked
 *   first, then `JSON.stringify`, cached per result object), so each further
 *   subscriber costs a frame splice and a send, not a stringify.
 * SSE gets the same shared text: a shared result carries a `stringify`
 * ({@link sharedJson}), which Yoga's result processors call instead of
 * `JSON.stringify` (graphql-yoga `plugins/result-processor/stringify.js`:
 * `result.stringify || JSON.stringify`), so every SSE subscriber of an event
 * gets the text made once.
 */
import { createSourceEventStream, execute, type DocumentNode, type ExecutionArgs, type ExecutionResult, type GraphQLSchema } from 'graphql';
import { compileQuery, isCompiledQuery, type CompiledQuery } from 'graphql-jit';
import type { Plugin } from 'graphql-yoga';

const documentIds = new WeakMap<DocumentNode, number>();
let nextDocumentId = 1;

function operationKey(args: ExecutionArgs, scopes: string): string {
  let id = documentIds.get(args.document);
  if (id === undefined) documentIds.set(args.document, (id = nextDocumentId++));
  return `${id}\u0000${args.operationName ?? ''}\u0000${JSON.stringify(args.variableValues ?? null)}\u0000${scopes}`;
}

/**
 * A cache entry kept on its object: a hidden (non-enumerable, symbol-keyed)
 * property, where a WeakMap keyed by the object would do the same job.
 * Why not a WeakMap: V8's scavenger keeps the values of a long-lived
 * (old-generation) WeakMap alive through a minor GC even when their young
 * key dies — the entry is cleared only after that scavenge — so each event's
 * cached result and serialized bytes were promoted to the old generation and
 * freed only at the next major GC. With ~18 KiB events that was about 60 MiB of
 * peak RSS at 333 events/s (issue 20; `npm run bench:stalled`, docs/benchmarks.md
 * "Issue 20, branch `stallrss`"). A property dies with its object.
 * Objects that are not extensible (frozen) are simply not cached.
 */
class CacheSlot<K extends object, V> {
  private readonly symbol: symbol;

  constructor(description: string) {
    this.symbol = Symbol(description);
  }

  get(target: K): V | undefined {
    return (target as Record<symbol, V | undefined>)[this.symbol];
  }

  set(target: K, value: V): void {
    if (Object.isExtensible(target)) Object.defineProperty(target, this.symbol, { value, writable: true, configurable: true });
  }
}

/** Per event object: results by operation key. */
const resultsByEvent = new CacheSlot<object, Map<string, ExecutionResult>>('runwatch.resultsByOperation');

/** Counters for diagnostics, tests and benchmarks: executions run vs reused, serializations (JSON texts, for WebSocket and SSE) run vs reused. */
export const sharedExecutionStats = { executed: 0, reused: 0, serialized: 0, serializedReused: 0 };

/** graphql-jit's compiled operations, by schema, document object and operation name; null: it could not compile that one. */
const compiledBySchema = new WeakMap<GraphQLSchema, WeakMap<DocumentNode, Map<string, CompiledQuery | null>>>();

/** Counters for diagnostics and tests: operations compiled by graphql-jit, and those it could not compile (run by graphql-js). */
export const compiledExecutionStats = { compiled: 0, fallbacks: 0 };

/**
 * The operation of `args` compiled by graphql-jit (https://github.com/zalando-incubator/graphql-jit: the
 * document's execution plan generated once as JavaScript, so an event's execution skips what graphql-js does
 * per call — variable coercion, building the execution context, collecting fields), once per schema, document
 * object and operation name; null when graphql-jit cannot compile it (then graphql-js `execute` runs it).
 */
function compiledFor(args: ExecutionArgs): CompiledQuery | null {
  let byDocument = compiledBySchema.get(args.schema);
  if (!byDocument) compiledBySchema.set(args.schema, (byDocument = new WeakMap()));
  let byName = byDocument.get(args.document);
  if (!byName) byDocument.set(args.document, (byName = new Map()));
  const name = args.operationName ?? '';
  let compiled = byName.get(name);
  if (compiled === undefined) {
    try {
      const made = compileQuery(args.schema, args.document, args.operationName ?? undefined, { disablingCapturingStackErrors: true });
      compiled = isCompiledQuery(made) ? made : null;
    } catch {
      compiled = null;
    }
    if (compiled) compiledExecutionStats.compiled++;
    else compiledExecutionStats.fallbacks++;
    byName.set(name, compiled);
  }
  return compiled;
}

/**
 * Executes `args`'s operation on one source event: compiled when graphql-jit could compile it, else graphql-js.
 * A compiled result with errors gets them first, as graphql-js orders them (so the JSON is the same text).
 */
function executeOne(args: ExecutionArgs, compiled: CompiledQuery | null, payload: unknown): ExecutionResult | Promise<ExecutionResult> {
  if (!compiled) return execute({ ...args, rootValue: payload });
  const result = compiled.query(payload, args.contextValue, args.variableValues as Record<string, unknown> | undefined) as ExecutionResult | Promise<ExecutionResult>;
  return result instanceof Promise ? result.then(errorsFirst) : errorsFirst(result);
}

/** `result` with `errors` (when it has some) before `data`, as graphql-js builds it. */
function errorsFirst(result: ExecutionResult): ExecutionResult {
  if (!result.errors) return result;
  const { errors, data, ...rest } = result;
  return { errors, data, ...rest };
}

/** Executes one source event for an operation, reusing the result another subscriber's execution left on the event. */
function executeShared(args: ExecutionArgs, key: string, payload: unknown, compiled: CompiledQuery | null): ExecutionResult | Promise<ExecutionResult> {
  if (typeof payload !== 'object' || payload === null) return executeOne(args, compiled, payload);
  let results = resultsByEvent.get(payload);
  const cached = results?.get(key);
  if (cached) {
    sharedExecutionStats.reused++;
    return cached;
  }
  const result = executeOne(args, compiled, payload);
  if (result instanceof Promise) return result; // async resolvers: not shared
  sharedExecutionStats.executed++;
  // Not enumerable: JSON.stringify and spreads (e.g. a masked copy of a result with errors) leave it out.
  Object.defineProperty(result, 'stringify', { value: sharedJson });
  if (!results) resultsByEvent.set(payload, (results = new Map()));
  results.set(key, result);
  return result;
}

/**
 * Executes the events of one operation key ({@link operationKey}) for every
 * subscription running it: one ExecutionArgs (the first subscriber's, with
 * its context) however many subscribe, so a subscription keeps a reference
 * to this object, not args and a GraphQL context of its own. Sound for the
 * same reason result sharing is: subscribers with equal keys get equal
 * results (the key holds the document, operation, variables and scopes).
 */
export class SharedExecutor {
  /** The operation compiled by graphql-jit (null: run by graphql-js); undefined until the first event. */
  private compiled: CompiledQuery | null | undefined = undefined;

  constructor(
    /** The operation key: document id, operation name, variables JSON and sorted scopes, NUL-separated. */
    readonly key: string,
    private readonly args: ExecutionArgs,
  ) {}

  /**
   * Executes one source event (shared per event object; a promise only with
   * async resolvers), with the operation compiled by graphql-jit when it
   * compiles (see {@link compiledFor}), else with graphql-js `execute`. Errors
   * of resolvers are in the result's `errors`, as graphql-js puts them.
   */
  execute(payload: unknown): ExecutionResult | Promise<ExecutionResult> {
    if (this.compiled === undefined) this.compiled = compiledFor(this.args);
    return executeShared(this.args, this.key, payload, this.compiled);
  }
}

/**
 * Live executors by operation key. Weak: an executor lives as long as a
 * subscription references it (nothing to release on the many ways a
 * subscription ends); the registry drops the entry once it is collected.
 */
const executors = new Map<string, WeakRef<SharedExecutor>>();
const forgetExecutor = new FinalizationRegistry<string>((key) => {
  const ref = executors.get(key);
  if (ref && ref.deref() === undefined) executors.delete(key);
});

/** The executor for `key`, made from `args` when no live subscription holds one. */
function executorFor(key: string, args: ExecutionArgs): SharedExecutor {
  const live = executors.get(key)?.deref();
  if (live) return live;
  const made = new SharedExecutor(key, args);
  executors.set(key, new WeakRef(made));
  forgetExecutor.register(made, key);
  return made;
}

/** One subscription as the transport may drive it in push mode. */
export interface SharedSubscription {
  /** The source stream the root field's `subscribe` resolver returned (a LiveStream, a FilteredStream, ...). */
  readonly source: AsyncIterable<unknown>;
  /** Executes source events into the operation's results: shared by every subscription with the same operation key. */
  readonly executor: SharedExecutor;
}

/** Subscriptions started, by the context value they were started with (one operation per context). */
const subscriptionsByContext = new WeakMap<object, SharedSubscription>();

/**
 * The subscription started with `contextValue` (by the envelop `subscribe`
 * this plugin serves), removed from the registry; undefined when none was
 * (a single result, or the plugin is not installed).
 */
export function takeSharedSubscription(contextValue: object): SharedSubscription | undefined {
  const found = subscriptionsByContext.get(contextValue);
  if (found) subscriptionsByContext.delete(contextValue);
  return found;
}

async function sharedSubscribe(args: ExecutionArgs): Promise<AsyncIterable<ExecutionResult> | ExecutionResult> {
  const source = await createSourceEventStream(args);
  if (!(Symbol.asyncIterator in (source as object))) return source as ExecutionResult;
  // Only the caller's scopes matter here (they decide which fields resolve); delivery knows no GraphQL context type.
  const viewer = (args.contextValue as { viewer?: { scopes: Iterable<string> } } | undefined)?.viewer;
  const key = operationKey(args, viewer ? [...viewer.scopes].sort().join(' ') : '');
  const executor = executorFor(key, args);
  if (typeof args.contextValue === 'object' && args.contextValue !== null) {
    subscriptionsByContext.set(args.contextValue, { source: source as AsyncIterable<unknown>, executor });
  }
  return new ExecutedStream((source as AsyncIterable<unknown>)[Symbol.asyncIterator](), executor);
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({ value: undefined, done: true });

/**
 * `source` with each event executed by `executor`: the response stream of
 * graphql-js `subscribe` (spec "MapSourceToResponseEvent"), as
 * `mapAsyncIterator` of @graphql-tools/utils makes it, but one object per
 * subscription instead of that function's closures (`next`, `return`,
 * `throw`, `mapResult`, `abruptClose` and their contexts: about 0.7 KB each
 * under tsx). An execution that throws ends the source (abrupt close) and
 * rejects that `next()`. Pull consumers (SSE) iterate it; the WebSocket push
 * path reaches the source beneath it ({@link takeSharedSubscription}) and
 * only calls `return()` at the end.
 */
class ExecutedStream implements AsyncIterableIterator<ExecutionResult> {
  constructor(
    private readonly source: AsyncIterator<unknown>,
    private readonly executor: SharedExecutor,
  ) {}

  async next(): Promise<IteratorResult<ExecutionResult>> {
    const step = await this.source.next();
    if (step.done) return DONE;
    try {
      return { value: await this.executor.execute(step.value), done: false };
    } catch (error) {
      await this.return().catch(() => undefined);
      throw error;
    }
  }

  return(): Promise<IteratorResult<ExecutionResult>> {
    return this.source.return ? this.source.return().then(() => DONE) : Promise.resolve(DONE);
  }

  throw(error?: unknown): Promise<IteratorResult<ExecutionResult>> {
    if (this.source.throw) return this.source.throw(error).then(() => DONE);
    return this.return().then(() => Promise.reject(error));
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/** Serialized results (UTF-8 JSON of the masked result), by result object. */
const serializedByResult = new CacheSlot<ExecutionResult, Buffer>('runwatch.serialized');
/** JSON texts of shared results, by result object. */
const jsonByResult = new CacheSlot<object, string>('runwatch.json');

/**
 * `JSON.stringify(value)`, computed once per object: the `stringify` of a
 * shared result (see the header), and the text {@link serializeResult} encodes.
 * Shared results are never mutated, so the text stays right. Yoga strips
 * internals from a result's errors before calling this, on a copy, which then
 * gets a text of its own.
 * @returns the JSON text ('' for undefined).
 */
export function sharedJson(value: unknown): string {
  if (typeof value !== 'object' || value === null) return JSON.stringify(value) ?? '';
  const cached = jsonByResult.get(value);
  if (cached !== undefined) {
    sharedExecutionStats.serializedReused++;
    return cached;
  }
  sharedExecutionStats.serialized++;
  const text = JSON.stringify(value);
  jsonByResult.set(value, text);
  return text;
}

/**
 * The UTF-8 JSON of `result` with its errors masked by `maskError` (each
 * error as GraphQLError's `toJSON`: message, locations, path, extensions),
 * computed once per result object: subscribers sharing a result share these
 * bytes. The masker must be the same for every caller (it is: one per server).
 * @returns bytes that must not be modified (they are shared).
 */
export function serializeResult(result: ExecutionResult, maskError: (error: unknown) => Error): Buffer {
  const cached = serializedByResult.get(result);
  if (cached) {
    sharedExecutionStats.serializedReused++;
    return cached;
  }
  const errors = result.errors;
  let bytes: Buffer;
  if (errors?.length) {
    sharedExecutionStats.serialized++;
    bytes = Buffer.from(JSON.stringify({ ...result, errors: errors.map((e) => errorJson(maskError(e))) }));
  } else {
    // The text SSE made, if any; else a text of our own, not cached: only the bytes are kept (one copy per result, not two).
    let text = jsonByResult.get(result);
    if (text === undefined) {
      sharedExecutionStats.serialized++;
      text = JSON.stringify(result);
    } else sharedExecutionStats.serializedReused++;
    bytes = Buffer.from(text);
  }
  serializedByResult.set(result, bytes);
  return bytes;
}

/** What a masked error looks like on the wire. */
function errorJson(error: Error): unknown {
  const toJSON = (error as { toJSON?: () => unknown }).toJSON;
  return typeof toJSON === 'function' ? toJSON.call(error) : { message: error.message };
}

/** The envelop plugin; add it to Yoga's plugins. */
export function useSharedSubscriptionExecution(): Plugin {
  return {
    onSubscribe({ setSubscribeFn }) {
      setSubscribeFn(sharedSubscribe as never);
    },
  };
}
