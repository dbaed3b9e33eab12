/**
 * A per-subscriber filter over a stream (trainingEvents `types` and
 * `minLogLevel`), hand-written for the same reason as LiveStream: `return()`
 * must reach the inner stream at once, even while `next()` waits on a quiet
 * topic, and even before the first `next()`. Yoga's Repeater-based `filter`
 * fails the last case: a Repeater starts its executor (which owns the source)
 * on the first `next()`, so a subscription completed while it was still being
 * set up never released its topic (tried; test/integration/subscription-leak
 * caught it under load). Events the filter hides still count for the inner
 * stream (a hidden final event still ends it).
 *
 * Push mode ({@link FilteredStream.pipe}) filters synchronously on the way to
 * the sink when the inner stream can push (a LiveStream); otherwise `pipe`
 * returns false and the stream is iterated as before.
 */
import { isPushSource, type PushSource, type StreamSink } from './live-stream.js';

/** The inner stream: an async iterator whose `return()` releases its subscription. */
export type ReleasableIterator<T> = AsyncIterator<T> & { return(): Promise<IteratorResult<T>> };

export class FilteredStream<T> implements AsyncIterableIterator<T>, PushSource<T> {
  constructor(
    private readonly inner: ReleasableIterator<T>,
    /** True for events the subscriber sees. */
    private readonly keep: (event: T) => boolean,
  ) {}

  async next(): Promise<IteratorResult<T>> {
    for (;;) {
      const result = await this.inner.next();
      if (result.done || this.keep(result.value)) return result;
    }
  }

  /**
   * Push mode: hands the inner stream a sink that drops hidden events (they
   * count as accepted, so a hidden event never pauses the stream).
   * @returns false when the inner stream cannot push (iterate this one instead).
   */
  pipe(sink: StreamSink<T>): boolean {
    if (!isPushSource<T>(this.inner)) return false;
    return this.inner.pipe(new FilteringSink(this.keep, sink));
  }

  /** Push mode: see {@link PushSource.resume}. */
  resume(): void {
    if (isPushSource<T>(this.inner)) this.inner.resume();
  }

  /** Ends the stream and releases the inner one at once. */
  return(): Promise<IteratorResult<T>> {
    return this.inner.return();
  }

  async throw(error?: unknown): Promise<IteratorResult<T>> {
    await this.inner.return();
    throw error;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

/** The sink {@link FilteredStream.pipe} hands its inner stream: hidden events count as accepted (a class: no closures per subscriber). */
class FilteringSink<T> implements StreamSink<T> {
  constructor(
    private readonly keep: (event: T) => boolean,
    private readonly sink: StreamSink<T>,
  ) {}

  next(event: T): boolean {
    return this.keep(event) ? this.sink.next(event) : true;
  }

  complete(): void {
    this.sink.complete();
  }

  error(error: unknown): void {
    this.sink.error(error);
  }
}
