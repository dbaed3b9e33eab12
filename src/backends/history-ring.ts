/**
 * The in-memory backend's event history: a fixed-capacity ring of a topic's
 * newest events, read with the one rule for whether it still covers a gap
 * (topic-log.ts `historyCovers`). Every topic log of the memory backend
 * (jobs' `job:<id>` included) keeps its history in one of these.
 */
import { historyCovers, type HistoryRead } from './topic-log.js';
import type { BusEvent } from './types.js';

/**
 * The newest `capacity` events of one topic, pushed in offset order with
 * consecutive offsets (the log store checks that: topic-log.ts
 * `assertConsecutive`). The array grows with the events up to `capacity`, so
 * a topic with few events costs few slots; then the oldest is overwritten.
 */
export class HistoryRing<E extends BusEvent> {
  private readonly buffer: E[] = [];
  /** Index of the oldest held event once the buffer is full (0 until then). */
  private start = 0;

  /** @param capacity events kept (RUNWATCH_HISTORY); at least 1. */
  constructor(private readonly capacity: number) {
    if (!(capacity >= 1)) throw new Error(`history capacity must be at least 1, got ${capacity}`);
  }

  /** Adds the topic's next event, overwriting the oldest when full. */
  push(event: E): void {
    if (this.buffer.length < this.capacity) {
      this.buffer.push(event);
      return;
    }
    this.buffer[this.start] = event;
    this.start = (this.start + 1) % this.capacity;
  }

  /**
   * The held events after `afterOffset`, given the offset of the topic's
   * newest event (`headOffset`; 0 before the first). `covered` per
   * topic-log.ts {@link historyCovers}: iff history holds every event after
   * afterOffset (afterOffset >= headOffset: nothing after it, then no events;
   * or the first held event after afterOffset has offset afterOffset + 1).
   */
  after(afterOffset: number, headOffset: number): HistoryRead<E> {
    if (afterOffset >= headOffset) return { events: [], covered: true };
    const events: E[] = [];
    const held = this.buffer.length;
    for (let i = 0; i < held; i++) {
      const event = this.buffer[(this.start + i) % held]!;
      if (event.offset > afterOffset) events.push(event);
    }
    return { events, covered: historyCovers(afterOffset, headOffset, events) };
  }
}
