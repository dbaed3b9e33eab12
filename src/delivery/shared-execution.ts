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
 * (event object, operation) in a WeakMap on the event, so the rest reuse it.
 * Results are never mutated downstream (graphql-ws and Yoga's SSE serialize them).
 *
 * Sharing is keyed by the document object (Yoga's parser cache returns one
 * object per query text), the operation name, the variables and the caller's
 * scopes; events created for one subscriber (a SNAPSHOT) simply are not shared.
 */
import { createSourceEventStream, execute, type DocumentNode, type ExecutionArgs, type ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { mapAsyncIterator } from 'graphql-yoga';
import type { Context } from '../schema/context.js';

const documentIds = new WeakMap<DocumentNode, number>();
let nextDocumentId = 1;

function operationKey(args: ExecutionArgs, scopes: string): string {
  let id = documentIds.get(args.document);
  if (id === undefined) documentIds.set(args.document, (id = nextDocumentId++));
  return `${id}\u0000${args.operationName ?? ''}\u0000${JSON.stringify(args.variableValues ?? null)}\u0000${scopes}`;
}

/** Per event object: results by operation key. */
const resultsByEvent = new WeakMap<object, Map<string, ExecutionResult>>();

/** Counters for diagnostics and benchmarks: executions run vs reused. */
export const sharedExecutionStats = { executed: 0, reused: 0 };

async function sharedSubscribe(args: ExecutionArgs): Promise<AsyncIterable<ExecutionResult> | ExecutionResult> {
  const source = await createSourceEventStream(args);
  if (!(Symbol.asyncIterator in (source as object))) return source as ExecutionResult;
  const viewer = (args.contextValue as Partial<Context> | undefined)?.viewer;
  const key = operationKey(args, viewer ? [...viewer.scopes].sort().join(' ') : '');
  return mapAsyncIterator(source as AsyncIterable<unknown>, (payload) => {
    if (typeof payload !== 'object' || payload === null) return execute({ ...args, rootValue: payload }) as ExecutionResult;
    let results = resultsByEvent.get(payload);
    const cached = results?.get(key);
    if (cached) {
      sharedExecutionStats.reused++;
      return cached;
    }
    const result = execute({ ...args, rootValue: payload });
    if (result instanceof Promise) return result; // async resolvers: not shared
    sharedExecutionStats.executed++;
    if (!results) resultsByEvent.set(payload, (results = new Map()));
    results.set(key, result);
    return result;
  }) as AsyncIterable<ExecutionResult>;
}

/** The envelop plugin; add it to Yoga's plugins. */
export function useSharedSubscriptionExecution(): Plugin {
  return {
    onSubscribe({ setSubscribeFn }) {
      setSubscribeFn(sharedSubscribe as never);
    },
  };
}
