/**
 * Projectors on Redis across instances (issue 18's foundation): a change is
 * applied once per projector across the deployment, and an instance SIGKILLed
 * while it holds changes it read but did not acknowledge loses nothing — the
 * survivor takes them over (XAUTOCLAIM) and the projection ends exact.
 */
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createRedisBackend } from '../../src/backends/redis.js';
import type { Backend } from '../../src/backends/types.js';
import { changesKey } from '../../src/backends/redis-keys.js';
import { applyProgress, createJob } from '../../src/domain/job.js';
import { newEpoch, newJobId } from '../../src/domain/ids.js';
import { spawnServer } from '../helpers/processes.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { freshInstitute, startTestServer, token, viewerOf } from '../helpers/servers.js';
import { waitUntil } from '../helpers/wait.js';

const cleanup: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** A producer that commits job changes straight through a backend (no projectors of its own): fast, in-process. */
async function producer(redis: TestRedis) {
  const backend: Backend = await createRedisBackend({ url: redis.url, historySize: 100, onError: () => {} });
  cleanup.push(() => backend.close());
  return backend;
}

describe('projectors survive a SIGKILLed instance (Redis)', () => {
  it('the activity projection is exact after the instance applying it dies mid-way', async () => {
    const redis = await startRedis();
    cleanup.push(() => redis.stop(true));
    // Instance A is the only consumer while the changes come; it dies with some of them read and unacknowledged.
    const a = await spawnServer({ REDIS_URL: redis.url, RUNWATCH_CHANGE_CLAIM_MS: '300' });
    const backend = await producer(redis);
    const tok = await token({ inst: freshInstitute() });
    const viewer = await viewerOf(tok);
    const n = 120;
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const now = Date.now();
      const job = createJob({ name: `p${i}`, kind: 'BATCH', total: 10 }, { id: newJobId(now), epoch: newEpoch(), tenant: viewer.tenant, ownerId: viewer.userId }, now);
      await backend.store.create(job);
      ids.push(job.id);
    }
    const start = (id: string) => backend.store.update(id, (job) => applyProgress(job, { completed: 1 }, Date.now(), 100));
    // Half the jobs start while A applies their changes; A dies in the middle of it.
    await Promise.all(ids.slice(0, n / 2).map(start));
    a.kill('SIGKILL');
    expect(await a.exited).toBe('SIGKILL');
    // The other half start while no instance runs at all.
    await Promise.all(ids.slice(n / 2).map(start));
    const direct = new Redis(redis.url);
    cleanup.push(async () => direct.disconnect());
    const pendingOf = async () => {
      let sum = 0;
      for (let p = 0; p < 4; p++) sum += Number(((await direct.xpending(changesKey(p, 4), 'activity')) as [number])[0]);
      return sum;
    };
    const pendingAtDeath = await pendingOf();

    // Instance B starts later: it reads what nobody read and takes over what A left unacknowledged.
    const b = await startTestServer({ redisUrl: redis.url, config: { changeClaimMs: 300 } });
    const view = await waitUntil(
      () => b.services.activity.snapshot(viewer, 'ENVIRONMENT'),
      (v) => v.activeJobs.length === n,
      `all ${n} started jobs active (A left ${pendingAtDeath} changes unacknowledged)`,
      20_000,
    );
    expect(new Set(view.activeJobs.map((j) => j.job.id))).toEqual(new Set(ids));
    await waitUntil(pendingOf, (p) => p === 0, 'every change acknowledged', 10_000);
    // Finishing them empties the set: the projection keeps following, exactly.
    await Promise.all(ids.map((id) => b.services.jobs.finish(viewer, id, 'COMPLETED', null)));
    await waitUntil(() => b.services.activity.snapshot(viewer, 'ENVIRONMENT'), (v) => v.activeJobs.length === 0, 'no active job left', 20_000);
    // Its budget covers its bounded waits: a server process to start (spawnServer: up to 60 s on a loaded machine),
    // then 20 + 10 + 20 s for the projection: 30 s ran out beside two CPU hogs.
  }, 120_000);
});
