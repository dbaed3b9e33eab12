/**
 * The pure activity, budget and command domains with a fake clock.
 */
import { describe, expect, it } from 'vitest';
import type { JobChangeRecord } from '../../src/domain/changes.js';
import { projectActivity, entriesInScope, throttleHint, totalsOf, withEntry, emptyHintThrottle, type Hint } from '../../src/domain/activity.js';
import { budgetCrossings, emptyBudget, recordUsage, setBudget, viewBudget } from '../../src/domain/budget.js';
import { addCommand, answerCommand, commandState, parseCommandId } from '../../src/domain/commands.js';
import { DomainError } from '../../src/domain/errors.js';
import { createJob, type JobRecord } from '../../src/domain/job.js';

const job = (over: Partial<JobRecord> = {}): JobRecord => ({
  ...createJob({ name: 'j', kind: 'BATCH' }, { id: 'j1', epoch: 'e', tenant: { institute: 'i', environment: 'e1' }, ownerId: 'u1' }, 0),
  ...over,
});
const R = { containers: 1, cpuCores: 2, memoryGb: 4, gpus: 1 };

describe('budget arithmetic', () => {
  it('adds usage exactly, allows going over, and hints near then over', () => {
    let b = setBudget(emptyBudget(), 10, 'EUR').budget;
    const steps = [0.1, 0.2, 8.7, 0.9, 0.2].map((amount) => {
      const r = recordUsage(b, amount);
      b = r.budget;
      return r.hints;
    });
    expect(steps).toEqual([[], [], ['NEAR_BUDGET'], [], ['OVER_BUDGET']]);
    expect(viewBudget(b)).toEqual({ budgetTotal: 10, budgetUsed: 10.1, budgetRemaining: -0.1, currency: 'EUR', percentUsed: 101 });
    expect(b.version).toBe(6);
  });
  it('jumps straight over budget with one OVER_BUDGET hint; lowering the total can cross too', () => {
    const b = setBudget(emptyBudget(), 1, 'USD').budget;
    expect(recordUsage(b, 5).hints).toEqual(['OVER_BUDGET']);
    const used = recordUsage(setBudget(emptyBudget(), 100, 'USD').budget, 50).budget;
    expect(setBudget(used, 52, 'USD').hints).toEqual(['NEAR_BUDGET']);
    expect(budgetCrossings(emptyBudget(), recordUsage(emptyBudget(), 3).budget)).toEqual([]);
  });
  it('refuses bad amounts and currencies', () => {
    expect(() => recordUsage(emptyBudget(), 0)).toThrow(DomainError);
    expect(() => recordUsage(emptyBudget(), Number.POSITIVE_INFINITY)).toThrow(DomainError);
    expect(() => setBudget(emptyBudget(), -1, 'EUR')).toThrow(DomainError);
    expect(() => setBudget(emptyBudget(), 1, 'euro')).toThrow(DomainError);
    expect(viewBudget(emptyBudget())).toMatchObject({ budgetTotal: null, budgetRemaining: null, percentUsed: null });
  });
});

describe('activity', () => {
  it('tracks a job entering, changing and leaving the active set, with hints', () => {
    const queued = job();
    const running = job({ status: 'RUNNING', resources: R });
    const ch = (j: typeof queued, offset: number, types: string[]) => ({ jobId: j.id, offset, created: false, types, job: j }) as unknown as JobChangeRecord;
    const started = projectActivity(null, ch(running, 1, ['STARTED']), 5)!;
    expect(started).toMatchObject({ state: { jobs: { j1: { jobId: 'j1', resources: R } } }, hint: { kind: 'JOB_STARTED', jobId: 'j1' } });
    expect(projectActivity(started.state, ch({ ...running, completed: 5 }, 2, ['PROGRESS']), 5)).toBeNull();
    const more = projectActivity(started.state, ch({ ...running, resources: { ...R, gpus: 2 } }, 3, ['PROGRESS']), 5)!;
    expect(more).toMatchObject({ state: { jobs: { j1: { resources: { gpus: 2 } } } }, hint: null });
    const failed = projectActivity(more.state, ch({ ...running, status: 'FAILED', errorMessage: 'OOM' }, 4, ['FAILED']), 5)!;
    expect(failed).toMatchObject({ state: { jobs: {} }, hint: { kind: 'JOB_FAILED', message: 'j failed: OOM' } });
    expect(projectActivity(null, ch({ ...queued, status: 'CANCELLED' }, 1, ['CANCELLED']), 5)).toBeNull();
  });
  it('applies the same change twice once (the activity projector is idempotent by offset)', () => {
    const running = job({ status: 'RUNNING', resources: R });
    const change = { jobId: 'j1', offset: 1, created: false, types: ['STARTED'], job: running } as unknown as JobChangeRecord;
    const once = projectActivity(null, change, 5)!;
    expect(once.state.jobs.j1).toBeDefined();
    expect(projectActivity(once.state, change, 6)).toBeNull();
    // An older change arriving late (handed over after a newer one) changes nothing either.
    const done = projectActivity(once.state, { ...change, offset: 2, types: ['COMPLETED'], job: { ...running, status: 'COMPLETED' } }, 7)!;
    expect(projectActivity(done.state, change, 8)).toBeNull();
  });
  it('selects by scope and sums resources', () => {
    let s = withEntry(null, 'a', { jobId: 'a', environment: 'e1', ownerId: 'u1', status: 'RUNNING', resources: R });
    s = withEntry(s, 'b', { jobId: 'b', environment: 'e1', ownerId: 'u2', status: 'PAUSED', resources: null });
    s = withEntry(s, 'c', { jobId: 'c', environment: 'e2', ownerId: 'u1', status: 'RUNNING', resources: R });
    const v = { userId: 'u1', environment: 'e1' };
    expect(entriesInScope(s, 'USER', v).map((e) => e.jobId)).toEqual(['a']);
    expect(entriesInScope(s, 'ENVIRONMENT', v).map((e) => e.jobId)).toEqual(['a', 'b']);
    expect(entriesInScope(s, 'INSTITUTE', v).map((e) => e.jobId)).toEqual(['a', 'b', 'c']);
    expect(totalsOf(entriesInScope(s, 'INSTITUTE', v))).toEqual({ jobs: 3, containers: 2, cpuCores: 4, memoryGb: 8, gpus: 2 });
    expect(entriesInScope(withEntry(s, 'a', null), 'USER', v)).toEqual([]);
  });
  it('throttles hints to one per interval, queueing a few and counting the dropped', () => {
    const hint = (n: number): Hint => ({ kind: 'JOB_STARTED', message: `${n}`, jobId: `${n}`, environment: 'e', ownerId: null, timestamp: 0 });
    const opts = { intervalMs: 1000, maxQueued: 2 };
    let s = emptyHintThrottle();
    const sent: string[] = [];
    const offer = (h: Hint | null, now: number) => {
      const r = throttleHint(s, h, now, opts);
      s = r.state;
      if (r.send) sent.push(`${r.send.message}+${r.send.droppedBefore}`);
      return r.nextAtMs;
    };
    expect(offer(hint(1), 0)).toBeNull();
    expect(offer(hint(2), 10)).toBe(1000);
    offer(hint(3), 20);
    offer(hint(4), 30); // the queue holds 2: hint 2 is dropped
    expect(offer(null, 999)).toBe(1000);
    expect(offer(null, 1000)).toBe(2000);
    expect(offer(null, 2000)).toBeNull();
    expect(sent).toEqual(['1+0', '3+1', '4+0']);
  });
});

describe('training commands', () => {
  it('goes PENDING → ACKNOWLEDGED, or EXPIRED when not answered in time', () => {
    const { state, record } = addCommand(null, { runId: 'j_1', seq: 1, command: 'PAUSE', args: null, senderId: 'u', ttlSeconds: 10 }, 0);
    expect(record).toMatchObject({ id: 'j_1.c1', state: 'PENDING', expiresAt: 10_000 });
    expect(parseCommandId(record.id)).toEqual({ runId: 'j_1', seq: 1 });
    expect(commandState(record, 9_999)).toBe('PENDING');
    expect(commandState(record, 10_000)).toBe('EXPIRED');
    expect(answerCommand(state, record.id, true, 'ok', 5).record).toMatchObject({ state: 'ACKNOWLEDGED', message: 'ok', respondedAt: 5 });
    expect(() => answerCommand(state, record.id, true, null, 10_000)).toThrow(/EXPIRED/);
    const answered = answerCommand(state, record.id, false, 'busy', 5).state;
    expect(() => answerCommand(answered, record.id, true, null, 6)).toThrow(/REJECTED/);
    expect(() => addCommand(null, { runId: 'r', seq: 1, command: 'STOP', args: null, senderId: 'u', ttlSeconds: 0 }, 0)).toThrow(DomainError);
  });
});
