/**
 * The iterator handed to GraphQL for one subscription: replayed events
 * first, then live ones, deduplicated by offset, ending after a final event.
 *
 * Hand-written rather than an `async function*` on purpose: `return()` must
 * release the topic subscription at once, even while `next()` is waiting on a
 * quiet channel (a suspended async generator would defer it until the next
 * message; see STACK-NOTES "The subscription leak"). No timers: a subscriber
 * costs one queue and one listener.
 */
import { ConflatingQueue } from '../domain/conflation.js';
import { DomainError } from '../domain/errors.js';

/** How a {@link LiveStream} treats its events. */
export interface LiveStreamPolicy<T> {
  /** Position in the stream; events at or below the last delivered offset are dropped as duplicates. */
  offsetOf(event: T): number;
  /** May a newer event replace this one while the consumer lags? */
  isConflatable(event: T): boolean;
  /** Kind of a conflatable event: a newer one replaces only queued ones of its kind (default: all one kind). */
  conflationKey?(event: T): string;
  /** Does the stream end after this event? */
  isFinal(event: T): boolean;
  /**
   * Is this a fresh start (a SNAPSHOT after history was lost)? It is delivered
   * whatever its offset, and offsets count from it again.
   */
  isReset?(event: T): boolean;
  /** Queue length above which conflation starts (events). */
  conflateAbove: number;
  /** Most events queued for a lagging consumer before it is dropped. */
  maxQueued: number;
  /** Called once when the queue overflows; the stream then ends with `overflowError`. */
  onOverflow(): void;
  /** Called with the number of events conflated away (metrics). */
  onConflated?(count: number): void;
  /** Called once per event handed to the consumer (metrics: delivery count and latency). Must be cheap. */
  onDelivered?(event: T): void;
}

/** What streams report to metrics. Called synchronously on the delivery path: keep them cheap. */
export interface StreamHooks {
  /** Events replayed from history to a stream opened with `after`. */
  onReplayed?(count: number): void;
  /** Events conflated away in a lagging subscriber's queue. */
  onConflated?(count: number): void;
  /** A subscriber was dropped for lagging; `queued` events it had waiting were discarded. */
  onDropped?(queued: number): void;
  /** One event handed to one subscriber's transport (`type` is a bounded label; `timestamp` in epoch ms). */
  onDelivered?(event: { type: string; timestamp: number }): void;
}

/** What a transport lets a stream do to its connection. */
export interface StreamTransport {
  /** Drops a subscriber that cannot keep up (WebSocket: close with a documented code). */
  dropSlowConsumer?(): void;
}

/** Queue bounds and metrics hooks shared by every kind of stream. */
export interface StreamSettings {
  /** Queue length above which conflatable events conflate (events; default 64). */
  conflateAbove?: number;
  /** Most events queued for one lagging subscriber before it is dropped (default 1000). */
  maxQueued?: number;
  hooks?: StreamHooks;
}

/** The bounded-queue and metrics part of a {@link LiveStreamPolicy}, for one subscriber on `transport`. */
export function queuePolicy(settings: StreamSettings, transport: StreamTransport) {
  const maxQueued = settings.maxQueued ?? 1000;
  return {
    conflateAbove: settings.conflateAbove ?? 64,
    maxQueued,
    onOverflow: () => {
      settings.hooks?.onDropped?.(maxQueued);
      transport.dropSlowConsumer?.();
    },
    onConflated: settings.hooks?.onConflated,
    onDelivered: settings.hooks?.onDelivered,
  } satisfies Partial<LiveStreamPolicy<unknown>>;
}

/** Error the stream ends with when its consumer is too slow (code SLOW_CONSUMER). */
export class SlowConsumerError extends DomainError {
  constructor() {
    super('SLOW_CONSUMER', 'subscriber too slow: resubscribe with `after` set to your last cursor');
    this.name = 'SlowConsumerError';
  }
}

export class LiveStream<T> implements AsyncIterableIterator<T> {
  private replay: T[] = [];
  private replayIndex = 0;
  private readonly queue: ConflatingQueue<T>;
  private waiting: ((result: IteratorResult<T>) => void) | null = null;
  private failWaiting: ((error: unknown) => void) | null = null;
  private lastOffset = -1;
  private live = false;
  private buffered: T[] = [];
  private finished = false;
  private failure: unknown = null;
  private cleanup: (() => void) | null = null;

  constructor(private readonly policy: LiveStreamPolicy<T>) {
    this.queue = new ConflatingQueue<T>(policy.conflateAbove, policy.maxQueued, policy.isConflatable, policy.conflationKey);
  }

  /** Sets what releases the underlying subscription; runs at most once, when the stream ends. */
  onEnd(cleanup: () => void): void {
    if (this.finished) cleanup();
    else this.cleanup = cleanup;
  }

  /**
   * A live event from the topic. Before {@link goLive} it is buffered (the
   * subscription opens before history is read, so nothing falls in between).
   */
  push = (event: T): void => {
    if (this.finished) return;
    if (!this.live) {
      this.buffered.push(event);
      return;
    }
    this.accept(event);
  };

  /** Sets the events to replay first, then switches to live, dropping buffered duplicates. */
  goLive(replay: T[]): void {
    this.replay = replay;
    const last = replay[replay.length - 1];
    if (last !== undefined) this.lastOffset = this.policy.offsetOf(last);
    this.live = true;
    const buffered = this.buffered;
    this.buffered = [];
    for (const event of buffered) this.accept(event);
    this.wake();
  }

  private accept(event: T): void {
    const offset = this.policy.offsetOf(event);
    if (offset <= this.lastOffset && !this.policy.isReset?.(event)) return;
    this.lastOffset = offset;
    if (this.waiting && this.replayIndex >= this.replay.length && this.queue.length === 0) {
      this.deliver(event);
      return;
    }
    const before = this.queue.length;
    const result = this.queue.push(event);
    if (result === 'conflated') this.policy.onConflated?.(before + 1 - this.queue.length);
    if (result === 'overflow') {
      this.policy.onOverflow();
      this.fail(new SlowConsumerError());
    }
  }

  private deliver(event: T): void {
    const resolve = this.waiting!;
    this.waiting = this.failWaiting = null;
    if (this.policy.isFinal(event)) this.end();
    this.policy.onDelivered?.(event);
    resolve({ value: event, done: false });
  }

  private take(): T | undefined {
    if (this.replayIndex < this.replay.length) {
      const event = this.replay[this.replayIndex]!;
      this.replay[this.replayIndex++] = undefined as unknown as T;
      return event;
    }
    return this.live ? this.queue.shift() : undefined;
  }

  private wake(): void {
    if (!this.waiting) return;
    const event = this.take();
    if (event !== undefined) this.deliver(event);
  }

  next(): Promise<IteratorResult<T>> {
    if (this.failure) {
      const failure = this.failure;
      this.failure = null;
      return Promise.reject(failure);
    }
    if (this.finished) return Promise.resolve({ value: undefined, done: true });
    const event = this.take();
    if (event !== undefined) {
      if (this.policy.isFinal(event)) this.end();
      this.policy.onDelivered?.(event);
      return Promise.resolve({ value: event, done: false });
    }
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.failWaiting = reject;
    });
  }

  /** Ends the stream and releases the subscription at once. */
  return(): Promise<IteratorResult<T>> {
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(error?: unknown): Promise<IteratorResult<T>> {
    this.end();
    return Promise.reject(error);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** Ends the stream with `error`: a waiting or the next `next()` rejects with it. */
  abort(error: unknown): void {
    if (!this.finished) this.fail(error);
  }

  private fail(error: unknown): void {
    const reject = this.failWaiting;
    this.waiting = this.failWaiting = null; // end() must not resolve the waiting next() as done
    this.end();
    if (reject) reject(error);
    else this.failure = error;
  }

  private end(): void {
    if (this.finished) return;
    this.finished = true;
    this.queue.clear();
    this.replay = [];
    this.buffered = [];
    const waiting = this.waiting;
    this.waiting = this.failWaiting = null;
    waiting?.({ value: undefined, done: true });
    const cleanup = this.cleanup;
    this.cleanup = null;
    cleanup?.();
  }
}
