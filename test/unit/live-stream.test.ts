/**
 * The per-subscription iterator: replay then live without gap or duplicate,
 * immediate release on return(), errors reach a waiting consumer.
 */
import { describe, expect, it } from 'vitest';
import { LiveStream, SlowConsumerError } from '../../src/delivery/live-stream.js';
import { testStreamOptions, type Ev, type StreamOptions } from '../helpers/live-stream-options.js';

const stream = (overrides: Partial<StreamOptions> = {}) => new LiveStream<Ev>({ ...testStreamOptions, onOverflow: () => {}, ...overrides });

async function take(s: LiveStream<Ev>, n: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = await s.next();
    if (r.done) break;
    out.push(r.value.offset);
  }
  return out;
}

describe('LiveStream', () => {
  it('replays, then delivers buffered and live events once each, in order', async () => {
    const s = stream();
    s.push({ offset: 3, kind: 'S' }); // arrived while history was being read
    s.push({ offset: 4, kind: 'S' });
    s.goLive([
      { offset: 2, kind: 'S' },
      { offset: 3, kind: 'S' },
    ]);
    s.push({ offset: 4, kind: 'S' }); // duplicate
    s.push({ offset: 5, kind: 'S' });
    expect(await take(s, 4)).toEqual([2, 3, 4, 5]);
  });

  it('ends after the final event and releases the subscription once', async () => {
    let released = 0;
    const s = stream();
    s.onEnd(() => released++);
    s.goLive([{ offset: 1, kind: 'END' }]);
    expect(await take(s, 1)).toEqual([1]);
    expect((await s.next()).done).toBe(true);
    await s.return();
    expect(released).toBe(1);
  });

  it('releases at once when return() is called while next() waits on a quiet topic', async () => {
    let released = false;
    const s = stream();
    s.onEnd(() => (released = true));
    s.goLive([]);
    const pending = s.next();
    await s.return();
    expect(released).toBe(true);
    expect(await pending).toEqual({ value: undefined, done: true });
  });

  it('rejects a waiting next() when aborted, and accepts a reset event whatever its offset', async () => {
    const s = stream();
    s.goLive([{ offset: 10, kind: 'S' }]);
    await take(s, 1);
    s.push({ offset: 3, kind: 'SNAP' });
    expect(await take(s, 1)).toEqual([3]);
    const pending = s.next();
    s.abort(new Error('restarting'));
    await expect(pending).rejects.toThrow('restarting');
  });

  it('fails with SlowConsumerError and calls onOverflow when a lagging consumer overflows', async () => {
    let overflowed = 0;
    const s = stream({ onOverflow: () => overflowed++ });
    s.goLive([]);
    for (let i = 1; i <= 20; i++) s.push({ offset: i, kind: 'S' });
    expect(overflowed).toBe(1);
    await expect(s.next()).rejects.toBeInstanceOf(SlowConsumerError);
    expect((await s.next()).done).toBe(true);
  });
});
