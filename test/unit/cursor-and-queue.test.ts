/**
 * Cursors and the subscriber-side conflating queue.
 */
import { describe, expect, it } from 'vitest';
import { ConflatingQueue } from '../../src/domain/conflation.js';
import { decodeCursor, encodeCursor } from '../../src/domain/cursor.js';
import { DomainError } from '../../src/domain/errors.js';

describe('cursors', () => {
  it('round-trip epoch and offset', () => {
    expect(decodeCursor(encodeCursor('Ab_9-x', 42))).toEqual({ epoch: 'Ab_9-x', offset: 42 });
  });
  it.each(['', '42', 'abc', 'ep.', '.5', 'ep.-1', 'ep.1.5x', 'e p.3'])('refuses %j with BAD_USER_INPUT', (bad) => {
    expect(() => decodeCursor(bad)).toThrow(DomainError);
    try {
      decodeCursor(bad);
    } catch (e) {
      expect((e as DomainError).code).toBe('BAD_USER_INPUT');
    }
  });
});

type Ev = { n: number; kind: 'P' | 'S' };
const queue = () => new ConflatingQueue<Ev>(3, 6, (e) => e.kind === 'P');
const drain = (q: ConflatingQueue<Ev>) => {
  const out: number[] = [];
  for (let e = q.shift(); e; e = q.shift()) out.push(e.n);
  return out;
};

describe('ConflatingQueue', () => {
  it('is a plain FIFO while the consumer keeps up', () => {
    const q = queue();
    q.push({ n: 1, kind: 'P' });
    q.push({ n: 2, kind: 'P' });
    expect(drain(q)).toEqual([1, 2]);
  });

  it('collapses queued PROGRESS to the newest once it lags, keeping every other event in order', () => {
    const q = queue();
    for (const e of [
      { n: 1, kind: 'P' },
      { n: 2, kind: 'S' },
      { n: 3, kind: 'P' },
      { n: 4, kind: 'P' },
      { n: 5, kind: 'S' },
      { n: 6, kind: 'P' },
    ] as Ev[])
      q.push(e);
    expect(drain(q)).toEqual([2, 5, 6]);
  });

  it('reports overflow when non-conflatable events exceed the bound', () => {
    const q = queue();
    const results = [];
    for (let n = 1; n <= 7; n++) results.push(q.push({ n, kind: 'S' }));
    expect(results.slice(0, 6).every((r) => r !== 'overflow')).toBe(true);
    expect(results[6]).toBe('overflow');
  });
});
