/**
 * LiveStream and FilteredStream in push mode (`pipe(sink)`, the WebSocket
 * transport's hot path): replay then live in order without duplicates,
 * pausing on a full sink with conflation and overflow in the same bounded
 * queue as pull mode, and release exactly once however the stream ends.
 * Also: shared results serialize once, with errors masked.
 */
import { GraphQLError } from 'graphql';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FilteredStream } from '../../src/delivery/filtered-stream.js';
import { LiveStream, SlowConsumerError, type StreamSink } from '../../src/delivery/live-stream.js';
import { serializeResult } from '../../src/delivery/shared-execution.js';
import { createErrorMasker } from '../../src/schema/errors.js';
import { testStreamOptions, type Ev, type StreamOptions } from '../helpers/live-stream-options.js';

function stream(overrides: Partial<StreamOptions> = {}) {
  const counts = { released: 0, overflows: 0, conflated: 0, delivered: 0 };
  const s = new LiveStream<Ev>({
    ...testStreamOptions,
    onOverflow: () => counts.overflows++,
    onConflated: (n) => (counts.conflated += n),
    onDelivered: () => counts.delivered++,
    ...overrides,
  });
  s.onEnd(() => counts.released++);
  return { s, counts };
}

/** A sink that records what it gets and accepts `room` events before it says it is full (Infinity: never full). */
function sink(room = Infinity) {
  const got: number[] = [];
  const ends: string[] = [];
  const errors: unknown[] = [];
  let left = room;
  const value: StreamSink<Ev> & { got: number[]; ends: string[]; errors: unknown[]; refill(n: number): void } = {
    got,
    ends,
    errors,
    next: (e) => {
      got.push(e.offset);
      return --left > 0;
    },
    complete: () => ends.push('complete'),
    error: (e) => {
      ends.push('error');
      errors.push(e);
    },
    refill: (n) => (left = n),
  };
  return value;
}

const ev = (offset: number, kind: Ev['kind'] = 'S'): Ev => ({ offset, kind });

describe('LiveStream push mode', () => {
  it('delivers replay, then buffered and live events, once each and in order, synchronously', () => {
    const { s, counts } = stream();
    const out = sink();
    s.pipe(out);
    s.push(ev(3)); // arrived while history was being read
    s.push(ev(4));
    expect(out.got).toEqual([]);
    s.goLive([ev(2), ev(3)]);
    expect(out.got).toEqual([2, 3, 4]);
    s.push(ev(4)); // duplicate
    s.push(ev(5));
    expect(out.got).toEqual([2, 3, 4, 5]);
    s.push(ev(1, 'SNAP')); // a reset is delivered whatever its offset
    s.push(ev(2));
    expect(out.got).toEqual([2, 3, 4, 5, 1, 2]);
    expect(counts.delivered).toBe(6);
    expect(out.ends).toEqual([]);
  });

  it('pauses when the sink is full, queues and conflates PROGRESS past conflateAbove, and resumes in order', () => {
    const { s, counts } = stream({ maxQueued: 100 });
    const out = sink(1);
    s.pipe(out);
    s.goLive([]);
    s.push(ev(1, 'P')); // accepted, then the sink is full
    for (let i = 2; i <= 20; i++) s.push(ev(i, i === 10 ? 'S' : 'P'));
    expect(out.got).toEqual([1]);
    expect(counts.conflated).toBeGreaterThan(0);
    out.refill(Infinity);
    s.resume();
    // Queued in order; PROGRESS past the bound collapsed to the newest, the one STATUS kept.
    expect(out.got[0]).toBe(1);
    expect(out.got).toContain(10);
    expect(out.got.at(-1)).toBe(20);
    for (let i = 1; i < out.got.length; i++) expect(out.got[i]).toBeGreaterThan(out.got[i - 1]!);
    expect(out.got.length).toBeLessThan(20);
    s.push(ev(21));
    expect(out.got.at(-1)).toBe(21);
  });

  it('resumes a replay bigger than the sink takes at once, without losing or repeating events', () => {
    const { s } = stream({ maxQueued: 1000, conflateAbove: 1000 });
    const out = sink(3);
    s.pipe(out);
    s.goLive(Array.from({ length: 10 }, (_, i) => ev(i + 1)));
    s.push(ev(11));
    expect(out.got).toEqual([1, 2, 3]);
    out.refill(3);
    s.resume();
    expect(out.got).toEqual([1, 2, 3, 4, 5, 6]);
    out.refill(Infinity);
    s.resume();
    expect(out.got).toEqual(Array.from({ length: 11 }, (_, i) => i + 1));
  });

  it('drops a sink that stays full past maxQueued: onOverflow once, sink.error(SlowConsumerError), released once', () => {
    const { s, counts } = stream();
    const out = sink(1);
    s.pipe(out);
    s.goLive([]);
    for (let i = 1; i <= 30; i++) s.push(ev(i)); // STATUS events: never conflated
    expect(counts.overflows).toBe(1);
    expect(out.ends).toEqual(['error']);
    expect(out.errors[0]).toBeInstanceOf(SlowConsumerError);
    expect(counts.released).toBe(1);
    s.resume();
    s.push(ev(31));
    void s.return();
    expect(out.got).toEqual([1]);
    expect(counts.released).toBe(1);
    expect(out.ends).toEqual(['error']);
  });

  it('completes after a final event (delivered first) and releases once', async () => {
    const { s, counts } = stream();
    const out = sink();
    s.pipe(out);
    s.goLive([ev(1)]);
    s.push(ev(2, 'END'));
    expect(out.got).toEqual([1, 2]);
    expect(out.ends).toEqual(['complete']);
    s.push(ev(3));
    await s.return();
    expect(out.got).toEqual([1, 2]);
    expect(counts.released).toBe(1);
  });

  it('completes a final event that was queued behind a full sink only once it is delivered', () => {
    const { s, counts } = stream();
    const out = sink(1);
    s.pipe(out);
    s.goLive([]);
    s.push(ev(1));
    s.push(ev(2, 'END'));
    expect(out.ends).toEqual([]);
    expect(counts.released).toBe(0);
    out.refill(Infinity);
    s.resume();
    expect(out.got).toEqual([1, 2]);
    expect(out.ends).toEqual(['complete']);
    expect(counts.released).toBe(1);
  });

  it('on return() releases at once, tells the sink nothing, and is idempotent', async () => {
    const { s, counts } = stream();
    const out = sink();
    s.pipe(out);
    s.goLive([]);
    await s.return();
    await s.return();
    s.abort(new Error('late'));
    s.push(ev(1));
    expect(counts.released).toBe(1);
    expect(out.ends).toEqual([]);
    expect(out.got).toEqual([]);
  });

  it('reports an abort to the sink once and releases once', () => {
    const { s, counts } = stream();
    const out = sink();
    s.pipe(out);
    s.goLive([]);
    const failure = new Error('backend gone');
    s.abort(failure);
    s.abort(new Error('again'));
    expect(out.errors).toEqual([failure]);
    expect(counts.released).toBe(1);
  });

  it('tells a sink piped after the end how it ended', () => {
    const { s } = stream();
    s.goLive([ev(1, 'END')]);
    const pulled = sink();
    void s.next(); // takes the final event in pull mode
    s.pipe(pulled);
    expect(pulled.ends).toEqual(['complete']);
    const { s: failed } = stream();
    failed.abort(new Error('x'));
    const late = sink();
    failed.pipe(late);
    expect(late.ends).toEqual(['error']);
  });

  it('refuses a second pipe and a pipe while next() is pending', () => {
    const { s } = stream();
    s.pipe(sink());
    expect(() => s.pipe(sink())).toThrow(/already piped/);
    const { s: pulling } = stream();
    pulling.goLive([]);
    void pulling.next();
    expect(() => pulling.pipe(sink())).toThrow(/pending next/);
  });
});

describe('FilteredStream push mode', () => {
  it('passes only kept events, counts hidden ones as accepted, and ends with the inner stream', () => {
    const { s, counts } = stream();
    const filtered = new FilteredStream<Ev>(s, (e) => e.offset % 2 === 0);
    const out = sink(2);
    expect(filtered.pipe(out)).toBe(true);
    s.goLive([ev(1), ev(2), ev(3), ev(4), ev(5), ev(6)]);
    expect(out.got).toEqual([2, 4]); // full after two kept events
    out.refill(Infinity);
    filtered.resume();
    s.push(ev(7, 'END')); // hidden, but still ends the stream
    expect(out.got).toEqual([2, 4, 6]);
    expect(out.ends).toEqual(['complete']);
    expect(counts.released).toBe(1);
  });

  it('declines push mode over a stream that cannot push', async () => {
    async function* gen() {
      yield ev(1);
    }
    const filtered = new FilteredStream<Ev>(gen() as never, () => true);
    expect(filtered.pipe(sink())).toBe(false);
    expect((await filtered.next()).value).toEqual(ev(1));
  });
});

describe('serializeResult', () => {
  it('serializes a result once and masks unexpected errors before caching', () => {
    const mask = createErrorMasker(pino({ level: 'silent' }));
    const result = {
      data: { x: null },
      errors: [
        new GraphQLError('boom', { path: ['x'], originalError: new Error('password=hunter2 at /srv/app.js:12') }),
        new GraphQLError('not found', { path: ['y'], extensions: { code: 'NOT_FOUND' } }),
      ],
    };
    const first = serializeResult(result, mask);
    expect(serializeResult(result, mask)).toBe(first); // the same bytes, not a second stringify
    const text = first.toString();
    expect(text).not.toContain('hunter2');
    expect(text).not.toContain('app.js');
    expect(JSON.parse(text)).toEqual({
      data: { x: null },
      errors: [
        { message: 'Unexpected error.', path: ['x'], extensions: { code: 'INTERNAL_SERVER_ERROR' } },
        { message: 'not found', path: ['y'], extensions: { code: 'NOT_FOUND' } },
      ],
    });
  });
});
