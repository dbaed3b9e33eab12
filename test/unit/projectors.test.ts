/**
 * Projectors are idempotent by offset: the change feed hands a change over at
 * least once (a retry, a takeover after an instance died), so applying the
 * same change a second time must change nothing. One test per projector whose
 * step is pure (activity's is in activity-domain.test.ts); and the in-process
 * feed's own guarantees (every projector sees every change, a failed apply is
 * retried, one job's changes in order).
 */
import { describe, expect, it } from 'vitest';
import { MemoryChangeFeed } from '../../src/backends/memory-changes.js';
import { creationChange, updateChange, type JobChangeRecord } from '../../src/domain/changes.js';
import { createJob, finishJob, type JobRecord } from '../../src/domain/job.js';
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
