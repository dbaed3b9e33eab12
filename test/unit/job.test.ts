/**
 * The job state machine and progress rules, with a fake clock (plain numbers).
 */
import { describe, expect, it } from 'vitest';
import { DomainError } from '../../src/domain/errors.js';
import { applyProgress, createJob, finishJob, flushProgress, setPaused, snapshotEvent, viewJob, type JobRecord } from '../../src/domain/job.js';

const T0 = 1_700_000_000_000;
const INTERVAL = 100; // 10 Hz
const tenant = { institute: 'acme', environment: 'default' };
const newJob = (total: number | null = 100): JobRecord =>
  createJob({ name: 'embed', kind: 'BATCH', total }, { id: 'j1', epoch: 'ep1', tenant, ownerId: 'u1' }, T0);

const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return e instanceof DomainError ? e.code : 'other';
  }
  return 'none';
};

describe('job state machine', () => {
  it('starts QUEUED with no events and offset 0', () => {
    const job = newJob();
    expect(job).toMatchObject({ status: 'QUEUED', completed: 0, failed: 0, offset: 0 });
    expect(viewJob(job, T0)).toMatchObject({ percent: 0, rate: null, etaSeconds: null, lastCursor: null });
  });

  it('moves QUEUED → RUNNING on the first report with a STARTED event', () => {
    const { job, events } = applyProgress(newJob(), { completed: 5 }, T0 + 10, INTERVAL);
    expect(job.status).toBe('RUNNING');
    expect(job.startedAt).toBe(T0 + 10);
    expect(events.map((e) => e.type)).toEqual(['STARTED']);
    expect(events[0]).toMatchObject({ offset: 1, cursor: 'ep1.1', runId: 'j1' });
  });

  it('emits STAGE and ITEM_FAILED, never conflated, each with the state after the report', () => {
    let { job } = applyProgress(newJob(), { completed: 1 }, T0, INTERVAL);
    const change = applyProgress(job, { completedDelta: 1, failedDelta: 2, stage: 'embed', message: 'bad doc' }, T0 + 1, INTERVAL);
    expect(change.events.map((e) => e.type)).toEqual(['STAGE', 'ITEM_FAILED']);
    expect(change.events.map((e) => e.offset)).toEqual([2, 3]);
    expect(change.events[1]!.job).toMatchObject({ completed: 2, failed: 2, stage: 'embed' });
    job = change.job;
    expect(job.offset).toBe(3);
  });

  it('pauses and resumes, and the next report resumes a paused job', () => {
    let { job } = applyProgress(newJob(), { completed: 1 }, T0, INTERVAL);
    let change = setPaused(job, true, 'GPU preempted', T0 + 5);
    expect(change.events.map((e) => e.type)).toEqual(['PAUSED']);
    expect(change.job.status).toBe('PAUSED');
    expect(setPaused(change.job, true, null, T0 + 6).events).toHaveLength(0);
    change = applyProgress(change.job, { completedDelta: 1 }, T0 + 500, INTERVAL);
    expect(change.events.map((e) => e.type)).toEqual(['RESUMED']);
    expect(change.job.status).toBe('RUNNING');
    job = change.job;
    expect(codeOf(() => setPaused(newJob(), true, null, T0))).toBe('CONFLICT');
  });

  it.each(['COMPLETED', 'FAILED', 'CANCELLED'] as const)('finishes with exactly one %s event, then refuses changes with CONFLICT', (outcome) => {
    const { job } = applyProgress(newJob(), { completed: 50 }, T0, INTERVAL);
    const done = finishJob(job, outcome, outcome === 'FAILED' ? 'OOM' : null, T0 + 1000);
    expect(done.events.map((e) => e.type)).toEqual([outcome]);
    expect(done.job).toMatchObject({ status: outcome, finishedAt: T0 + 1000 });
    if (outcome === 'FAILED') expect(done.job.errorMessage).toBe('OOM');
    expect(codeOf(() => applyProgress(done.job, { completedDelta: 1 }, T0 + 2000, INTERVAL))).toBe('CONFLICT');
    expect(codeOf(() => finishJob(done.job, 'COMPLETED', null, T0 + 2000))).toBe('CONFLICT');
    expect(snapshotEvent(done.job, T0 + 3000)).toMatchObject({ type: 'SNAPSHOT', offset: 2, job: { status: outcome } });
  });

  it('refuses FAILED without an error message', () => {
    expect(codeOf(() => finishJob(newJob(), 'FAILED', ' ', T0))).toBe('BAD_USER_INPUT');
  });
});

describe('progress validation', () => {
  const running = () => applyProgress(newJob(100), { completed: 10, failedDelta: 1 }, T0, INTERVAL).job;
  it.each([
    [{ completed: 9 }, 'completed going down'],
    [{ completedDelta: -1 }, 'negative completedDelta'],
    [{ failedDelta: -1 }, 'negative failedDelta'],
    [{ completedDelta: 1.5 }, 'fractional delta'],
    [{ completed: 100 }, 'completed + failed over total'],
    [{ total: 10 }, 'total below completed + failed'],
    [{ completed: 20, completedDelta: 1 }, 'completed and completedDelta together'],
    [{ stage: 'x'.repeat(201) }, 'an over-long stage'],
    [{ resources: { containers: -1, cpuCores: 1, memoryGb: 1, gpus: 0 } }, 'negative resources'],
  ])('refuses %j (%s) with BAD_USER_INPUT', (report, _reason) => {
    expect(codeOf(() => applyProgress(running(), report, T0 + 1, INTERVAL))).toBe('BAD_USER_INPUT');
  });

  it('accepts completed + failed == total and a raised total', () => {
    const a = applyProgress(running(), { completed: 99 }, T0 + 1, INTERVAL).job;
    expect(viewJob(a, T0 + 1).percent).toBe(100);
    const b = applyProgress(running(), { total: 500, completedDelta: 100 }, T0 + 1, INTERVAL).job;
    expect(b).toMatchObject({ total: 500, completed: 110 });
  });

  it('refuses an empty name and oversized metadata at creation', () => {
    const ids = { id: 'j', epoch: 'e', tenant, ownerId: 'u' };
    expect(codeOf(() => createJob({ name: '  ', kind: 'BATCH' }, ids, T0))).toBe('BAD_USER_INPUT');
    expect(codeOf(() => createJob({ name: 'a', kind: 'BATCH', metadata: { blob: 'x'.repeat(20_000) } }, ids, T0))).toBe('BAD_USER_INPUT');
    expect(codeOf(() => createJob({ name: 'a', kind: 'BATCH', total: -1 }, ids, T0))).toBe('BAD_USER_INPUT');
  });
});

describe('publish-side conflation of PROGRESS', () => {
  it('sends at most one PROGRESS per interval and owes the newest state on the trailing edge', () => {
    let job = applyProgress(newJob(1000), { completed: 1 }, T0, INTERVAL).job; // STARTED
    const first = applyProgress(job, { completed: 2 }, T0 + 1, INTERVAL);
    expect(first.events.map((e) => e.type)).toEqual(['PROGRESS']);
    job = first.job;
    const suppressed = applyProgress(job, { completed: 3 }, T0 + 50, INTERVAL);
    expect(suppressed.events).toHaveLength(0);
    expect(suppressed.flushAtMs).toBe(T0 + 1 + INTERVAL);
    job = suppressed.job;
    const stillEarly = flushProgress(job, T0 + 60, INTERVAL);
    expect(stillEarly?.events).toHaveLength(0);
    const flushed = flushProgress(job, T0 + 101, INTERVAL)!;
    expect(flushed.events.map((e) => e.type)).toEqual(['PROGRESS']);
    expect(flushed.events[0]!.job.completed).toBe(3);
    expect(flushProgress(flushed.job, T0 + 500, INTERVAL)).toBeNull();
  });

  it('lets a non-conflatable event carry the owed state (no stale PROGRESS after it)', () => {
    let job = applyProgress(newJob(1000), { completed: 1 }, T0, INTERVAL).job;
    job = applyProgress(job, { completed: 2 }, T0 + 1, INTERVAL).job; // PROGRESS
    job = applyProgress(job, { completed: 3 }, T0 + 10, INTERVAL).job; // owed
    const stage = applyProgress(job, { stage: 'write' }, T0 + 20, INTERVAL);
    expect(stage.events.map((e) => e.type)).toEqual(['STAGE']);
    expect(stage.events[0]!.job.completed).toBe(3);
    expect(flushProgress(stage.job, T0 + 500, INTERVAL)).toBeNull();
  });
});
