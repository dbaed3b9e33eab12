/**
 * The Redis job store as two instances see it: an instance starts an update
 * from the record it last committed (no read first), so these check that a
 * report always lands on the job's current state — after another instance
 * changed it, and after Redis lost the job and it was restored.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CREATE_GRACE_MS, createRedisBackend } from '../../src/backends/redis.js';
import type { Backend } from '../../src/backends/types.js';
import { applyProgress, applyStep, createJob, type JobRecord } from '../../src/domain/job.js';
import { STEP_LIMITS } from '../../src/domain/steps.js';
import { testKeys } from '../helpers/redis.js';
import { sharedRedisUrl } from '../helpers/servers.js';
import { waitUntil } from '../helpers/wait.js';

describe('the Redis job store on two instances', () => {
  let a: Backend;
  let b: Backend;
  let redis: Redis;
  beforeAll(async () => {
    const opts = { url: sharedRedisUrl(), historySize: 100, onError: () => {} };
    a = await createRedisBackend(opts);
    b = await createRedisBackend(opts);
    redis = new Redis(sharedRedisUrl());
  });
  afterAll(async () => {
    await a.close();
    await b.close();
    redis.disconnect();
  });

  const newJob = () => createJob({ kind: 'BATCH', name: 'store test', total: 100 }, { id: randomUUID(), epoch: 'e1', tenant: { institute: 'i', environment: 'e' }, ownerId: 'u' }, Date.now());
  const report = async (backend: Backend, id: string, completedDelta: number) =>
    (await backend.store.update(id, (job) => applyProgress(job, { completedDelta }, Date.now(), 0)))!.job;

  it('applies a report on top of what the other instance committed since', async () => {
    const job = newJob();
    await a.store.create(job);
    expect((await report(a, job.id, 1)).completed).toBe(1);
    expect((await report(b, job.id, 10)).completed).toBe(11);
    expect((await report(a, job.id, 1)).completed).toBe(12);
    expect((await report(a, job.id, 1)).completed).toBe(13);
    expect((await b.store.get(job.id))!.completed).toBe(13);
  });

  it('applies a report on top of a job restored after Redis lost it, not on the state it had before', async () => {
    const job = newJob();
    await a.store.create(job);
    expect((await report(a, job.id, 5)).completed).toBe(5);
    // Redis loses the job; the other instance restores it as first created and reports once,
    // so the record has been committed as many times as when instance a last saw it.
    await redis.del(testKeys.job(job.id), testKeys.jobEvents(job.id));
    expect(await b.store.restore(job)).toBe(true);
    expect((await report(b, job.id, 1)).completed).toBe(1);
    expect((await report(a, job.id, 1)).completed).toBe(2);
    expect((await b.store.get(job.id))!.completed).toBe(2);
  });

  it('answers NOT_FOUND for a job Redis no longer has, even right after committing it', async () => {
    const job = newJob();
    await a.store.create(job);
    await report(a, job.id, 1);
    await redis.del(testKeys.job(job.id));
    await expect(report(a, job.id, 1)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  // Creating a job writes two slots in order (tenant index + idempotency claim, then the record): a creation that
  // stopped between them (the instance died) must be invisible, and its leftovers repaired.
  it('hides a creation cut short after its first step, drops it from the index once stale, and lets its idempotency key make the job', async () => {
    const tenant = { institute: `i-${randomUUID().slice(0, 8)}`, environment: 'e' };
    const half = { ...newJob(), tenant };
    const staleAt = Date.now() - CREATE_GRACE_MS - 1000;
    // Step 1 alone, as a dead instance left it, long enough ago: the id indexed and the key claimed, no record.
    await redis.zadd(testKeys.tenantJobs(tenant), staleAt, half.id);
    await redis.set(testKeys.idem(tenant, 'nightly'), `${half.id}\nfp-1\n${staleAt}`);
    const listed = await a.store.list(tenant, {}, 10, null);
    expect(listed.jobs).toEqual([]);
    expect(await redis.zscore(testKeys.tenantJobs(tenant), half.id)).toBeNull(); // dropped on the way
    // The void claim is replaced: the same key now makes (and then returns) one new job.
    const job = { ...newJob(), tenant };
    const made = await b.store.create(job, { key: 'nightly', fingerprint: 'fp-1' });
    expect(made).toMatchObject({ created: true, job: { id: job.id } });
    const again = await a.store.create({ ...newJob(), tenant }, { key: 'nightly', fingerprint: 'fp-1' });
    expect(again).toMatchObject({ created: false, job: { id: job.id }, fingerprint: 'fp-1' });
    expect((await a.store.list(tenant, {}, 10, null)).jobs.map((j) => j.id)).toEqual([job.id]);
  });

  it('keeps a creation in progress listed-invisible but indexed, and makes a same-key create wait for it', async () => {
    const tenant = { institute: `i-${randomUUID().slice(0, 8)}`, environment: 'e' };
    const job = { ...newJob(), tenant };
    const now = Date.now();
    // Step 1 just happened on another instance; step 2 follows shortly.
    await redis.zadd(testKeys.tenantJobs(tenant), now, job.id);
    await redis.set(testKeys.idem(tenant, 'k'), `${job.id}\nfp\n${now}`);
    expect((await a.store.list(tenant, {}, 10, null)).jobs).toEqual([]);
    expect(await redis.zscore(testKeys.tenantJobs(tenant), job.id)).not.toBeNull(); // young: kept
    const waiting = b.store.create({ ...newJob(), tenant }, { key: 'k', fingerprint: 'fp' });
    await a.store.restore(job); // the record appears (as step 2 would write it)
    expect(await waiting).toMatchObject({ created: false, job: { id: job.id } });
  });
  // Issue 20: a stage report of a job with 100 steps must not rewrite all of them (it did: the whole record, steps
  // included, was one JSON value). Each step is a hash field of its own; a report writes `data` and what changed.
  it('writes only the steps a report changed, keeps their order past 100 steps, and reads the record whole on both instances', async () => {
    const job = { ...newJob(), tenant: { institute: `i-${randomUUID().slice(0, 8)}`, environment: 'e' } };
    await a.store.create(job);
    const stage = (backend: Backend, name: string) => backend.store.update(job.id, (j) => applyProgress(j, { completedDelta: 0, stage: name }, Date.now(), 0));
    for (let i = 1; i <= STEP_LIMITS.perJob; i++) await stage(i % 2 ? a : b, `s${i}`);
    const watcher = new Redis(sharedRedisUrl());
    const monitor = await watcher.monitor();
    const writes: string[][] = [];
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args[1] === testKeys.job(job.id) && (args[0] === 'HSET' || args[0] === 'HDEL' || args[0] === 'hset' || args[0] === 'hdel')) writes.push(args);
    });
    try {
      // The 101st stage: s100 completes, the oldest finished step (s1) makes room, s101 starts.
      const last = (await stage(a, 's101'))!.job;
      // An explicit step report on the other instance changes one step in the middle.
      const stepped = (await b.store.update(job.id, (j) => applyStep(j, { name: 's50', status: 'FAILED', error: 'boom' }, Date.now())))!.job;
      await waitUntil(() => writes.filter((w) => w[0]!.toUpperCase() === 'HSET').length, (n) => n >= 2, 'both commits in MONITOR');
      const [hdel, first, second] = [writes.find((w) => w[0]!.toUpperCase() === 'HDEL'), ...writes.filter((w) => w[0]!.toUpperCase() === 'HSET')];
      const stepFields = (w: string[]) => w.filter((arg, i) => i >= 2 && i % 2 === 0 && arg.startsWith('step:'));
      expect(stepFields(first!)).toHaveLength(2); // s100 (completed) and s101 (started)
      expect(hdel?.slice(2)).toHaveLength(1); // s1's field
      expect(stepFields(second!)).toHaveLength(1); // s50
      expect(first![first!.indexOf('data') + 1]).not.toContain('"steps"');
      // Both instances and the job list read every step, in order, as the domain made them.
      const names = [...Array.from({ length: 99 }, (_, i) => `s${i + 2}`), 's101'];
      expect(last.steps!.map((s) => s.name)).toEqual(names);
      for (const backend of [a, b]) {
        const read = (await backend.store.get(job.id))!;
        expect(read).toEqual(stepped);
        expect(read.steps!.find((s) => s.name === 's50')).toMatchObject({ status: 'FAILED', error: 'boom' });
        const listed = (await backend.store.list(job.tenant, {}, 100, null)).jobs.find((j) => j.id === job.id);
        expect(listed).toEqual(stepped);
      }
      expect(await redis.hlen(testKeys.job(job.id))).toBe(2 + STEP_LIMITS.perJob); // v, data and one field per step
    } finally {
      watcher.disconnect();
    }
  });

  it('reads a record written before steps had fields of their own, and moves its steps to fields at its next commit', async () => {
    const job = { ...newJob(), tenant: { institute: `i-${randomUUID().slice(0, 8)}`, environment: 'e' } };
    const old: JobRecord = ['a', 'b', 'c'].reduce((j, stage) => applyProgress(j, { completedDelta: 1, stage }, Date.now(), 0).job, job);
    // The old shape: the whole record, steps included, in `data` (what runwatch wrote before issue 20's change).
    await redis.hset(testKeys.job(job.id), 'v', '1073741900', 'data', JSON.stringify(old));
    await redis.zadd(testKeys.tenantJobs(job.tenant), job.createdAt, job.id);
    expect(await b.store.get(job.id)).toEqual(old);
    expect((await b.store.list(job.tenant, {}, 100, null)).jobs.find((j) => j.id === job.id)).toEqual(old);
    // A report that changes no step (same stage) still keeps them all: the record is rewritten in the new shape.
    const next = (await a.store.update(job.id, (j) => applyProgress(j, { completedDelta: 1 }, Date.now(), 0)))!.job;
    expect(next.steps!.map((s) => [s.name, s.status])).toEqual([['a', 'COMPLETED'], ['b', 'COMPLETED'], ['c', 'RUNNING']]);
    const stored = await redis.hgetall(testKeys.job(job.id));
    expect(JSON.parse(stored.data!)).not.toHaveProperty('steps');
    expect(Object.keys(stored).filter((f) => f.startsWith('step:'))).toHaveLength(3);
    expect(await b.store.get(job.id)).toEqual(next);
    const later = (await b.store.update(job.id, (j) => applyProgress(j, { stage: 'd' }, Date.now(), 0)))!.job;
    expect(await a.store.get(job.id)).toEqual(later);
    expect(later.steps!.map((s) => s.name)).toEqual(['a', 'b', 'c', 'd']);
  });
  it('during a rolling upgrade, keeps the steps of a record an instance of the previous version wrote over', async () => {
    const job = { ...newJob(), tenant: { institute: `i-${randomUUID().slice(0, 8)}`, environment: 'e' } };
    await a.store.create(job);
    for (const stage of ['a', 'b', 'c']) await a.store.update(job.id, (j) => applyProgress(j, { stage }, Date.now(), 0));
    // The previous version reads `data` alone (no steps), applies a new stage and writes the whole record back.
    const key = testKeys.job(job.id);
    const seenByOld = JSON.parse((await redis.hget(key, 'data'))!) as JobRecord;
    const oldWrite = applyProgress(seenByOld, { stage: 'd' }, Date.now(), 0).job;
    await redis.hset(key, 'v', String(Number(await redis.hget(key, 'v')) + 1), 'data', JSON.stringify(oldWrite));
    const merged = (await b.store.get(job.id))!;
    expect(merged.steps!.map((s) => [s.name, s.status])).toEqual([['a', 'COMPLETED'], ['b', 'COMPLETED'], ['c', 'RUNNING'], ['d', 'RUNNING']]);
    // The next commit rewrites the steps in fields of their own and leaves none over.
    const next = (await b.store.update(job.id, (j) => applyProgress(j, { stage: 'e' }, Date.now(), 0)))!.job;
    expect(next.steps!.map((s) => s.name)).toEqual(['a', 'b', 'c', 'd', 'e']);
    const stored = await redis.hgetall(key);
    expect(JSON.parse(stored.data!)).not.toHaveProperty('steps');
    expect(Object.keys(stored).filter((f) => f.startsWith('step:')).sort()).toEqual(['step:1', 'step:2', 'step:3', 'step:4', 'step:5']);
    expect(await a.store.get(job.id)).toEqual(next);
  });
});
