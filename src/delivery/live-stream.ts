/**
 * The iterator handed to GraphQL for one subscription: replayed events
 * first, then live ones, deduplicated by offset, ending after a final event.
 *
 * Hand-written rather than an `async function*` on purpose: `return()` must
 * release the topic subscription at once, even while `next()` is waiting on a
 * quiet channel (a suspended async generator would defer it until the next
 * message; see STACK-NOTES "The subscription leak"). No timers: a subscriber
 * costs one queue and one listener.
 *
 * Two ways to consume it, one per stream:
 * - pull: the async-iterator interface (Yoga's SSE, tests);
 * - push: {@link LiveStream.pipe} hands events synchronously to a
 *   {@link StreamSink} (the WebSocket transport), with no promise per event. The
 *   sink says when it is full (returns false from `next`); events then wait in
 *   the same bounded, conflating queue as for a slow pull consumer until
 *   {@link LiveStream.resume}. The shape follows Node's writable-stream
 *   backpressure (`write()` returning false, resumed on 'drain').
 */
import { ConflatingQueue } from '../domain/conflation.js';
import type { StreamPosition } from '../domain/cursor.js';
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
  /**
   * For a shared channel's stream (src/transport/shared-channel.ts): called
   * once per event handed to each of its subscribers, with the event's
   * {@link stampOf} (the stream's own `onDelivered` is then unset, so each
   * delivery counts once).
   */
  onMemberDelivered?(stamp: DeliveryStamp): void;
  /**
   * What {@link onMemberDelivered} needs of an event, taken once per channel
   * event so that a shared channel's queued entries need not keep the event
   * (a small object; omitted: no per-member delivery hook runs).
   */
  stampOf?(event: T): DeliveryStamp;
  /**
   * The events a subscriber joining a shared channel starts with, made from
   * the newest event the channel delivered (`last`): for a job stream, one
   * SNAPSHOT of the job as that event left it. Omitted: the stream's
   * subscribers cannot share a channel.
   */
  joinStart?(last: T): T[];
  /**
   * For a shared channel's stream: the events a subscriber joining with its
   * own cursor (`after`, decoded) replays before it takes the channel's
   * events, given the newest event the channel delivered (`last`): the
   * stored events after `after` up to and including `last`'s offset, in
   * order (empty when the cursor is at or past `last`: the caller then drops
   * channel events at or below `after`), or null when the cursor cannot be
   * resumed — another epoch, ahead of the topic's head, or history no
   * longer covers it — and the joiner starts with {@link joinStart} instead
   * (the rule of topic-stream.ts `startEvents`). Omitted: joiners with a
   * cursor run on a stream of their own.
   * @throws what reading the head or history throws (DomainError NOT_FOUND, SERVICE_UNAVAILABLE).
   */
  joinAfter?(after: StreamPosition, last: T): Promise<T[] | null>;
}

/** What the delivery metric needs of an event: its type (a bounded label) and its creation time (epoch ms). */
export interface DeliveryStamp {
  type: string;
  timestamp: number;
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
  onDelivered?(event: DeliveryStamp): void;
}

/** What a transport lets a stream do to its connection. */
export interface StreamTransport {
  /** Drops a subscriber that cannot keep up (WebSocket: close with a documented code). */
  dropSlowConsumer?(): void;
  /**
   * Set when the subscription is a shared channel's (src/transport/shared-channel.ts),
   * which serves many subscribers with one stream: plugins that count
   * subscriptions add an observer here and count members through it instead
   * of counting the channel's own operation.
   */
  members?: MemberObserver[];
}

/** Told when a subscriber joins or leaves a shared channel (see {@link StreamTransport.members}). Must be cheap and never throw. */
export interface MemberObserver {
  joined(): void;
  left(): void;
}

/**
 * A synchronous consumer of a stream in push mode (see {@link LiveStream.pipe}).
 * Callbacks run on the delivery path: keep them cheap and never throw.
 */
export interface StreamSink<T> {
  /**
   * One event, in order. Return false when full: the stream then queues (and
   * conflates, and past its bound drops the subscriber) until `resume()`.
   */
  next(event: T): boolean;
  /** The stream ended by itself (after its final event). Not called after the consumer's own `return()`. */
  complete(): void;
  /** The stream ended with `error` (SlowConsumerError, or an `abort`). Not called after `return()`. */
  error(error: unknown): void;
}

/** A stream that can run in push mode: {@link LiveStream} and {@link FilteredStream} over one. */
export interface PushSource<T> {
  /**
   * Switches to push mode, delivering to `sink` from now on (queued and
   * replayed events first, synchronously, while the sink accepts them).
   * @returns false when this stream cannot push (nothing changed: iterate it instead).
   * @throws Error when already piped or when a `next()` is pending.
   */
  pipe(sink: StreamSink<T>): boolean;
  /** Delivers queued events again after the sink returned false, until it is full again or the queue is empty. */
  resume(): void;
  /** Ends the stream and releases its subscription at once (idempotent); the sink hears nothing more. */
  return(): Promise<IteratorResult<T>>;
}

/** Does `value` offer push mode ({@link PushSource})? */
export function isPushSource<T = unknown>(value: unknown): value is PushSource<T> {
  const v = value as Partial<PushSource<T>> | null;
  return typeof v?.pipe === 'function' && typeof v.resume === 'function' && typeof v.return === 'function';
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
    // Method syntax, not an arrow: tsx (esbuild keepNames) names arrows in object literals with defineProperty, a dictionary per closure.
    onOverflow() {
      settings.hooks?.onDropped?.(maxQueued);
      transport.dropSlowConsumer?.();
    },
    onConflated: settings.hooks?.onConflated,
    // A shared channel's stream counts a delivery per subscriber (onMemberDelivered), not its own.
    onDelivered: transport.members ? undefined : settings.hooks?.onDelivered,
    onMemberDelivered: settings.hooks?.onDelivered,
    // Every stream kind's events (job, activity, training) carry `type` and `timestamp`, which onDelivered reads.
    stampOf(event: unknown): DeliveryStamp {
      const { type, timestamp } = event as DeliveryStamp;
      return { type, timestamp };
    },
  } satisfies Partial<LiveStreamPolicy<unknown>>;
}

/** Error the stream ends with when its consumer is too slow (code SLOW_CONSUMER). */
export class SlowConsumerError extends DomainError {
  constructor() {
    super('SLOW_CONSUMER', 'subscriber too slow: resubscribe with `after` set to your last cursor');
    this.name = 'SlowConsumerError';
  }
}

export class LiveStream<T> implements AsyncIterableIterator<T>, PushSource<T> {
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
  /** Push mode: the consumer, whether it is full, and whether a flush is running (no re-entry). */
  private sink: StreamSink<T> | null = null;
  private paused = false;
  private flushing = false;
  /** The consumer ended the stream itself (`return`/`throw`): its sink is not told. */
  private returned = false;

  /** @param policy its rules; public for a shared channel, which queues per subscriber by the same rules. */
  constructor(readonly policy: LiveStreamPolicy<T>) {
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
   * A method: pass it on as `(event) => stream.push(event)`.
   */
  push(event: T): void {
    if (this.finished) return;
    if (!this.live) {
      this.buffered.push(event);
      return;
    }
    this.accept(event);
  }

  /** Sets the events to replay first, then switches to live, dropping buffered duplicates. */
  goLive(replay: T[]): void {
    this.replay = replay;
    const last = replay[replay.length - 1];
    if (last !== undefined) this.lastOffset = this.policy.offsetOf(last);
    this.live = true;
    const buffered = this.buffered;
    this.buffered = [];
    for (const event of buffered) this.accept(event);
    if (this.sink) this.flush();
    else this.wake();
  }

  /**
   * Push mode: from now on events go to `sink` synchronously (see
   * {@link PushSource.pipe}). A stream that already ended reports it at once.
   */
  pipe(sink: StreamSink<T>): boolean {
    if (this.sink) throw new Error('LiveStream is already piped');
    if (this.waiting) throw new Error('LiveStream has a pending next(): it cannot also be piped');
    this.sink = sink;
    if (this.finished) {
      const failure = this.failure;
      this.failure = null;
      if (failure) sink.error(failure);
      else sink.complete();
      return true;
    }
    if (this.live) this.flush();
    return true;
  }

  /** Push mode: the sink has room again; delivers queued events until it is full or the queue is empty. */
  resume(): void {
    if (!this.sink || this.finished) return;
    this.paused = false;
    this.flush();
  }

  /** Push mode: hands queued (replay first) events to the sink while it accepts them. */
  private flush(): void {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (!this.paused && !this.finished) {
        const event = this.take();
        if (event === undefined) break;
        this.handToSink(event);
      }
    } finally {
      this.flushing = false;
    }
  }

  /** Push mode: one event to the sink; a final event ends the stream after it. */
  private handToSink(event: T): void {
    const final = this.policy.isFinal(event);
    this.policy.onDelivered?.(event);
    if (!this.sink!.next(event)) this.paused = true;
    if (final) this.end();
  }

  private accept(event: T): void {
    const offset = this.policy.offsetOf(event);
    if (offset <= this.lastOffset && !this.policy.isReset?.(event)) return;
    this.lastOffset = offset;
    if (this.sink) {
      if (!this.paused && !this.flushing && this.replayIndex >= this.replay.length && this.queue.length === 0) {
        this.handToSink(event);
        return;
      }
    } else if (this.waiting && this.replayIndex >= this.replay.length && this.queue.length === 0) {
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

  /** Ends the stream and releases the subscription at once (idempotent). In push mode the sink hears nothing more. */
  return(): Promise<IteratorResult<T>> {
    this.returned = true;
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(error?: unknown): Promise<IteratorResult<T>> {
    this.returned = true;
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
    const sink = this.sink;
    this.sink = null; // end() must not report a plain completion to it
    this.end();
    if (sink) sink.error(error);
    else if (reject) reject(error);
    else this.failure = error;
  }

  /** Ends the stream once: clears the queues, settles a pending `next()` or tells the sink, then releases. */
  private end(): void {
    if (this.finished) return;
    this.finished = true;
    const sink = this.sink;
    this.sink = null;
    this.queue.clear();
    this.replay = [];
    this.buffered = [];
    const waiting = this.waiting;
    this.waiting = this.failWaiting = null;
    waiting?.({ value: undefined, done: true });
    const cleanup = this.cleanup;
    this.cleanup = null;
    cleanup?.();
    if (sink && !this.returned) sink.complete();
  }
}

/**
 * The rules of `source` when a shared channel can serve many subscribers
 * from it (src/transport/shared-channel.ts): a {@link LiveStream} whose
 * policy says how a joiner starts (`joinStart`); else null.
 */
export function channelPolicyOf<T>(source: unknown): LiveStreamPolicy<T> | null {
  return source instanceof LiveStream && typeof source.policy.joinStart === 'function' ? (source.policy as LiveStreamPolicy<T>) : null;
}
