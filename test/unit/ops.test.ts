/**
 * Pure parts of operations: the in-memory token bucket (fake clock), the
 * watched iterator (ends, deadline, return reaching the inner iterator at once)
 * and the delivery histogram's exposition.
 */
import { describe, expect, it } from 'vitest';
import { watchIterator, type EndReason } from '../../src/delivery/watched-iterator.js';
import { MemoryRateLimiter } from '../../src/limits/rate-limit.js';
import { TypeHistogram } from '../../src/observe/metrics.js';

describe('MemoryRateLimiter', () => {
  it('allows a burst, refuses with the time until a token is back, and refills at the rate', async () => {
    let now = 1_000_000;
    const limiter = new MemoryRateLimiter({ ratePerSecond: 4, burst: 3 }, () => now);
    for (let i = 0; i < 3; i++) expect((await limiter.take('u', 1)).allowed).toBe(true);
    const refused = await limiter.take('u', 1);
    expect(refused).toEqual({ allowed: false, retryAfterSeconds: 0.25, remaining: 0 });
    expect((await limiter.take('other', 1)).allowed).toBe(true);
    now += 250;
    expect((await limiter.take('u', 1)).allowed).toBe(true);
    expect((await limiter.take('u', 1)).allowed).toBe(false);
    now += 10_000;
    expect(await limiter.take('u', 2)).toEqual({ allowed: true, retryAfterSeconds: 0, remaining: 1 });
  });

  it('forgets the buckets of users who stopped sending mutations', async () => {
    let now = 1_000_000;
    const limiter = new MemoryRateLimiter({ ratePerSecond: 10, burst: 20 }, () => now); // full again after 2 s
    for (let i = 0; i < 1000; i++) await limiter.take(`user-${i}`, 1);
    expect(limiter.size).toBe(1000);
    now += 4_001; // two refill times later, one active user
    await limiter.take('active', 1);
    expect(limiter.size).toBe(1);
  });
});

/** An iterator that yields only when told, like a quiet job stream. */
function quietSource() {
  let returned = 0;
  let wake: ((r: IteratorResult<number>) => void) | null = null;
  const source: AsyncIterableIterator<number> = {
    next: () => new Promise((resolve) => (wake = resolve)),
    return: async () => {
      returned++;
      wake?.({ value: undefined, done: true });
      return { value: undefined, done: true };
    },
    [Symbol.asyncIterator]: () => source,
  };
  return { source, push: (n: number) => wake?.({ value: n, done: false }), returnedCount: () => returned };
}

describe('watchIterator', () => {
  it('passes values through and reports a return() at once, even while next() waits', async () => {
    const q = quietSource();
    const ends: EndReason[] = [];
    const it = watchIterator(q.source, { onEnd: (r) => ends.push(r) });
    const first = it.next();
    q.push(7);
    expect(await first).toEqual({ value: 7, done: false });
    const waiting = it.next();
    await it.return!();
    expect(await waiting).toEqual({ value: undefined, done: true });
    expect(q.returnedCount()).toBe(1);
    expect(ends).toEqual(['return']);
  });

  it('ends at the deadline with one last value, releasing the inner iterator', async () => {
    const q = quietSource();
    const ends: EndReason[] = [];
    const it = watchIterator(q.source, { deadlineMs: Date.now() + 30, onDeadline: () => -1, onEnd: (r) => ends.push(r) });
    expect(await it.next()).toEqual({ value: -1, done: false });
    expect(await it.next()).toEqual({ value: undefined, done: true });
    expect(q.returnedCount()).toBe(1);
    expect(ends).toEqual(['deadline']);
  });
});

describe('TypeHistogram', () => {
  it('exposes cumulative buckets, sum and count per type', async () => {
    const h = new TypeHistogram('x_seconds', 'help', [0.1, 1]);
    h.observe('A', 0.05);
    h.observe('A', 0.5);
    h.observe('A', 5);
    const { values } = await h.get();
    const v = (metricName: string, le?: string | number) => values.find((s) => s.metricName === metricName && (le === undefined || s.labels.le === le))?.value;
    expect([v('x_seconds_bucket', 0.1), v('x_seconds_bucket', 1), v('x_seconds_bucket', '+Inf')]).toEqual([1, 2, 3]);
    expect(v('x_seconds_count')).toBe(3);
    expect(v('x_seconds_sum')).toBeCloseTo(5.55);
  });
});
