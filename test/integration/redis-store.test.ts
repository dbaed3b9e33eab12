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
import { applyProgress, createJob } from '../../src/domain/job.js';
import { testKeys } from '../helpers/redis.js';
import { sharedRedisUrl } from '../helpers/servers.js';

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
});
