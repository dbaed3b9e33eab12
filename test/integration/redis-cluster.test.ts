/**
 * Sharded pub/sub on a real Redis Cluster (3 masters, 1 replica each; one
 * cluster for the whole file): RedisShardedChannels keeps one SSUBSCRIBE per
 * channel per instance on the master that owns the channel's slot, through a
 * shard outage and a failover, as `PUBSUB SHARDNUMSUB` on the owning node shows.
 * The runwatch backend on a cluster (which uses this class for its event bus)
 * is tested end to end in cluster-backend.test.ts.
 */
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isUnavailable } from '../../src/domain/errors.js';
import { RedisShardedChannels } from '../../src/backends/redis-sharded-channels.js';
import { TopicFanout } from '../../src/backends/topic-fanout.js';
import type { BusEvent } from '../../src/backends/types.js';
import { withTimeout } from '../helpers/clients.js';
import { startRedisCluster, type TestCluster } from '../helpers/redis-cluster.js';
import { waitUntil } from '../helpers/wait.js';

/** An instance's view: the sharded channels and what its hooks saw. */
interface Instance {
  channels: RedisShardedChannels;
  lost: number;
  resubscribed: number;
  errors: string[];
  /** Resolves at the next onResubscribed. */
  nextResubscribe(): Promise<void>;
  /** Resolves at the next onLost. */
  nextLoss(): Promise<void>;
}

describe('sharded pub/sub on a Redis Cluster', () => {
  let cluster: TestCluster;
  let commands: Cluster;
  const instances: Instance[] = [];

  beforeAll(async () => {
    cluster = await startRedisCluster({ replicasPerMaster: 1 });
    commands = new Cluster(cluster.seeds, { enableOfflineQueue: false, redisOptions: { maxRetriesPerRequest: 1, connectTimeout: 2000 } });
    commands.on('error', () => {}); // node errors during the failover test; asserted through behaviour
    await withTimeout(new Promise<void>((resolve) => commands.once('ready', () => resolve())), 10_000, 'the cluster client to be ready');
  }, 60_000);
  afterAll(async () => {
    for (const instance of instances) instance.channels.close();
    commands?.disconnect();
    await cluster?.stop();
  });

  const instance = (): Instance => {
    const waiters = { lost: [] as Array<() => void>, resubscribed: [] as Array<() => void> };
    const state: Instance = {
      lost: 0,
      resubscribed: 0,
      errors: [],
      channels: undefined as unknown as RedisShardedChannels,
      nextResubscribe: () => new Promise((resolve) => waiters.resubscribed.push(resolve)),
      nextLoss: () => new Promise((resolve) => waiters.lost.push(resolve)),
    };
    state.channels = new RedisShardedChannels(commands, {
      onLost: () => {
        state.lost++;
        for (const w of waiters.lost.splice(0)) w();
      },
      onResubscribed: () => {
        state.resubscribed++;
        for (const w of waiters.resubscribed.splice(0)) w();
      },
      onError: (context, error) => state.errors.push(`${context}: ${String(error)}`),
    });
    instances.push(state);
    return state;
  };

  /** Subscriptions to `channel` on the master that owns it now. */
  const shardNumSub = async (channel: string): Promise<number> => {
    const owner = await cluster.masterOf(await cluster.slotOf(channel));
    const reply = (await cluster.client(owner).call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number];
    return Number(reply[1]);
  };

  /** One channel per master: names tried in order until every master owns one. */
  const channelPerMaster = async (prefix: string): Promise<Map<number, string>> => {
    const byMaster = new Map<number, string>();
    const masters = (await cluster.view()).filter((n) => n.role === 'master' && !n.failed && n.slots.length > 0).length;
    for (let i = 0; byMaster.size < masters; i++) {
      if (i > 10_000) throw new Error(`no channel found for every master: ${[...byMaster.keys()].join(', ')} of ${masters}`);
      const channel = `runwatch:{${prefix}-${i}}:job`;
      const owner = await cluster.masterOf(await cluster.slotOf(channel));
      if (!byMaster.has(owner)) byMaster.set(owner, channel);
    }
    return byMaster;
  };

  /** Resolves with the first message `channels` deliver on `channel` after this call. */
  const received = (channel: string, messages: string[]) =>
    waitUntil(() => messages.length, (n) => n > 0, `a message on ${channel}`, 10_000).then(() => messages[0]);

  it('spreads channels over the three masters; an SPUBLISHed message reaches the one subscription on the owner', async () => {
    const a = instance();
    const byMaster = await channelPerMaster('spread');
    expect(byMaster.size).toBe(3);
    const got = new Map<string, string[]>();
    for (const channel of byMaster.values()) {
      got.set(channel, []);
      await a.channels.subscribe(channel, (message) => got.get(channel)!.push(message));
    }
    for (const [owner, channel] of byMaster) {
      expect(await shardNumSub(channel)).toBe(1);
      // Sharded: the owner alone knows the subscription (classic pub/sub would broadcast to every node).
      const other = [...byMaster.keys()].find((p) => p !== owner)!;
      expect(((await cluster.client(other).call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number])[1]).toBe(0);
      await commands.spublish(channel, `hello ${channel}`);
      expect(await received(channel, got.get(channel)!)).toBe(`hello ${channel}`);
    }
    for (const channel of byMaster.values()) a.channels.unsubscribe(channel);
    for (const channel of byMaster.values()) await waitUntil(() => shardNumSub(channel), (n) => n === 0, `SHARDNUMSUB ${channel} = 0`);
    expect(a.channels.subscribers.size).toBe(0); // shard connections nobody listens on are closed
    expect(a.errors).toEqual([]);
  });

  it('holds one SSUBSCRIBE per channel per instance, however many local listeners, and releases it when they leave', async () => {
    const [a, b] = [instance(), instance()];
    const channel = 'runwatch:{numsub}:job';
    // Local fan-out as the event bus does it: one underlying subscription per topic.
    const fanout = (channels: RedisShardedChannels) =>
      new TopicFanout<string>(
        async (topic, deliver) => {
          await channels.subscribe(topic, (raw) => deliver(JSON.parse(raw) as BusEvent));
          return topic;
        },
        (topic) => channels.unsubscribe(topic),
        () => {},
      );
    const [fa, fb] = [fanout(a.channels), fanout(b.channels)];
    const seen: number[][] = [[], [], []];
    const leave = [
      await fa.subscribe(channel, (e) => seen[0]!.push(e.offset)),
      await fa.subscribe(channel, (e) => seen[1]!.push(e.offset)),
      await fb.subscribe(channel, (e) => seen[2]!.push(e.offset)),
    ];
    expect(await shardNumSub(channel)).toBe(2); // two instances, one subscription each
    await commands.spublish(channel, JSON.stringify({ offset: 7 }));
    await waitUntil(() => seen.map((s) => s.length), (n) => n.every((x) => x === 1), 'the event at all three listeners');
    expect(seen).toEqual([[7], [7], [7]]);
    leave[0]!();
    expect(await shardNumSub(channel)).toBe(2);
    leave[1]!();
    await waitUntil(() => shardNumSub(channel), (n) => n === 1, 'instance a to release its subscription');
    leave[2]!();
    await waitUntil(() => shardNumSub(channel), (n) => n === 0, 'instance b to release its subscription');
  });

  it('fails fast while a shard is down, releases channels left meanwhile, and re-subscribes the rest when it is back', async () => {
    const a = instance();
    const kept = 'runwatch:{outage-kept}:job';
    const master = await cluster.masterOf(await cluster.slotOf(kept));
    // A second channel on the same master, to be left while it is down.
    let left = '';
    for (let i = 0; !left; i++) {
      const c = `runwatch:{outage-left-${i}}:job`;
      if ((await cluster.masterOf(await cluster.slotOf(c))) === master) left = c;
    }
    let other = '';
    for (let i = 0; !other; i++) {
      const c = `runwatch:{outage-other-${i}}:job`;
      if ((await cluster.masterOf(await cluster.slotOf(c))) !== master) other = c;
    }
    const got: string[] = [];
    await a.channels.subscribe(kept, (m) => got.push(m));
    await a.channels.subscribe(left, () => {});
    expect(await shardNumSub(kept)).toBe(1);
    expect(await shardNumSub(left)).toBe(1);

    // Down without a failover: its replica is told not to take over.
    const view = await cluster.view();
    const me = view.find((n) => n.port === master)!;
    const replica = view.find((n) => n.masterId === me.id)!;
    await cluster.client(replica.port).config('SET', 'cluster-replica-no-failover', 'yes');
    try {
      const loss = a.nextLoss();
      await cluster.killNode(master);
      await withTimeout(loss, 10_000, 'the instance to notice the shard is down');
      // A new channel on the down shard fails fast with SERVICE_UNAVAILABLE; the other shards keep working.
      const started = Date.now();
      const error = await a.channels.subscribe(left.replace(':job', ':other'), () => {}).catch((e: unknown) => e);
      expect(isUnavailable(error)).toBe(true);
      expect(Date.now() - started).toBeLessThan(2500);
      await a.channels.subscribe(other, () => {});
      expect(await shardNumSub(other)).toBe(1);
      a.channels.unsubscribe(left); // left while its shard is down
      a.channels.unsubscribe(other);

      const back = a.nextResubscribe();
      await cluster.restartNode(master);
      await withTimeout(back, 20_000, 'the instance to re-subscribe after the shard came back');
    } finally {
      await cluster.client(replica.port).config('SET', 'cluster-replica-no-failover', 'no');
    }
    expect(await cluster.masterOf(await cluster.slotOf(kept))).toBe(master);
    expect(await shardNumSub(kept)).toBe(1);
    expect(await shardNumSub(left)).toBe(0);
    expect(await shardNumSub(other)).toBe(0);
    await cluster.client(master).spublish(kept, 'after the outage');
    await waitUntil(() => got, (g) => g.includes('after the outage'), 'the message published after the outage');
    a.channels.unsubscribe(kept);
    await waitUntil(() => shardNumSub(kept), (n) => n === 0, 'SHARDNUMSUB of the kept channel to return to 0');
    expect(a.errors).toEqual([]);
  }, 60_000);

  it('follows a slot migrated to another master: subscribed on the new owner, gone from the old one', async () => {
    const a = instance();
    const channel = 'runwatch:{migrate}:job';
    const kept = await (async () => {
      for (let i = 0; ; i++) {
        const c = `runwatch:{migrate-kept-${i}}:job`;
        if ((await cluster.masterOf(await cluster.slotOf(c))) === (await cluster.masterOf(await cluster.slotOf(channel)))) return c;
      }
    })();
    const got: string[] = [];
    const keptGot: string[] = [];
    await a.channels.subscribe(channel, (m) => got.push(m));
    await a.channels.subscribe(kept, (m) => keptGot.push(m));
    const slot = await cluster.slotOf(channel);
    const view = await cluster.view();
    const from = view.find((n) => n.port === (view.find((m) => m.role === 'master' && m.slots.some(([x, y]) => slot >= x && slot <= y)) ?? { port: -1 }).port)!;
    const to = view.find((n) => n.role === 'master' && !n.failed && n.id !== from.id)!;
    const back = a.nextResubscribe();
    // The slot holds no keys: importing/migrating, then every master is told the new owner.
    await cluster.client(to.port).cluster('SETSLOT', slot, 'IMPORTING', from.id);
    await cluster.client(from.port).cluster('SETSLOT', slot, 'MIGRATING', to.id);
    await cluster.client(to.port).cluster('SETSLOT', slot, 'NODE', to.id);
    await cluster.client(from.port).cluster('SETSLOT', slot, 'NODE', to.id);
    for (const m of view.filter((n) => n.role === 'master' && !n.failed && n.id !== from.id && n.id !== to.id)) {
      await cluster.client(m.port).cluster('SETSLOT', slot, 'NODE', to.id);
    }
    await withTimeout(back, 15_000, 'the instance to re-subscribe the migrated channel');
    expect(await cluster.masterOf(slot)).toBe(to.port);
    expect(((await cluster.client(to.port).call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number])[1]).toBe(1);
    expect(((await cluster.client(from.port).call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number])[1]).toBe(0);
    await cluster.client(to.port).spublish(channel, 'after the migration');
    await waitUntil(() => got, (g) => g.includes('after the migration'), 'the message published on the new owner');
    // The channel that stayed on the old master still works (its connection was renewed).
    await waitUntil(
      async () => ((await cluster.client(from.port).call('PUBSUB', 'SHARDNUMSUB', kept)) as [string, number])[1],
      (n) => n === 1,
      'the channel left on the old master to be subscribed there',
    );
    await cluster.client(from.port).spublish(kept, 'still here');
    await waitUntil(() => keptGot, (g) => g.includes('still here'), 'the message on the channel that stayed');
    a.channels.unsubscribe(channel);
    a.channels.unsubscribe(kept);
    await waitUntil(() => shardNumSub(channel), (n) => n === 0, 'SHARDNUMSUB of the migrated channel to return to 0');
    expect(a.errors).toEqual([]);
  }, 30_000);

  it('after a failover, re-subscribes the channel on the promoted replica and delivers new messages', async () => {
    const a = instance();
    const channel = 'runwatch:{failover}:job';
    const got: string[] = [];
    await a.channels.subscribe(channel, (m) => got.push(m));
    const master = await cluster.masterOf(await cluster.slotOf(channel));
    const loss = a.nextLoss();
    const back = a.nextResubscribe();
    const promoted = await cluster.killMasterAndAwaitFailover(master);
    await withTimeout(loss, 10_000, 'the instance to notice the master is gone');
    await withTimeout(back, 20_000, 'the instance to re-subscribe on the promoted replica');
    expect(a.channels.subscribers.has(`127.0.0.1:${promoted}`)).toBe(true);
    expect(a.channels.subscribers.has(`127.0.0.1:${master}`)).toBe(false);
    expect(await shardNumSub(channel)).toBe(1);
    await cluster.client(promoted).spublish(channel, 'after the failover');
    await waitUntil(() => got, (g) => g.includes('after the failover'), 'the message published after the failover');
    // The old master returns as a replica: nothing of ours is subscribed there.
    await cluster.restartNode(master);
    expect(((await cluster.client(master).call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number])[1]).toBe(0);
    a.channels.unsubscribe(channel);
    await waitUntil(() => shardNumSub(channel), (n) => n === 0, 'SHARDNUMSUB to return to 0 on the new master');
    expect(a.errors).toEqual([]);
  }, 60_000);
});
