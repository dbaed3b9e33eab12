/**
 * The pure training domain with a fake clock: validation, job planning,
 * publish-side conflation, the log rate limit, and the fresh start.
 */
import { describe, expect, it } from 'vitest';
import { DomainError } from '../../src/domain/errors.js';
import { planJobOps, validateTrainingEvents, type TrainingEventInput } from '../../src/domain/training.js';
import { applyTrainingBatch, flushTraining, trainingSnapshot, type TrainingStreamState } from '../../src/domain/training-stream.js';

const progress = (globalStep: number, extra: object = {}): TrainingEventInput => ({
  type: 'TRAINING_PROGRESS',
  globalStep,
  maxStep: 100,
  step: null,
  epoch: null,
  epochStep: null,
  maxEpoch: null,
  loss: 1,
  learningRate: null,
  etaSeconds: null,
  ...extra,
});
const stats = (gb: number): TrainingEventInput => ({
  type: 'SYSTEM_STATS',
  gpuMemoryUsedGb: gb,
  gpuMemoryTotalGb: 24,
  gpuUtilizationPercent: null,
  cpuPercent: null,
  ramUsedGb: null,
  ramTotalGb: null,
});
const log = (message: string): TrainingEventInput => ({ type: 'TRAINING_LOG', level: 'INFO', message, source: null });
const status = (s: any, extra: object = {}): TrainingEventInput => ({ type: 'TRAINING_STATUS_CHANGE', status: s, message: null, error: null, ...extra });
const sample = (id: string): TrainingEventInput => ({
  type: 'SAMPLE_GENERATED',
  sampleId: id,
  path: '/tmp/x.png',
  url: null,
  sampleType: 'IMAGE',
  step: null,
  epoch: null,
  prompt: null,
  thumbnail: null,
});
const settings = { intervalMs: 100, logRatePerSecond: 10, logBurst: 5 };
const head = (offset = 0) => ({ epoch: 'ep1', offset, runId: 'r' });

const fieldOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    if (error instanceof DomainError) return `${error.code} ${error.details.field}`;
    throw error;
  }
  return 'ok';
};

describe('validateTrainingEvents', () => {
  it.each([
    [[progress(5, { maxStep: 3 })], 'BAD_USER_INPUT events[0].progress.globalStep'],
    [[log('a'), progress(-1)], 'BAD_USER_INPUT events[1].progress.globalStep'],
    [[progress(1, { loss: Number.NaN })], 'BAD_USER_INPUT events[0].progress.loss'],
    [[stats(30)], 'BAD_USER_INPUT events[0].systemStats.gpuMemoryUsedGb'],
    [[{ ...sample('x'), path: null }], 'BAD_USER_INPUT events[0].sample.path'],
    [[{ ...sample('x'), url: 'javascript:alert(1)' }], 'BAD_USER_INPUT events[0].sample.url'],
    [[log('')], 'BAD_USER_INPUT events[0].log.message'],
    [[{ type: 'VALIDATION_RESULT', step: 1, epoch: null, validationLoss: 1, metrics: [{ name: 'a', value: 1 }, { name: 'a', value: 2 }] }], 'BAD_USER_INPUT events[0].validation.metrics[1].name'],
    [[], 'BAD_USER_INPUT events'],
    [[progress(1), log('x'), stats(3), sample('s'), status('RUNNING')], 'ok'],
  ] as [TrainingEventInput[], string][])('%#: %s', (events, expected) => {
    expect(fieldOf(() => validateTrainingEvents(events))).toBe(expected);
  });
});

describe('planJobOps', () => {
  const job = { id: 'r', status: 'QUEUED' as const, completed: 0, failed: 0, total: null };
  it('merges progress, starts, pauses and finishes in order', () => {
    expect(planJobOps(job, [status('STARTING'), status('RUNNING'), progress(1), progress(2), status('PAUSED'), status('RUNNING'), progress(3), status('COMPLETED'), progress(4)])).toEqual([
      { op: 'start' },
      { op: 'progress', completed: 2, total: 100 },
      { op: 'pause', message: null },
      { op: 'resume', message: null },
      { op: 'progress', completed: 3, total: 100 },
      { op: 'finish', outcome: 'COMPLETED', message: null },
    ]);
  });
  it('maps ERROR to FAILED with the error, STOPPED to CANCELLED', () => {
    expect(planJobOps(job, [status('ERROR', { error: 'CUDA OOM' })])).toEqual([{ op: 'finish', outcome: 'FAILED', message: 'CUDA OOM' }]);
    expect(planJobOps({ ...job, status: 'RUNNING' }, [status('STOPPED')])).toEqual([{ op: 'finish', outcome: 'CANCELLED', message: null }]);
  });
  it('refuses globalStep going down, and a finished run', () => {
    expect(fieldOf(() => planJobOps({ ...job, status: 'RUNNING', completed: 10 }, [progress(9)]))).toBe('BAD_USER_INPUT events[0].progress.globalStep');
    expect(fieldOf(() => planJobOps({ ...job, status: 'COMPLETED' }, [log('x')]))).toBe('CONFLICT undefined');
  });
});

describe('training stream conflation and log rate limit', () => {
  it('sends one TrainingProgress per interval and the newest on the trailing edge', () => {
    let now = 1000;
    const a = applyTrainingBatch(null, head(), [progress(1), progress(2), progress(3)], now, settings);
    expect(a.events.map((e) => e.type === 'TRAINING_PROGRESS' && e.globalStep)).toEqual([1]);
    expect(a.flushAtMs).toBe(1100);
    now = 1050;
    expect(flushTraining(a.state, head(1), now, settings)).toMatchObject({ events: [], flushAtMs: 1100 });
    now = 1100;
    const f = flushTraining(a.state, head(1), now, settings)!;
    expect(f.events).toEqual([expect.objectContaining({ globalStep: 3, offset: 2, cursor: 'ep1.2' })]);
    expect(f.flushAtMs).toBeNull();
    expect(flushTraining(f.state, head(2), 2000, settings)).toBeNull();
  });

  it('conflates SystemStats on its own clock, and never lets a pending one end up behind a status, sample or validation', () => {
    const a = applyTrainingBatch(null, head(), [progress(1), stats(1), progress(2), stats(2), log('x'), sample('s1'), status('COMPLETED')], 0, settings);
    expect(a.events.map((e) => `${e.type}:${e.offset}`)).toEqual([
      'TRAINING_PROGRESS:1',
      'SYSTEM_STATS:2',
      'TRAINING_LOG:3',
      'TRAINING_PROGRESS:4',
      'SYSTEM_STATS:5',
      'SAMPLE_GENERATED:6',
      'TRAINING_STATUS_CHANGE:7',
    ]);
    expect(a.events[3]).toMatchObject({ globalStep: 2 });
    expect(a.flushAtMs).toBeNull();
  });

  it('drops logs over the bucket, counts them, and reports them on the next line or the trailing edge', () => {
    const lines = Array.from({ length: 8 }, (_, i) => log(`l${i}`));
    const a = applyTrainingBatch(null, head(), lines, 0, settings);
    expect(a.events).toHaveLength(5);
    expect(a.droppedNow).toBe(3);
    expect(a.flushAtMs).toBe(100); // one token back after 1/10 s
    const b = applyTrainingBatch(a.state, head(5), [log('later')], 100, settings);
    expect(b.events).toEqual([expect.objectContaining({ message: 'later', droppedBefore: 3 })]);
    const c = flushTraining(a.state, head(5), 100, settings)!;
    expect(c.events).toEqual([expect.objectContaining({ level: 'WARNING', source: 'runwatch', droppedBefore: 3, message: '3 log lines dropped by the rate limit' })]);
    // Refill is capped at the burst.
    const d = applyTrainingBatch(c.state, head(6), Array.from({ length: 10 }, (_, i) => log(`m${i}`)), 1_000_000, settings);
    expect(d.events).toHaveLength(5);
  });

  it('never drops statuses, samples or validation results', () => {
    const many = Array.from({ length: 50 }, (_, i) => sample(`s${i}`));
    expect(applyTrainingBatch(null, head(), many, 0, settings).events).toHaveLength(50);
  });

  it('starts fresh with the newest progress and stats, then the status (from the job when the trainer said none)', () => {
    const a = applyTrainingBatch(null, head(), [progress(1), progress(2), stats(7)], 0, settings);
    const snap = trainingSnapshot(a.state as TrainingStreamState, head(2), 'RUNNING', 5);
    expect(snap.map((e) => e.type)).toEqual(['TRAINING_PROGRESS', 'SYSTEM_STATS', 'TRAINING_STATUS_CHANGE']);
    expect(snap[0]).toMatchObject({ globalStep: 2, snapshot: true, cursor: 'ep1.2', offset: 2 });
    expect(snap[2]).toMatchObject({ status: 'RUNNING' });
    expect(trainingSnapshot(null, head(), 'QUEUED', 0)).toEqual([expect.objectContaining({ status: 'IDLE', snapshot: true, cursor: 'ep1.0' })]);
    const running = applyTrainingBatch(null, head(), [status('RUNNING')], 0, settings).state;
    expect(trainingSnapshot(running, head(1), 'CANCELLED', 0).at(-1)).toMatchObject({ status: 'STOPPED' });
  });
});
