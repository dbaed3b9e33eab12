/**
 * What a lagging member of a shared channel holds (src/transport/shared-channel.ts,
 * issue 20 "bounded memory under a stalled client"): its queue keeps each
 * event's serialized bytes and the few facts it needs (offset, reset, delivery
 * stamp), not the event — so the events, their parsed text and their execution
 * results die young while a member that stopped reading holds up to its queue
 * bound — and it still sends them in order, each delivery counted once with
 * the event's type and timestamp.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { ExecutionResult } from 'graphql';
import { describe, expect, it } from 'vitest';
import type { DeliveryStamp, LiveStreamPolicy, PushSource } from '../../src/delivery/live-stream.js';
import type { SharedExecutor } from '../../src/delivery/shared-execution.js';
import { ChannelRegistry, Member, type MemberOutlet } from '../../src/transport/shared-channel.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

interface Ev {
  offset: number;
  type: string;
  timestamp: number;
  message: string;
}

/** A socket that records the offsets it is sent; while `full` it takes the frame and says it is over its bound (like a stream's `write`). */
class Outlet implements MemberOutlet {
  readonly opts = { maskError: (e: unknown) => e as Error };
  readonly sent: number[] = [];
  full = false;
  private waiter: { resume(): void } | null = null;
  sendFrame(_prefix: Buffer, payload: Buffer): boolean {
    this.sent.push((JSON.parse(payload.toString()) as { data: Ev }).data.offset);
    return !this.full;
  }
  sendMessage(): void {}
  waitForDrain(waiter: { resume(): void }): void {
    this.waiter = waiter;
  }
  drain(): void {
    this.full = false;
    this.waiter?.resume();
  }
  dropSlowConsumer(): void {}
}

describe('a lagging member of a shared channel', () => {
  it('queues the serialized bytes, not the events: they can be collected while it lags, and it still gets each in order', async () => {
    const stamps: DeliveryStamp[] = [];
    const policy: LiveStreamPolicy<Ev> = {
      offsetOf: (e) => e.offset,
      isConflatable: () => false,
      isFinal: () => false,
      conflateAbove: 1000,
      maxQueued: 1000,
      onOverflow: () => undefined,
      onMemberDelivered: (stamp) => stamps.push(stamp),
      stampOf: (e) => ({ type: e.type, timestamp: e.timestamp }),
      joinStart: (last) => [last],
    };
    const channel = new ChannelRegistry().create('k');
    const healthy = new Outlet();
    const stalled = new Outlet();
    channel.attach(new Member(healthy, { released: () => undefined }, '1', Buffer.from('{')));
    channel.attach(new Member(stalled, { released: () => undefined }, '2', Buffer.from('{')));
    const source: PushSource<unknown> = { pipe: () => true, resume: () => undefined, return: async () => ({ done: true, value: undefined }) };
    const executor = { execute: (event: unknown): ExecutionResult => ({ data: event as Record<string, unknown> }) } as unknown as SharedExecutor;
    channel.start(source, policy as LiveStreamPolicy<unknown>, executor, (async function* () {})(), [], (e) => e as Error);

    stalled.full = true;
    const refs: WeakRef<Ev>[] = [];
    // In a function of its own, so no local of this test keeps an event alive.
    const publish = (from: number, to: number) => {
      for (let offset = from; offset <= to; offset++) {
        const event: Ev = { offset, type: 'ITEM', timestamp: 1_000 + offset, message: `${offset} ${'x'.repeat(16 * 1024)}` };
        refs.push(new WeakRef(event));
        channel.next(event);
      }
    };
    publish(1, 50);
    publish(51, 51); // the channel's newest event (kept for joiners) is now 51
    await new Promise((resolve) => setImmediate(resolve)); // WeakRefs hold their targets until the job ends
    gc();
    const alive = refs.slice(0, 50).filter((ref) => ref.deref() !== undefined).length;
    expect(alive).toBe(0); // before the entries kept the event: all 50 stayed reachable

    expect(healthy.sent).toEqual(Array.from({ length: 51 }, (_, i) => i + 1));
    expect(stalled.sent).toEqual([1]); // the frame that filled its socket; 2..51 wait in its queue
    stalled.drain();
    expect(stalled.sent).toEqual(Array.from({ length: 51 }, (_, i) => i + 1));
    // One delivery per event per member, with the event's type and timestamp.
    expect(stamps).toHaveLength(102);
    expect(stamps.filter((s) => s.timestamp === 1_051)).toEqual([{ type: 'ITEM', timestamp: 1_051 }, { type: 'ITEM', timestamp: 1_051 }]);
  });
});
