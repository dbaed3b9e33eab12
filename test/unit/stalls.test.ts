/**
 * Stall detection's pure rule (domain `stallCheck`) and the in-memory deadline
 * index it is swept from: when a job stalls, when it is looked at next, and
 * that checking a stalled job again changes nothing.
 */
import { describe, expect, it } from 'vitest';
import { MemoryDeadlineIndex } from '../../src/backends/memory-deadlines.js';
import { applyProgress, createJob, finishJob, firstStallCheckAt, setPaused, stallCheck, type JobRecord } from '../../src/domain/job.js';

const ids = { id: 'j_1', epoch: 'e', tenant: { institute: 'i', environment: 'default' }, ownerId: 'u' };
const running = (hb: number, at = 0): JobRecord => applyProgress(createJob({ name: 'x', kind: 'BATCH', heartbeatSeconds: hb }, ids, at), { completedDelta: 1 }, at, 100).job;

describe('stallCheck', () => {
  it('stalls a RUNNING job a heartbeat after its last report, once; the next report recovers it', () => {
    const job = running(2, 1000);
    expect(stallCheck(job, 2999)).toEqual({ change: null, nextCheckAtMs: 3000 });
    const { change, nextCheckAtMs } = stallCheck(job, 3000);
    expect(change!.events.map((e) => [e.type, e.message])).toEqual([['STALLED', 'no report for 2 s']]);
    expect(change!.job.stalled).toBe(true);
    expect(change!.events[0]!.job.stalled).toBe(true);
    expect(nextCheckAtMs).toBe(5000);
    // Idempotent: the same check of the stalled job commits nothing.
    expect(stallCheck(change!.job, 3001).change).toBeNull();
    const recovered = applyProgress(change!.job, { completedDelta: 1 }, 4000, 100);
    expect(recovered.events.map((e) => e.type)).toEqual(['RECOVERED']);
    expect(recovered.job.stalled).toBe(false);
    expect(stallCheck(recovered.job, 5999)).toEqual({ change: null, nextCheckAtMs: 6000 });
  });

  it('never stalls QUEUED or PAUSED jobs, finished jobs or heartbeat 0; the next check is never past the real deadline', () => {
    const queued = createJob({ name: 'q', kind: 'BATCH', heartbeatSeconds: 1 }, ids, 0);
    expect(firstStallCheckAt(queued)).toBe(1000);
    expect(stallCheck(queued, 5000)).toEqual({ change: null, nextCheckAtMs: 6000 });
    const paused = setPaused(running(1), true, null, 10).job;
    expect(stallCheck(paused, 9000)).toEqual({ change: null, nextCheckAtMs: 10_000 });
    expect(stallCheck(finishJob(running(1), 'COMPLETED', null, 10).job, 9000)).toEqual({ change: null, nextCheckAtMs: null });
    const off = running(0);
    expect(firstStallCheckAt(off)).toBeNull();
    expect(stallCheck(off, 1e9)).toEqual({ change: null, nextCheckAtMs: null });
  });

  it('refuses a negative or fractional heartbeat', () => {
    expect(() => createJob({ name: 'x', kind: 'BATCH', heartbeatSeconds: -1 }, ids, 0)).toThrow(/heartbeatSeconds/);
    expect(() => createJob({ name: 'x', kind: 'BATCH', heartbeatSeconds: 1.5 }, ids, 0)).toThrow(/heartbeatSeconds/);
  });
});

describe('MemoryDeadlineIndex', () => {
  it('claims due entries earliest first, leases them, and skips moved or removed ones', async () => {
    const index = new MemoryDeadlineIndex();
    await index.schedule('a', 30);
    await index.schedule('b', 10);
    await index.schedule('c', 20);
    await index.schedule('c', 100); // moved later
    await index.schedule('d', 5);
    await index.remove('d');
    expect(await index.claimDue(50, 1000, 10)).toEqual(['b', 'a']);
    expect(await index.claimDue(50, 1000, 10)).toEqual([]); // leased
    expect(await index.claimDue(1050, 1000, 1)).toEqual(['c']); // 100 < the leases' 1050
    expect((await index.claimDue(1050, 1000, 10)).sort()).toEqual(['a', 'b']);
    expect(index.size).toBe(3);
  });
});
