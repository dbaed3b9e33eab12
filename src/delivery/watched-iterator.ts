/**
 * Wraps a subscription's iterator to learn when and how it ends, and
 * optionally to end it at a deadline (token expiry) with one last value.
 *
 * Hand-written for the same reason as LiveStream: `return()` must reach the
 * inner iterator at once, even while a `next()` is waiting on a quiet stream.
 * At most one timer, and only when a deadline is given.
 */

/** How a watched iterator ended. */
export type EndReason = 'complete' | 'return' | 'error' | 'deadline';

/** Options of {@link watchIterator}. */
export interface WatchOptions<T> {
  /** Epoch ms at which the stream ends; null or undefined: never. */
  deadlineMs?: number | null;
  /** The last value delivered when the deadline passes (e.g. an UNAUTHENTICATED error result); none when absent. */
  onDeadline?: () => T;
  /** Called once when the stream ends, however it ends. */
  onEnd?: (reason: EndReason) => void;
  now?: () => number;
}

const DONE = Object.freeze({ value: undefined, done: true }) as IteratorResult<never>;
/** setTimeout's largest delay, ms (about 24.8 days); longer deadlines re-arm. */
const MAX_DELAY_MS = 2_147_483_647;

/** Returns an iterator that yields what `source` yields, reporting its end; see {@link WatchOptions}. */
export function watchIterator<T>(source: AsyncIterable<T>, opts: WatchOptions<T>): AsyncIterableIterator<T> {
  const inner = source[Symbol.asyncIterator]();
  const now = opts.now ?? Date.now;
  let ended = false;
  let expired = false;
  let lastSent = false;
  let timer: NodeJS.Timeout | undefined;
  let pending: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | null = null;

  const finish = (reason: EndReason) => {
    if (ended) return;
    ended = true;
    clearTimeout(timer);
    opts.onEnd?.(reason);
  };

  /** The value after expiry: the deadline value once, then done. */
  const last = (): IteratorResult<T> => {
    if (!lastSent && opts.onDeadline) {
      lastSent = true;
      return { value: opts.onDeadline(), done: false };
    }
    return DONE;
  };

  const expire = () => {
    if (ended) return;
    expired = true;
    finish('deadline');
    void Promise.resolve(inner.return?.()).catch(() => {});
    const p = pending;
    pending = null;
    p?.resolve(last());
  };

  const arm = (deadline: number) => {
    const delay = deadline - now();
    if (delay <= 0) return expire();
    timer = setTimeout(() => arm(deadline), Math.min(delay, MAX_DELAY_MS));
    timer.unref();
  };
  if (opts.deadlineMs != null) arm(opts.deadlineMs);

  const iterator: AsyncIterableIterator<T> = {
    next() {
      if (expired) return Promise.resolve(last());
      if (ended) return Promise.resolve(DONE);
      return new Promise<IteratorResult<T>>((resolve, reject) => {
        const mine = { resolve, reject };
        pending = mine;
        inner.next().then(
          (result) => {
            if (pending !== mine) return;
            pending = null;
            if (result.done) finish('complete');
            resolve(result);
          },
          (error: unknown) => {
            if (pending !== mine) return;
            pending = null;
            finish('error');
            reject(error);
          },
        );
      });
    },
    return() {
      finish('return');
      const p = pending;
      pending = null;
      p?.resolve(DONE);
      return Promise.resolve(inner.return?.()).then(() => DONE, () => DONE);
    },
    throw(error?: unknown) {
      finish('error');
      const p = pending;
      pending = null;
      p?.resolve(DONE);
      return inner.throw ? inner.throw(error) : Promise.reject(error);
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
