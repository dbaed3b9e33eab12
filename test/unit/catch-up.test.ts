/**
 * The one catch-up after a bus reconnect (StreamKinds.fillGap in
 * src/delivery/stream-kinds.ts), which every stream kind uses: what a topic's subscribers get after an
 * outage — the stored events they missed, or a fresh start that resets them
 * when those events are gone or the topic's history started over.
 */
import { describe, expect, it } from 'vitest';
import { StreamKinds } from '../../src/delivery/stream-kinds.js';
import type { EventBus } from '../../src/backends/types.js';
import { decodeCursor, encodeCursor, type StreamPosition } from '../../src/domain/cursor.js';
import { newEpoch } from '../../src/domain/ids.js';

interface Ev {
  offset: number;
  cursor: string;
  snapshot: boolean;
}
type Head = StreamPosition;

const EPOCH = newEpoch();
const event = (offset: number, epoch = EPOCH): Ev => ({ offset, cursor: encodeCursor(epoch, offset), snapshot: false });

/**
 * A topic whose head is `head` and whose history holds the events `oldest`..head.offset
 * (RUNWATCH_HISTORY trimmed the ones before); records every history read.
 */
function topic(head: Head | null, oldest = 1) {
  const reads: number[] = [];
  const kinds = new StreamKinds({ onGap: () => {} } as unknown as EventBus);
  kinds.register<Ev, Head>({
    prefix: 't:',
    events: { offsetOf: (e) => e.offset, isConflatable: () => false, isFinal: () => false, isReset: (e) => e.snapshot },
    readHead: async () => head,
    positionOf: (h) => h,
    positionOfEvent: (e) => decodeCursor(e.cursor),
    history: async (_topic, afterOffset) => {
      reads.push(afterOffset);
      const events: Ev[] = [];
      for (let o = Math.max(oldest, afterOffset + 1); head && o <= head.offset; o++) events.push(event(o, head.epoch));
      const covered = afterOffset >= head!.offset || events[0]?.offset === afterOffset + 1;
      return { events, covered };
    },
    freshStart: async (_topic, h) => [{ offset: h.offset, cursor: encodeCursor(h.epoch, h.offset), snapshot: true }],
  });
  const spec = async (last: Ev | null) => ((await kinds.fillGap('t:1', last))?.events ?? []) as Ev[];
  return { spec, reads };
}

describe('catch-up after a reconnect', () => {
  it('delivers the stored events after the newest one seen when history covers the gap', async () => {
    const { spec, reads } = topic({ epoch: EPOCH, offset: 9 }, 4);
    expect((await spec(event(5))).map((e) => e.offset)).toEqual([6, 7, 8, 9]);
    expect(reads).toEqual([5]);
  });

  it('delivers nothing when nothing was missed', async () => {
    const { spec } = topic({ epoch: EPOCH, offset: 9 }, 4);
    expect(await spec(event(9))).toEqual([]);
  });

  it('makes a fresh start when history was trimmed past the newest event seen', async () => {
    const { spec } = topic({ epoch: EPOCH, offset: 20 }, 11);
    expect(await spec(event(5))).toEqual([{ offset: 20, cursor: encodeCursor(EPOCH, 20), snapshot: true }]);
  });

  it('makes a fresh start without reading history when the epoch changed', async () => {
    const other = newEpoch();
    const { spec, reads } = topic({ epoch: other, offset: 7 });
    expect(await spec(event(5))).toEqual([{ offset: 7, cursor: encodeCursor(other, 7), snapshot: true }]);
    expect(reads).toEqual([]);
  });

  it('makes a fresh start when the head is behind the newest event seen (the topic went back in time)', async () => {
    const { spec, reads } = topic({ epoch: EPOCH, offset: 3 });
    expect((await spec(event(5))).map((e) => e.snapshot)).toEqual([true]);
    expect(reads).toEqual([]);
  });

  it('with nothing seen yet, delivers the whole history, or a fresh start once it is trimmed', async () => {
    const full = topic({ epoch: EPOCH, offset: 3 });
    expect((await full.spec(null)).map((e) => e.offset)).toEqual([1, 2, 3]);
    expect(full.reads).toEqual([0]);
    const trimmed = topic({ epoch: EPOCH, offset: 30 }, 11);
    expect((await trimmed.spec(null)).map((e) => e.snapshot)).toEqual([true]);
  });

  it('delivers nothing when the topic has no head (its state is gone)', async () => {
    const { spec, reads } = topic(null);
    expect(await spec(event(5))).toEqual([]);
    expect(reads).toEqual([]);
  });
});
