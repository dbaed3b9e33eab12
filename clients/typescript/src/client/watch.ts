/**
 * Resumable streams: a subscription as an async iterator that survives
 * disconnects ({@link resumableStream}), and `watchJob` built on it.
 * graphql-ws's own retry would re-send the original subscribe payload (the
 * old `after`), so this module does the resubscription itself: each attempt
 * is a new subscription from the last cursor seen (`runProgress(runId,
 * after:)`, `jobUpdates(after:)`), and the server replays exactly what came
 * after it; streams without a cursor (`jobCommands`) drop what they already
 * yielded. Cursors are opaque: they are only ever passed back, never parsed.
 */
import type { DocumentTypeDecoration } from '@graphql-typed-document-node/core';
import type { Client } from 'graphql-ws';
import { CloseCode } from './close-codes.js';
import { fromGraphQLErrors, RunwatchError } from './errors.js';
import { WatchJobDocument, type WatchJobSubscription } from './generated/graphql.js';

/** One event of a job's stream, with the job's state right after it. */
export type ProgressEvent = WatchJobSubscription['runProgress'];

/** Reconnection policy: exponential backoff with jitter between attempts. */
export interface RetryPolicy {
  /** Consecutive failed attempts (no event received in between) before giving up with UNAVAILABLE. Default 20. */
  maxAttempts?: number | undefined;
  /** First delay in milliseconds. Default 250. */
  initialDelayMs?: number | undefined;
  /** Longest delay in milliseconds. Default 10000. */
  maxDelayMs?: number | undefined;
  /**
   * Until the first event arrives (the first connection, which fails at once when the URL is wrong), give up with
   * UNAVAILABLE after this many milliseconds even if attempts are left; an attempt still hanging then is ended.
   * Default: no bound besides `maxAttempts`. Once an event has arrived, only `maxAttempts` applies.
   */
  connectTimeoutMs?: number | undefined;
}

/** Options of every resumable stream (watchJob, jobUpdates, jobCommands). */
export interface StreamOptions {
  /** Start after this cursor (from an earlier event or `BatchJob.lastCursor`); default: a SNAPSHOT of now, then live. */
  after?: string | null | undefined;
  /** Aborting ends the iteration quietly (the loop just stops). */
  signal?: AbortSignal | undefined;
  retry?: RetryPolicy | undefined;
  /**
   * Called before each reconnect: the attempt number (1-based), the delay in ms, why, and whether this watch has
   * received an event yet (`connected: false`: the first connection has not succeeded).
   */
  onReconnect?: ((info: { attempt: number; delayMs: number; reason: string; connected: boolean }) => void) | undefined;
}

/** Options of `watchJob`. */
export interface WatchOptions extends StreamOptions {
  /** Also ITEM_RESULTS events (`event.items`: one reportItems batch each). Default false. */
  items?: boolean | undefined;
  /** Also LOG events (`event.logs`: the lines of one appendLogs call). Default false. */
  logs?: boolean | undefined;
}

const TERMINAL = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);

/** Is this the last event of its stream? (A terminal event, or a SNAPSHOT of a finished job.) */
export const isFinalEvent = (event: ProgressEvent): boolean => TERMINAL.has(event.job.status) && event.type !== 'PROGRESS';

/** Close codes after which reconnecting (and resuming) is right. 4403 only with a token provider. */
const RESUMABLE_CLOSE = new Set<number>([CloseCode.ServiceRestart, CloseCode.SlowConsumer, 1000, 1001, 1006, 1011, 1013, 4408, 4499]);

/** Decides what a failed attempt means: a fatal RunwatchError to throw, or a reason to retry. */
export function classifyStreamError(error: unknown, canRefreshToken: boolean): { fatal: RunwatchError } | { retry: string } {
  if (Array.isArray(error)) {
    const e = fromGraphQLErrors(error as { message: string; extensions?: Record<string, unknown> }[]);
    return e.code === 'SERVICE_UNAVAILABLE' ? { retry: `server: ${e.message}` } : { fatal: e };
  }
  const close = error as { code?: unknown; reason?: unknown } | null;
  if (close && typeof close.code === 'number') {
    const why = `connection closed ${close.code}${close.reason ? ` (${String(close.reason)})` : ''}`;
    if (close.code === CloseCode.Unauthorized) return { fatal: new RunwatchError('UNAUTHENTICATED', `${why}: the token is missing or invalid`) };
    if (close.code === CloseCode.Forbidden) {
      return canRefreshToken ? { retry: `${why}: token expired, fetching a fresh one` } : { fatal: new RunwatchError('UNAUTHENTICATED', `${why}: the token expired`) };
    }
    if (RESUMABLE_CLOSE.has(close.code)) return { retry: why };
    return { fatal: new RunwatchError('INTERNAL_SERVER_ERROR', why) };
  }
  const message = error instanceof Error ? error.message : (error as { message?: string } | null)?.message;
  return { retry: `connection failed${message ? `: ${message}` : ''}` };
}

/** Backoff before attempt `attempt` (1-based): initial·2^(attempt-1), capped, with ±25 % jitter. */
export function backoffMs(attempt: number, policy: RetryPolicy = {}): number {
  const base = Math.min(policy.maxDelayMs ?? 10_000, (policy.initialDelayMs ?? 250) * 2 ** (attempt - 1));
  return Math.round(base * (0.75 + Math.random() * 0.5));
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });

/**
 * What {@link resumableStream} needs to know about one kind of subscription: the document, how to (re)subscribe
 * from a position, where the item is in a result, its identity (for dedupe) and position (for resume), and
 * when the stream is over. `runProgress`, `jobUpdates` and `jobCommands` are each one of these.
 */
export interface StreamSpec<TData, TVariables, TItem> {
  /** What is streamed, for error messages: `job <id>`, `the job list`, `commands of job <id>`. */
  label: string;
  document: DocumentTypeDecoration<TData, TVariables> & { toString(): string };
  /** The variables of an attempt that resumes after `cursor` (null: from the start). */
  variables: (cursor: string | null) => TVariables;
  /** The item of one result (null: none in it). */
  pick: (data: TData) => TItem | null | undefined;
  /** The item's identity: an item whose key was already yielded is dropped (a replay after a resubscribe). */
  key: (item: TItem) => string;
  /** The position to resume after once the item is yielded (default: no cursor; every attempt starts afresh). */
  cursor?: ((item: TItem) => string | null) | undefined;
  /** True when the stream ends after this item (default: never; the server or the signal ends it). */
  isFinal?: ((item: TItem) => boolean) | undefined;
}

/**
 * A subscription as an async iterator that survives disconnects: each attempt is a new subscription from the
 * last position seen (`spec.variables(cursor)`), with exponential backoff between failed attempts; an item
 * whose key was already yielded is dropped, so the loop sees every item exactly once. Ends when the server
 * completes the subscription, after a final item (`spec.isFinal`), or when `signal` aborts.
 * The one loop behind watchJob, jobUpdates and jobCommands.
 * @throws RunwatchError NOT_FOUND, FORBIDDEN, BAD_USER_INPUT (from the server); UNAUTHENTICATED
 *   (close 4401, or 4403 without a token provider); UNAVAILABLE after `retry.maxAttempts` failed attempts, or when
 *   no item arrived within `retry.connectTimeoutMs`.
 */
export async function* resumableStream<TData, TVariables, TItem>(
  ws: Client,
  spec: StreamSpec<TData, TVariables, TItem>,
  opts: StreamOptions & { canRefreshToken: boolean },
): AsyncGenerator<TItem, void, undefined> {
  let cursor = opts.after ?? null;
  let failures = 0;
  let connected = false;
  const connectTimeoutMs = opts.retry?.connectTimeoutMs;
  const deadline = connectTimeoutMs === undefined ? Infinity : Date.now() + connectTimeoutMs;
  const gaveUp = (reason: string) =>
    new RunwatchError('UNAVAILABLE', `could not connect to watch ${spec.label} within ${Math.round(connectTimeoutMs! / 100) / 10} s: ${reason}`, true);
  // Insurance against a transport that re-sends an old subscribe, and the dedupe of streams without a cursor
  // (commands come again on every new subscription until answered): never yield a key twice.
  const seen = new Set<string>();
  while (!opts.signal?.aborted) {
    const iterator = ws.iterate<TData>({ query: spec.document.toString(), variables: spec.variables(cursor) as Record<string, unknown> });
    const stop = () => void iterator.return?.();
    opts.signal?.addEventListener('abort', stop, { once: true });
    // Before the first item, an attempt that hangs (a host that drops packets) is ended at the deadline.
    let timedOut = false;
    const connectTimer = connected || deadline === Infinity ? undefined : setTimeout(() => ((timedOut = true), stop()), Math.max(0, deadline - Date.now()));
    try {
      for (;;) {
        const step = await iterator.next();
        if (timedOut) throw new Error('no answer');
        if (step.done) return; // completed by the server (after the final item) or aborted
        const result = step.value;
        if (result.errors?.length) throw [...result.errors];
        const item = result.data ? spec.pick(result.data as TData) : null;
        if (!item) continue;
        clearTimeout(connectTimer);
        connected = true;
        failures = 0;
        const key = spec.key(item);
        if (seen.has(key)) continue;
        seen.add(key);
        if (seen.size > 10_000) seen.delete(seen.values().next().value!);
        cursor = spec.cursor?.(item) ?? cursor;
        yield item;
        if (spec.isFinal?.(item)) return;
      }
    } catch (error) {
      if (opts.signal?.aborted) return;
      const verdict = classifyStreamError(error, opts.canRefreshToken);
      if ('fatal' in verdict) throw verdict.fatal;
      if (timedOut) throw gaveUp(verdict.retry);
      failures++;
      const maxAttempts = opts.retry?.maxAttempts ?? 20;
      if (failures > maxAttempts) throw new RunwatchError('UNAVAILABLE', `gave up watching ${spec.label} after ${maxAttempts} attempts: ${verdict.retry}`, true);
      let delayMs = backoffMs(failures, opts.retry);
      if (!connected && deadline !== Infinity) {
        const left = deadline - Date.now();
        if (left <= 0) throw gaveUp(verdict.retry);
        delayMs = Math.min(delayMs, left);
      }
      opts.onReconnect?.({ attempt: failures, delayMs, reason: verdict.retry, connected });
      await sleep(delayMs, opts.signal);
    } finally {
      clearTimeout(connectTimer);
      opts.signal?.removeEventListener('abort', stop);
      await iterator.return?.();
    }
  }
}

/**
 * Streams a job's events over `ws` ({@link resumableStream} over `runProgress`), resuming from the last cursor,
 * so the loop sees every event exactly once. Ends after the final event (COMPLETED, FAILED, CANCELLED, or the
 * SNAPSHOT of a finished job) or when `signal` aborts. ITEM_RESULTS and LOG events only with `items` / `logs`.
 * @throws RunwatchError as {@link resumableStream}.
 */
export function watchJobStream(ws: Client, jobId: string, opts: WatchOptions & { canRefreshToken: boolean }): AsyncGenerator<ProgressEvent, void, undefined> {
  return resumableStream(
    ws,
    {
      label: `job ${jobId}`,
      document: WatchJobDocument,
      variables: (after) => ({ runId: jobId, after, items: opts.items ?? false, logs: opts.logs ?? false }),
      pick: (data: WatchJobSubscription) => data.runProgress,
      key: (event) => event.cursor,
      cursor: (event) => event.cursor,
      isFinal: isFinalEvent,
    },
    opts,
  );
}
