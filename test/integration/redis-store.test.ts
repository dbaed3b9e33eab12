/**
 * The Redis job store as two instances see it: an instance starts an update
 * from the record it last committed (no read first), so these check that a
 * report always lands on the job's current state — after another instance
 * changed it, and after Redis lost the job and it was restored.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisBackend } from '../../src/backends/redis.js';
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
});
