/**
 * A shared channel's member that joins with a cursor of its own
 * (src/transport/shared-channel.ts `Channel.attachAfter`), with the channel's
 * events arriving while its replay is still being read: the replay first,
 * then the events queued meanwhile, each offset once (duplicates dropped at
 * the seam), a SNAPSHOT instead when the cursor cannot be resumed, the
 * channel's end after both, and the queue bound while it replays.
 */
import type { ExecutionResult } from 'graphql';
import { describe, expect, it } from 'vitest';
import type { LiveStreamPolicy, PushSource } from '../../src/delivery/live-stream.js';
import type { SharedExecutor } from '../../src/delivery/shared-execution.js';
import type { StreamPosition } from '../../src/domain/cursor.js';
import { ChannelRegistry, Member, type MemberOutlet } from '../../src/transport/shared-channel.js';
import { deferred } from '../helpers/clients.js';

interface Ev {
  offset: number;
  type: 'SNAPSHOT' | 'ITEM' | 'DONE';
}

/** A socket that records what it is sent (`offset:type` per event, `complete` / `error`), or refuses frames while `full`. */
class Outlet implements MemberOutlet {
  readonly opts = { maskError: (e: unknown) => e as Error };
  readonly sent: string[] = [];
  full = false;
  dropped = 0;
  private waiter: { resume(): void } | null = null;
  sendFrame(_prefix: Buffer, payload: Buffer): boolean {
    if (this.full) return false;
    const e = (JSON.parse(payload.toString()) as { data: Ev }).data;
    this.sent.push(`${e.offset}:${e.type}`);
    return true;
  }
  sendMessage(message: { type: string }): void {
    this.sent.push(message.type);
  }
  waitForDrain(waiter: { resume(): void }): void {
    this.waiter = waiter;
  }
  drain(): void {
    this.full = false;
    this.waiter?.resume();
  }
  dropSlowConsumer(): void {
    this.dropped++;
  }
}

const owner = { released: () => undefined };
const item = (offset: number): Ev => ({ offset, type: 'ITEM' });

/** The test streams' policy: offsets, SNAPSHOT resets, DONE final, no conflation; a joiner replays with `joinAfter`. */
const policyOf = (joinAfter: LiveStreamPolicy<Ev>['joinAfter'], maxQueued = 100): LiveStreamPolicy<Ev> => ({
  offsetOf: (e) => e.offset,
  isConflatable: () => false,
  isFinal: (e) => e.type === 'DONE',
  isReset: (e) => e.type === 'SNAPSHOT',
  conflateAbove: maxQueued,
  maxQueued,
  onOverflow: () => undefined,
  joinStart: (last) => [{ offset: last.offset, type: 'SNAPSHOT' }],
  joinAfter,
});
/** Executes an event as its own data. */
const executor = { execute: (event: unknown): ExecutionResult => ({ data: event as Record<string, unknown> }) } as unknown as SharedExecutor;

/** An open channel with one member, that has delivered items 1..5; `joinAfter` answers with `replay`. */
function openChannel(replay: Promise<Ev[] | null>, maxQueued = 100) {
  const registry = new ChannelRegistry();
  const channel = registry.create('k');
  const first = new Outlet();
  channel.attach(new Member(first, owner, '1', Buffer.from('{')));
  const asked: StreamPosition[] = [];
  const policy = policyOf((after) => {
    asked.push(after);
    return replay;
  }, maxQueued);
  const source: PushSource<unknown> = { pipe: () => true, resume: () => undefined, return: async () => ({ done: true, value: undefined }) };
  channel.start(source, policy as LiveStreamPolicy<unknown>, executor, (async function* () {})(), [], (e) => e as Error);
  for (let i = 1; i <= 5; i++) channel.next(item(i));
  return { channel, first, asked, registry };
}

/** Lets the replay's promise chain settle. */
const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('a member joining a channel with its own cursor', () => {
  it('gets its replay, then what the channel sent meanwhile, each offset once', async () => {
    const replay = deferred<Ev[] | null>();
    const { channel, first, asked } = openChannel(replay.promise);
    const joiner = new Outlet();
    expect(channel.attachAfter(new Member(joiner, owner, '2', Buffer.from('{')), { epoch: 'e', offset: 2 })).toBe(true);
    expect(channel.size).toBe(2);
    channel.next(item(6));
    channel.next(item(7));
    expect(joiner.sent).toEqual([]); // held while the replay is read
    // History already held offset 6 when it was read: the queued 6 is a duplicate.
    replay.resolve([item(3), item(4), item(5), item(6)]);
    await settle();
    expect(asked).toEqual([{ epoch: 'e', offset: 2 }]);
    channel.next(item(8));
    expect(joiner.sent).toEqual(['3:ITEM', '4:ITEM', '5:ITEM', '6:ITEM', '7:ITEM', '8:ITEM']);
    expect(first.sent.slice(-3)).toEqual(['6:ITEM', '7:ITEM', '8:ITEM']);
  });

  it('keeps a reset queued while it replays, and every event after it, whatever their offsets', async () => {
    const replay = deferred<Ev[] | null>();
    const { channel } = openChannel(replay.promise);
    const joiner = new Outlet();
    channel.attachAfter(new Member(joiner, owner, '2', Buffer.from('{')), { epoch: 'e', offset: 2 });
    channel.next({ offset: 1, type: 'SNAPSHOT' }); // the topic was reset (history lost, a new epoch)
    channel.next(item(2));
    replay.resolve([item(3), item(4), item(5)]);
    await settle();
    expect(joiner.sent).toEqual(['3:ITEM', '4:ITEM', '5:ITEM', '1:SNAPSHOT', '2:ITEM']);
  });

  it('drops queued events at or below a cursor past the channel (nothing to replay)', async () => {
    const { channel } = openChannel(Promise.resolve([]));
    const joiner = new Outlet();
    channel.attachAfter(new Member(joiner, owner, '2', Buffer.from('{')), { epoch: 'e', offset: 7 });
    channel.next(item(6));
    channel.next(item(7));
    channel.next(item(8));
    await settle();
    expect(joiner.sent).toEqual(['8:ITEM']);
  });

  it('starts with a SNAPSHOT of the channel as it was at the join when the cursor cannot be resumed', async () => {
    const replay = deferred<Ev[] | null>();
    const { channel } = openChannel(replay.promise);
    const joiner = new Outlet();
    channel.attachAfter(new Member(joiner, owner, '2', Buffer.from('{')), { epoch: 'other', offset: 9 });
    channel.next(item(6));
    replay.resolve(null);
    await settle();
    expect(joiner.sent).toEqual(['5:SNAPSHOT', '6:ITEM']);
  });

  it('completes after its replay and queue when the channel ends meanwhile, and waits for its socket to drain', async () => {
    const replay = deferred<Ev[] | null>();
    const { channel } = openChannel(replay.promise);
    const joiner = new Outlet();
    channel.attachAfter(new Member(joiner, owner, '2', Buffer.from('{')), { epoch: 'e', offset: 4 });
    channel.next({ offset: 6, type: 'DONE' });
    channel.complete();
    expect(joiner.sent).toEqual([]);
    joiner.full = true;
    replay.resolve([item(5)]);
    await settle();
    expect(joiner.sent).toEqual([]);
    joiner.drain();
    expect(joiner.sent).toEqual(['5:ITEM', '6:DONE', 'complete']);
  });

  it('is dropped (slow consumer) when more than its queue bound arrives while it replays', async () => {
    const replay = deferred<Ev[] | null>();
    const { channel } = openChannel(replay.promise, 3);
    const joiner = new Outlet();
    channel.attachAfter(new Member(joiner, owner, '2', Buffer.from('{')), { epoch: 'e', offset: 4 });
    for (let i = 6; i <= 10; i++) channel.next(item(i));
    expect(joiner.dropped).toBe(1);
    expect(channel.size).toBe(1);
    replay.resolve([item(5)]);
    await settle();
    expect(joiner.sent).toEqual([]);
  });

  it.each([
    ['replays in place of the stream start', [item(3), item(4), item(5)], ['3:ITEM', '4:ITEM', '5:ITEM', '6:ITEM']],
    ['takes the stream start when its cursor cannot be resumed', null, ['5:SNAPSHOT', '6:ITEM']],
  ])('waits while the channel opens, then %s', async (_what, replay, expected) => {
    const registry = new ChannelRegistry();
    const channel = registry.create('k');
    const plain = new Outlet();
    const joiner = new Outlet();
    channel.attach(new Member(plain, owner, '1', Buffer.from('{')));
    expect(channel.attachAfter(new Member(joiner, owner, '2', Buffer.from('{')), { epoch: 'e', offset: 2 })).toBe(true);
    const policy = policyOf(async () => replay);
    // The stream's start (a SNAPSHOT at the head, offset 5) and a live event, delivered as it is piped.
    const source: PushSource<unknown> = {
      pipe: (sink) => sink.next({ offset: 5, type: 'SNAPSHOT' }) && sink.next(item(6)),
      resume: () => undefined,
      return: async () => ({ done: true, value: undefined }),
    };
      channel.start(source, policy as LiveStreamPolicy<unknown>, executor, (async function* () {})(), [], (e) => e as Error);
    await settle();
    expect(plain.sent).toEqual(['5:SNAPSHOT', '6:ITEM']);
    expect(joiner.sent).toEqual(expected);
  });

  it('waits for the opened channel\'s first event before it replays, and completes if the channel ends before any', async () => {
    const make = () => {
      const registry = new ChannelRegistry();
      const channel = registry.create('k');
      const joiner = new Outlet();
      channel.attachAfter(new Member(joiner, owner, '2', Buffer.from('{')), { epoch: 'e', offset: 2 });
      const policy = policyOf(async () => [item(3), item(4)]);
      // A stream that is not live yet when piped: its events come later.
      const source: PushSource<unknown> = { pipe: () => true, resume: () => undefined, return: async () => ({ done: true, value: undefined }) };
          channel.start(source, policy as LiveStreamPolicy<unknown>, executor, (async function* () {})(), [], (e) => e as Error);
      return { channel, joiner };
    };
    const late = make();
    await settle();
    expect(late.joiner.sent).toEqual([]);
    late.channel.next({ offset: 4, type: 'SNAPSHOT' });
    late.channel.next(item(5));
    await settle();
    expect(late.joiner.sent).toEqual(['3:ITEM', '4:ITEM', '5:ITEM']);

    const never = make();
    never.channel.complete();
    await settle();
    expect(never.joiner.sent).toEqual(['complete']);
  });
});
