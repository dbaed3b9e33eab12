/**
 * The topic log (backends/topic-log.ts) against both backends: atomic
 * appends with consecutive offsets, history and its trimming, publication
 * in order, notices on other topics, and compare-and-set under concurrency
 * (for Redis: from two backends, as two instances would), on one Redis and
 * on a Redis Cluster (3 masters, started by this file).
 */
import { randomUUID } from 'node:crypto';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMemoryBackend } from '../../src/backends/memory.js';
import type { MemoryTopicLogStore } from '../../src/backends/memory-log.js';
import { createRedisBackend, createRedisClusterBackend } from '../../src/backends/redis.js';
import type { Backend, BusEvent } from '../../src/backends/types.js';
import { Collector } from '../helpers/clients.js';
import { testKeys } from '../helpers/redis.js';
import { startRedisCluster, type TestCluster } from '../helpers/redis-cluster.js';
import { BACKENDS, sharedRedisUrl } from '../helpers/servers.js';

type Ev = BusEvent & { n: number };
const HISTORY = 20;

describe.each([...BACKENDS, 'redis-cluster'] as const)('topic log on the %s backend', (kind) => {
  let a: Backend;
  let b: Backend;
  let cluster: TestCluster | undefined;
  beforeAll(async () => {
    if (kind === 'memory') {
      a = b = createMemoryBackend({ historySize: HISTORY });
    } else if (kind === 'redis-cluster') {
      cluster = await startRedisCluster();
      const opts = { nodes: cluster.seeds, historySize: HISTORY, onError: () => {} };
      a = await createRedisClusterBackend(opts);
      b = await createRedisClusterBackend(opts);
    } else {
      const opts = { url: sharedRedisUrl(), historySize: HISTORY, onError: () => {} };
      a = await createRedisBackend(opts);
      b = await createRedisBackend(opts);
    }
  }, 60_000);
  afterAll(async () => {
    await a?.close();
    if (b !== a) await b?.close();
    await cluster?.stop();
  });
  const topic = () => `test:${randomUUID()}`;
  const append = (backend: Backend, t: string, count: number) =>
    backend.logs.append<{ total: number }, Ev>(t, (head) => ({
      state: { total: (head.state?.total ?? 0) + count },
      events: Array.from({ length: count }, (_, i) => ({ offset: head.offset + i + 1, n: (head.state?.total ?? 0) + i + 1 })),
    }));

  it('creates a log with an epoch on first append, then keeps it', async () => {
    const t = topic();
    expect(await a.logs.head(t)).toBeNull();
    const first = await append(a, t, 2);
    const second = await append(b, t, 1);
    expect(second!.epoch).toBe(first!.epoch);
    expect(await b.logs.head(t)).toEqual({ epoch: first!.epoch, offset: 3, state: { total: 3 } });
  });

  it('publishes appended events in order to subscribers on any instance, and notices on other topics', async () => {
    const t = topic();
    const other = topic();
    const events = new Collector<Ev>();
    const notices = new Collector<BusEvent & { hello: string }>();
    const off1 = await b.bus.subscribe<Ev>(t, (e) => events.push(e));
    const off2 = await b.bus.subscribe<BusEvent & { hello: string }>(other, (e) => notices.push(e));
    await append(a, t, 3);
    await a.logs.append<null, Ev>(t, (head) => ({ state: null, events: [{ offset: head.offset + 1, n: 99 }], notify: [{ topic: other, message: { offset: 0, hello: 'x' } }] }));
    await events.waitForCount(4);
    await notices.waitForCount(1);
    expect(events.items.map((e) => e.offset)).toEqual([1, 2, 3, 4]);
    expect(notices.items[0]!.hello).toBe('x');
    off1();
    off2();
  });

  it('reads history after an offset, and says when trimming lost part of it', async () => {
    const t = topic();
    await append(a, t, 5);
    expect((await b.logs.history<Ev>(t, 2)).events.map((e) => e.n)).toEqual([3, 4, 5]);
    expect(await b.logs.history(t, 5)).toEqual({ events: [], covered: true });
    // Redis trims approximately (whole stream nodes of 100 entries), so go well past the limit.
    for (let i = 0; i < 30; i++) await append(a, t, 10);
    const old = await b.logs.history<Ev>(t, 1);
    expect(old.covered).toBe(false);
    const recent = await b.logs.history<Ev>(t, 300);
    expect(recent.covered).toBe(true);
    expect(recent.events.map((e) => e.offset)).toEqual([301, 302, 303, 304, 305]);
    expect(await b.logs.history(topic(), 0)).toEqual({ events: [], covered: false });
  });

  it('commits nothing when the change returns null or throws', async () => {
    const t = topic();
    await append(a, t, 1);
    expect(await a.logs.append(t, () => null)).toBeNull();
    await expect(
      a.logs.append(t, () => {
        throw new Error('no');
      }),
    ).rejects.toThrow('no');
    expect((await a.logs.head(t))!.offset).toBe(1);
  });

  it('never loses a concurrent append (compare-and-set across instances)', async () => {
    const t = topic();
    await Promise.all(Array.from({ length: 40 }, (_, i) => append(i % 2 ? a : b, t, 1)));
    const head = await a.logs.head<{ total: number }>(t);
    expect(head).toMatchObject({ offset: 40, state: { total: 40 } });
    const read = await a.logs.history<Ev>(t, 20);
    expect(read.events.map((e) => e.n)).toEqual(Array.from({ length: 20 }, (_, i) => 21 + i));
  });

  it('fails only the append whose change throws when concurrent appends share a commit', async () => {
    const t = topic();
    const results = await Promise.allSettled(
      Array.from({ length: 10 }, (_, i) =>
        i === 4
          ? a.logs.append(t, () => {
              throw new Error('bad batch');
            })
          : append(a, t, 1),
      ),
    );
    expect(results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.message)).toEqual(['bad batch']);
    expect(await b.logs.head(t)).toMatchObject({ offset: 9, state: { total: 9 } });
  });

  it('starts a new epoch when the log was lost after this instance last committed to it', async () => {
    const t = topic();
    const first = await append(a, t, 3);
    if (kind !== 'memory') {
      const redis = kind === 'redis' ? new Redis(sharedRedisUrl()) : new Cluster(cluster!.seeds);
      try {
        expect(await redis.del(testKeys.logHead(t), testKeys.logEvents(t))).toBe(2);
      } finally {
        redis.disconnect();
      }
    } else {
      (a.logs as MemoryTopicLogStore).remove(t);
    }
    const again = await append(a, t, 1);
    expect(again!.epoch).not.toBe(first!.epoch);
    expect(await b.logs.head(t)).toEqual({ epoch: again!.epoch, offset: 1, state: { total: 1 } });
    expect(await b.logs.history(t, 0)).toMatchObject({ covered: true, events: [{ offset: 1, n: 1 }] });
  });
});
