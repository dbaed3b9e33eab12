/**
 * The Redis change feed applies each job's changes in commit order across
 * instances (issue 18): a partition is worked by one instance at a time, so a
 * projector never sees a job's newer change before an older one — not while
 * two instances share the log, and not when one of them wedges with changes
 * read and unacknowledged and another takes its partitions over.
 * Two feeds in one process stand for two instances (each its own connections
 * and consumer name); the producer XADDs changes as the commit scripts do.
 * The first case runs on a 3-master Redis Cluster too (partitions in 16 slots:
 * reads one slot at a time, leases in their partition's slot).
 */
import { Cluster, Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { RedisChangeFeed, changeLeaseKey } from '../../src/backends/redis-changes.js';
import { changesKey } from '../../src/backends/redis-keys.js';
import { changePartition, isNewer, type JobChangeRecord } from '../../src/domain/changes.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { startRedisCluster } from '../helpers/redis-cluster.js';
import { waitUntil } from '../helpers/wait.js';

const PARTITIONS = 4;
const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** A feed as one instance has it: its own command connection (ready) and consumer name. */
async function instance(redis: TestRedis, consumer: string, leaseMs: number) {
  const commands = new Redis(redis.url, { maxRetriesPerRequest: 1, enableOfflineQueue: false });
  commands.on('error', () => {});
  await new Promise<void>((resolve) => commands.once('ready', () => resolve()));
  const errors: string[] = [];
  const feed = new RedisChangeFeed(commands, {
    partitions: PARTITIONS,
    consumer,
    leaseMs,
    connect: () => new Redis(redis.url, { maxRetriesPerRequest: 1 }),
    onError: (context) => errors.push(context),
  });
  cleanup.push(async () => {
    await feed.close();
    commands.disconnect();
  });
  return { feed, commands, errors };
}

/** Appends change `offset` of `jobId` to its partition, as a commit script does. */
async function commit(producer: Redis, jobId: string, offset: number) {
  const change = { jobId, offset, created: offset === 0, types: offset === 0 ? [] : ['PROGRESS'], job: { id: jobId } } as unknown as JobChangeRecord;
  await producer.xadd(changesKey(changePartition(jobId, PARTITIONS), PARTITIONS), '*', 'c', JSON.stringify(change));
}

/**
 * A projection as the real ones are: idempotent by offset (a change handed over again — at least once — is a no-op,
 * isNewer). It records each job's offsets in the order they took effect, across every instance: a newer change
 * applied before an older one would show as a gap, and the older one would then be a no-op, missing for good.
 */
function recorder() {
  const applied = new Map<string, number[]>();
  const record = (change: JobChangeRecord) => {
    const list = applied.get(change.jobId) ?? [];
    if (isNewer(change, list.at(-1))) list.push(change.offset);
    applied.set(change.jobId, list);
  };
  const count = () => [...applied.values()].reduce((n, l) => n + l.length, 0);
  return { applied, record, count };
}

/** A few microtasks to a few milliseconds: applies of different jobs finish in shuffled order. */
const jitter = () => new Promise<void>((resolve) => (Math.random() < 0.3 ? setTimeout(resolve, Math.random() * 3) : setImmediate(resolve)));

describe('Redis change feed: one job\'s changes are applied in order across instances', () => {
  it('two instances projecting one log apply every change once, each job in commit order', async () => {
    const redis = await startRedis();
    cleanup.push(() => redis.stop(true));
    const producer = new Redis(redis.url);
    cleanup.push(async () => producer.disconnect());
    const seen = recorder();
    const a = await instance(redis, 'a', 5000);
    const b = await instance(redis, 'b', 5000);
    for (const { feed } of [a, b])
      feed.project('order', async (change) => {
        await jitter();
        seen.record(change);
      });
    await Promise.all([a.feed.ready(), b.feed.ready()]);

    const jobs = Array.from({ length: 12 }, (_, i) => `job-${i}`);
    const perJob = 40;
    for (let offset = 0; offset < perJob; offset++) await Promise.all(jobs.map((id) => commit(producer, id, offset)));

    await waitUntil(seen.count, (n) => n >= jobs.length * perJob, `${jobs.length * perJob} changes applied`, 20_000);
    const expected = Array.from({ length: perJob }, (_, i) => i);
    for (const id of jobs) expect(seen.applied.get(id), `offsets of ${id} as applied`).toEqual(expected);
    // Each partition is leased to one of the two.
    for (let p = 0; p < PARTITIONS; p++) expect(['a', 'b']).toContain(await producer.get(changeLeaseKey(p, PARTITIONS, 'order')));
    expect([...a.errors, ...b.errors]).toEqual([]);
  });

  it('a wedged instance\'s partitions go to another once its lease runs out; its unacknowledged changes come first, in order', async () => {
    const redis = await startRedis();
    cleanup.push(() => redis.stop(true));
    const producer = new Redis(redis.url);
    cleanup.push(async () => producer.disconnect());
    const seen = recorder();
    const leaseMs = 300;

    // Instance A holds every partition and wedges on the 3rd change it applies: that apply never returns, and A's
    // command connection goes away, so it can neither acknowledge nor renew its leases (as if it had been killed).
    const a = await instance(redis, 'a', leaseMs);
    let appliedByA = 0;
    let wedged = false;
    a.feed.project('order', async (change) => {
      if (++appliedByA === 3) {
        wedged = true;
        a.commands.disconnect();
        await new Promise(() => {});
      }
      seen.record(change);
    });
    await a.feed.ready();
    await waitUntil(() => producer.get(changeLeaseKey(0, PARTITIONS, 'order')), (holder) => holder === 'a', 'A holds partition 0');

    const jobs = Array.from({ length: 8 }, (_, i) => `w-${i}`);
    const perJob = 15;
    for (let offset = 0; offset < perJob; offset++) await Promise.all(jobs.map((id) => commit(producer, id, offset)));
    await waitUntil(() => wedged, Boolean, 'A wedged');

    // B starts afterwards: it must wait out A's leases, take over what A read, then go on with what nobody read.
    const b = await instance(redis, 'b', leaseMs);
    b.feed.project('order', async (change) => {
      await jitter();
      seen.record(change);
    });
    await b.feed.ready();
    await waitUntil(seen.count, (n) => n >= jobs.length * perJob, `${jobs.length * perJob} changes applied (A applied ${appliedByA - 1})`, 20_000);
    const expected = Array.from({ length: perJob }, (_, i) => i);
    for (const id of jobs) expect(seen.applied.get(id), `offsets of ${id} as applied`).toEqual(expected);
    for (let p = 0; p < PARTITIONS; p++) expect(await producer.get(changeLeaseKey(p, PARTITIONS, 'order'))).toBe('b');
    await waitUntil(
      async () => {
        let sum = 0;
        for (let p = 0; p < PARTITIONS; p++) sum += Number(((await producer.xpending(changesKey(p, PARTITIONS), 'order')) as [number])[0]);
        return sum;
      },
      (n) => n === 0,
      'every change acknowledged',
    );
  });

  it('a clean stop gives the leases up at once: the other instance goes on without waiting for them to run out', async () => {
    const redis = await startRedis();
    cleanup.push(() => redis.stop(true));
    const producer = new Redis(redis.url);
    cleanup.push(async () => producer.disconnect());
    const seen = recorder();
    // A lease of a minute: only the release can hand the partitions over within this test's waits.
    const a = await instance(redis, 'a', 60_000);
    a.feed.project('order', async (change) => seen.record(change));
    await a.feed.ready();
    await waitUntil(() => producer.get(changeLeaseKey(0, PARTITIONS, 'order')), (holder) => holder === 'a', 'A holds partition 0');
    const b = await instance(redis, 'b', 60_000);
    b.feed.project('order', async (change) => seen.record(change));
    await b.feed.ready();
    await a.feed.close();
    expect(await producer.get(changeLeaseKey(0, PARTITIONS, 'order'))).toBeNull();
    await commit(producer, 'after-stop', 0);
    await commit(producer, 'after-stop', 1);
    // B takes the freed partitions at its next lease round (at most 1 s), long before A's leases would have run out.
    await waitUntil(() => seen.applied.get('after-stop'), (l) => l?.length === 2, 'the changes applied by B', 10_000);
    expect(seen.applied.get('after-stop')).toEqual([0, 1]);
  });

  it('on a Redis Cluster (16 partitions over 3 masters) two instances apply every change once, each job in commit order', async () => {
    const cluster = await startRedisCluster();
    cleanup.push(() => cluster.stop());
    const partitions = 16;
    const client = () => new Cluster(cluster.seeds, { enableOfflineQueue: false, redisOptions: { maxRetriesPerRequest: 1 } });
    const producer = new Cluster(cluster.seeds);
    cleanup.push(async () => producer.disconnect());
    const seen = recorder();
    const feeds = await Promise.all(
      ['a', 'b'].map(async (consumer) => {
        const commands = client();
        commands.on('error', () => {});
        await new Promise<void>((resolve) => commands.once('ready', () => resolve()));
        const errors: string[] = [];
        const feed = new RedisChangeFeed(commands, { partitions, consumer, leaseMs: 5000, connect: client, onError: (context) => errors.push(context) });
        cleanup.push(async () => {
          await feed.close();
          commands.disconnect();
        });
        feed.project('order', async (change) => {
          await jitter();
          seen.record(change);
        });
        await feed.ready();
        return { feed, errors };
      }),
    );
    const jobs = Array.from({ length: 24 }, (_, i) => `job-${i}`);
    const perJob = 20;
    const put = (jobId: string, offset: number) => {
      const change = { jobId, offset, created: offset === 0, types: offset === 0 ? [] : ['PROGRESS'], job: { id: jobId } };
      return producer.xadd(changesKey(changePartition(jobId, partitions), partitions), '*', 'c', JSON.stringify(change));
    };
    for (let offset = 0; offset < perJob; offset++) await Promise.all(jobs.map((id) => put(id, offset)));
    await waitUntil(seen.count, (n) => n >= jobs.length * perJob, `${jobs.length * perJob} changes applied`, 20_000);
    const expected = Array.from({ length: perJob }, (_, i) => i);
    for (const id of jobs) expect(seen.applied.get(id), `offsets of ${id} as applied`).toEqual(expected);
    for (let p = 0; p < partitions; p++) expect(['a', 'b']).toContain(await producer.get(changeLeaseKey(p, partitions, 'order')));
    expect(feeds.flatMap((f) => f.errors)).toEqual([]);
  }, 60_000);
});
