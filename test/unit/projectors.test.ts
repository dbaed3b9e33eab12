/**
 * Projectors are idempotent by offset: the change feed hands a change over at
 * least once (a retry, a takeover after an instance died), so applying the
 * same change a second time must change nothing. One test per projector
 * (training, groups, joblist here; activity's is in activity-domain.test.ts); and the in-process
 * feed's own guarantees (every projector sees every change, a failed apply is
 * retried, one job's changes in order).
 */
import { describe, expect, it } from 'vitest';
import { MemoryChangeFeed } from '../../src/backends/memory-changes.js';
import { creationChange, updateChange, type JobChangeRecord } from '../../src/domain/changes.js';
import { createJob, finishJob, viewJob, type JobRecord } from '../../src/domain/job.js';
import { applyChild, wouldEndParent } from '../../src/domain/groups.js';
import { projectJobList, shownBySnapshot, snapshotUpdate } from '../../src/domain/job-list.js';
import { DEFAULT_LOG_LIMITS, emptyTrainingState } from '../../src/domain/training-stream.js';
import { projectTrainingStatus } from '../../src/services/training.js';

const tenant = { institute: 'i', environment: 'e' };
const job = (over: Partial<JobRecord> = {}): JobRecord => ({
  ...createJob({ name: 'run', kind: 'TRAINING', total: 10 }, { id: 'j1', epoch: 'ep', tenant, ownerId: 'u' }, 1),
  ...over,
});
const settings = { intervalMs: 100, ...DEFAULT_LOG_LIMITS };

describe('training projector', () => {
  it('ends the training stream once when the job is cancelled; the same change again commits nothing', () => {
    const cancelled = finishJob(job({ status: 'RUNNING', offset: 3 }), 'CANCELLED', 'stop', 10);
    const change = updateChange(cancelled.job, cancelled.events.map((e) => e.type))!;
    const head = { epoch: 'tr', offset: 0, runId: 'j1' };
    const first = projectTrainingStatus(change, head, emptyTrainingState(settings), 20, settings)!;
    expect(first.events).toMatchObject([{ type: 'TRAINING_STATUS_CHANGE', status: 'STOPPED' }]);
    const again = projectTrainingStatus(change, { ...head, offset: first.events.length }, first.state, 30, settings);
    expect(again).toBeNull();
  });
  it('ignores changes that do not finish the job, and runs without a training log', () => {
    const started = updateChange(job({ status: 'RUNNING', offset: 1 }), ['STARTED'])!;
    expect(projectTrainingStatus(started, { epoch: 'tr', offset: 0, runId: 'j1' }, emptyTrainingState(settings), 20, settings)).toBeNull();
    const done = finishJob(job({ status: 'RUNNING', offset: 3 }), 'COMPLETED', null, 10);
    expect(projectTrainingStatus(updateChange(done.job, ['COMPLETED'])!, { epoch: 'tr', offset: 0, runId: 'j1' }, null, 20, settings)).toBeNull();
  });
});

describe('the in-process change feed', () => {
  it('hands every change to every projector, one job in order, and retries a failed apply', async () => {
    const feed = new MemoryChangeFeed(() => {}, 5);
    const seen: string[] = [];
    const other: number[] = [];
    let failOnce = true;
    feed.project('a', async (c) => {
      if (c.offset === 2 && failOnce) {
        failOnce = false;
        throw new Error('flaky');
      }
      seen.push(`${c.jobId}@${c.offset}`);
    });
    feed.project('b', async (c) => void other.push(c.offset));
    const changes: JobChangeRecord[] = [creationChange(job()), ...[1, 2, 3].map((offset) => updateChange(job({ offset }), ['PROGRESS'])!)];
    for (const c of changes) feed.append(c);
    await feed.idle();
    // The retry starts again at the failed change; projectors are idempotent, so a change may come twice, never out of order.
    expect(seen).toEqual(['j1@0', 'j1@1', 'j1@2', 'j1@3']);
    expect(other).toEqual([0, 1, 2, 3]);
    await feed.close();
  });
});

describe('groups projector (parent aggregation)', () => {
  const parent = () => job({ id: 'p', kind: 'BATCH', name: 'batch', total: null, offset: 0 });
  const child = (id: string, over: Partial<JobRecord>) => job({ id, name: id, kind: 'BATCH', parentId: 'p', depth: 2, ...over });
  it('applies a child change once: the same change again (or an older one) changes nothing', () => {
    const c1 = updateChange(child('c1', { status: 'RUNNING', completed: 4, total: 10, offset: 2 }), ['STARTED'])!;
    const once = applyChild(parent(), c1, 100, 100)!;
    expect(viewJob(once.job, 100)).toMatchObject({ status: 'RUNNING', completed: 4, total: 10, childCounts: { running: 1 } });
    expect(once.events.map((e) => e.type)).toEqual(['CHILD', 'STARTED']);
    expect(applyChild(once.job, c1, 200, 100)).toBeNull();
    const c1later = updateChange(child('c1', { status: 'COMPLETED', completed: 10, total: 10, offset: 5 }), ['COMPLETED'])!;
    const done = applyChild(once.job, c1later, 300, 100)!;
    expect(viewJob(done.job, 300)).toMatchObject({ status: 'COMPLETED', completed: 10, childCounts: { completed: 1, running: 0 } });
    expect(done.events.map((e) => e.type)).toEqual(['CHILD', 'COMPLETED']);
    expect(applyChild(done.job, c1, 400, 100)).toBeNull();
  });
  it('derives FAILED when a child failed and the rest finished; an explicit status is kept', () => {
    let p = applyChild(parent(), creationChange(child('a', {})), 1, 100)!.job;
    p = applyChild(p, creationChange(child('b', {})), 2, 100)!.job;
    p = applyChild(p, updateChange(child('a', { status: 'FAILED', offset: 2, errorMessage: 'x' }), ['FAILED'])!, 3, 100)!.job;
    expect(p.status).toBe('QUEUED');
    const last = applyChild(p, updateChange(child('b', { status: 'COMPLETED', completed: 10, offset: 2 }), ['COMPLETED'])!, 4, 100)!;
    expect(last.job).toMatchObject({ status: 'FAILED', errorMessage: '1 of 2 children failed' });
    const explicit = { ...parent(), status: 'PAUSED' as const, statusExplicit: true };
    expect(applyChild(explicit, creationChange(child('a', {})), 5, 100)!.job.status).toBe('PAUSED');
  });

  it('does not end a parent while children created under it have not reached it yet (a lagging partition)', () => {
    // Child a finished; child b was created but its creation is still in another partition's backlog.
    const seen = applyChild(parent(), creationChange(child('a', {})), 1, 100)!.job;
    const done = updateChange(child('a', { status: 'COMPLETED', completed: 10, offset: 1 }), ['COMPLETED'])!;
    expect(wouldEndParent(seen, applyChild(seen, done, 2, 100))).toBe(true);
    expect(applyChild(seen, done, 2, 100, ['b', 'a'])!.job.status).not.toBe('COMPLETED');
    expect(applyChild(seen, done, 2, 100, ['a'])!.job.status).toBe('COMPLETED');
  });

  it('does not end a parent early when retention swept a finished child from the index while a sibling lags', () => {
    // Children a (finished long ago, swept: no longer in the index) and b (done now); c created, its creation lagging.
    let p = applyChild(parent(), creationChange(child('a', {})), 1, 100)!.job;
    p = applyChild(p, creationChange(child('b', {})), 2, 100)!.job;
    p = applyChild(p, updateChange(child('a', { status: 'COMPLETED', offset: 1 }), ['COMPLETED'])!, 3, 100)!.job;
    const bDone = updateChange(child('b', { status: 'COMPLETED', offset: 1 }), ['COMPLETED'])!;
    // The index holds b and c (2 ids) and the parent has seen 2 children (a, b): a count would let it end here.
    expect(applyChild(p, bDone, 3, 100, ['c', 'b'])!.job.status).not.toBe('COMPLETED');
    expect(applyChild(p, bDone, 3, 100, ['b'])!.job.status).toBe('COMPLETED');
  });
});

describe('joblist projector', () => {
  it('appends one update per change; the same change again appends nothing', () => {
    const head = { epoch: 'e', offset: 7 };
    const created = creationChange(job({ tags: ['t'] }));
    const first = projectJobList(null, head, created, 10)!;
    expect(first.event).toMatchObject({ offset: 8, type: 'CREATED', job: { id: 'j1', tags: ['t'] }, previousStatus: null });
    expect(projectJobList(first.state, { ...head, offset: 8 }, created, 11)).toBeNull();
    const started = updateChange(job({ status: 'RUNNING', offset: 1 }), ['STARTED'])!;
    const second = projectJobList(first.state, { ...head, offset: 8 }, started, 12)!;
    expect(second.event).toMatchObject({ offset: 9, type: 'STATUS', previousStatus: 'QUEUED', job: { status: 'RUNNING' } });
    expect(projectJobList(second.state, { ...head, offset: 9 }, started, 13)).toBeNull();
    expect(projectJobList(second.state, { ...head, offset: 9 }, created, 14)).toBeNull();
  });

  it('shows a job going stalled and recovering at once (STATUS, never conflated), and item results as progress', () => {
    const head = { epoch: 'e', offset: 0 };
    const running = projectJobList(null, head, updateChange(job({ status: 'RUNNING', offset: 1 }), ['STARTED'])!, 10)!;
    const stalled = projectJobList(running.state, { ...head, offset: 1 }, updateChange(job({ status: 'RUNNING', stalled: true, offset: 2 }), ['STALLED'])!, 11)!;
    expect(stalled.event).toMatchObject({ type: 'STATUS', job: { status: 'RUNNING', stalled: true } });
    const recovered = projectJobList(stalled.state, { ...head, offset: 2 }, updateChange(job({ status: 'RUNNING', offset: 3 }), ['RECOVERED', 'PROGRESS'])!, 12)!;
    expect(recovered.event).toMatchObject({ type: 'STATUS', job: { stalled: false } });
    const items = projectJobList(recovered.state, { ...head, offset: 3 }, updateChange(job({ status: 'RUNNING', completed: 5, offset: 4 }), ['ITEM_RESULTS'])!, 13)!;
    expect(items.event).toMatchObject({ type: 'PROGRESS', job: { completed: 5 } });
    expect(projectJobList(items.state, { ...head, offset: 4 }, updateChange(job({ status: 'RUNNING', offset: 5 }), ['LOG'])!, 14)).toBeNull();
  });

  it('a subscriber drops the updates its snapshot already showed (the projector lagging the store), never newer ones', () => {
    const head = { epoch: 'e', offset: 7 };
    // The snapshot read the store after the job had started (its offset 1); the list log had not got its creation yet.
    const snapshot = snapshotUpdate(viewJob(job({ status: 'RUNNING', offset: 1 }), 10), head, 10);
    const created = projectJobList(null, head, creationChange(job()), 11)!;
    const started = projectJobList(created.state, { ...head, offset: 8 }, updateChange(job({ status: 'RUNNING', offset: 1 }), ['STARTED'])!, 12)!;
    const finished = projectJobList(started.state, { ...head, offset: 9 }, updateChange(job({ status: 'COMPLETED', offset: 2 }), ['COMPLETED'])!, 13)!;
    expect(shownBySnapshot(created.event, snapshot.job.lastCursor)).toBe(true);
    expect(shownBySnapshot(started.event, snapshot.job.lastCursor)).toBe(true);
    expect(shownBySnapshot(finished.event, snapshot.job.lastCursor)).toBe(false);
    // A job the snapshot showed before its first event: its creation is dropped, its start is not.
    const fresh = snapshotUpdate(viewJob(job(), 10), head, 10);
    expect(shownBySnapshot(created.event, fresh.job.lastCursor)).toBe(true);
    expect(shownBySnapshot(started.event, fresh.job.lastCursor)).toBe(false);
    // A job that was not in the snapshot, or whose epoch changed since (a restore): nothing is dropped.
    expect(shownBySnapshot(created.event, undefined)).toBe(false);
    const restored = snapshotUpdate(viewJob(job({ status: 'RUNNING', offset: 5, epoch: 'other' }), 10), head, 10);
    expect(shownBySnapshot(finished.event, restored.job.lastCursor)).toBe(false);
  });
});
