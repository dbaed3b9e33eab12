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
  return new WatchedIterator(source[Symbol.asyncIterator](), opts);
}

/**
 * The iterator {@link watchIterator} returns: a class rather than closures
 * over shared state, so that a subscription costs one object (tsx names every
 * arrow function kept in a variable with `defineProperty`, which gives each
 * one a property dictionary of its own).
 */
class WatchedIterator<T> implements AsyncIterableIterator<T> {
  private ended = false;
  private expired = false;
  private lastSent = false;
  private timer: NodeJS.Timeout | undefined = undefined;
  private pending: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | null = null;

  constructor(
    private readonly inner: AsyncIterator<T>,
    private readonly opts: WatchOptions<T>,
  ) {
    if (opts.deadlineMs != null) this.arm(opts.deadlineMs);
  }

  private finish(reason: EndReason): void {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.timer);
    this.opts.onEnd?.(reason);
  }

  /** The value after expiry: the deadline value once, then done. */
  private last(): IteratorResult<T> {
    if (!this.lastSent && this.opts.onDeadline) {
      this.lastSent = true;
      return { value: this.opts.onDeadline(), done: false };
    }
    return DONE;
  }

  private expire(): void {
    if (this.ended) return;
    this.expired = true;
    this.finish('deadline');
    void Promise.resolve(this.inner.return?.()).catch(() => {});
    const p = this.pending;
    this.pending = null;
    p?.resolve(this.last());
  }

  private arm(deadline: number): void {
    const delay = deadline - (this.opts.now ?? Date.now)();
    if (delay <= 0) return this.expire();
    this.timer = setTimeout(() => this.arm(deadline), Math.min(delay, MAX_DELAY_MS));
    this.timer.unref();
  }

  next(): Promise<IteratorResult<T>> {
    if (this.expired) return Promise.resolve(this.last());
    if (this.ended) return Promise.resolve(DONE);
    return new Promise<IteratorResult<T>>((resolve, reject) => {
      const mine = { resolve, reject };
      this.pending = mine;
      this.inner.next().then(
        (result) => {
          if (this.pending !== mine) return;
          this.pending = null;
          if (result.done) this.finish('complete');
          resolve(result);
        },
        (error: unknown) => {
          if (this.pending !== mine) return;
          this.pending = null;
          this.finish('error');
          reject(error);
        },
      );
    });
  }

  return(): Promise<IteratorResult<T>> {
    this.finish('return');
    const p = this.pending;
    this.pending = null;
    p?.resolve(DONE);
    return Promise.resolve(this.inner.return?.()).then(
      () => DONE,
      () => DONE,
    );
  }

  throw(error?: unknown): Promise<IteratorResult<T>> {
    this.finish('error');
    const p = this.pending;
    this.pending = null;
    p?.resolve(DONE);
    return this.inner.throw ? this.inner.throw(error) : Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
