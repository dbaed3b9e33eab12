/**
 * The pure side of what a job produces: item results, metric summaries,
 * steps and log lines, with an injected clock (plain numbers of ms).
 */
import { describe, expect, it } from 'vitest';
import { DomainError } from '../../src/domain/errors.js';
import { applyItems, applyLogs, applyProgress, applyStep, createJob, finishJob, flushProgress, viewJob, type JobRecord } from '../../src/domain/job.js';
import { ITEM_LIMITS, type ItemResultInput } from '../../src/domain/items.js';
import { METRIC_LIMITS } from '../../src/domain/metrics.js';
import { STEP_LIMITS } from '../../src/domain/steps.js';

const T0 = 1_700_000_000_000;
const newJob = (total: number | null = null): JobRecord =>
  createJob({ name: 'eval', kind: 'EVALUATION', total }, { id: 'j1', epoch: 'ep', tenant: { institute: 'i', environment: 'e' }, ownerId: 'u' }, T0);

/** The error code and field a call fails with, or 'ok'. */
const failure = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    if (error instanceof DomainError) return `${error.code} ${error.details.field ?? ''}`.trim();
    throw error;
  }
  return 'ok';
};

const item = (i: number, extra: Partial<ItemResultInput> = {}): ItemResultInput => ({
  itemId: `row-${i}`,
  ok: i % 4 !== 0,
  latencySeconds: (i % 7) / 10,
  metrics: [{ name: 'accuracy', value: (i % 10) / 10 }],
  ...extra,
});

describe('item results', () => {
  it('moves the counters, summarizes metrics and latency, and emits one ITEM_RESULTS event with the batch', () => {
    let job = newJob(100);
    const batches = [Array.from({ length: 30 }, (_, i) => item(i)), Array.from({ length: 20 }, (_, i) => item(30 + i))];
    const events = batches.map((batch, n) => {
      const change = applyItems(job, batch, T0 + 1000 * (n + 1));
      job = change.job;
      return change.events;
    });
    expect(events[0]!.map((e) => e.type)).toEqual(['STARTED', 'ITEM_RESULTS']);
    expect(events[1]!.map((e) => e.type)).toEqual(['ITEM_RESULTS']);
    const results = events.flat().flatMap((e) => e.items ?? []);
    expect(results.map((r) => r.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(results[3]).toMatchObject({ itemId: 'row-3', ok: true, latencySeconds: 0.3, metrics: [{ name: 'accuracy', value: 0.3 }], timestamp: T0 + 1000 });

    const all = batches.flat();
    const ok = all.filter((i) => i.ok).length;
    const view = viewJob(job, T0 + 3000);
    expect(view).toMatchObject({ completed: ok, failed: 50 - ok, successRate: ok / 50 });
    const acc = all.map((i) => i.metrics![0]!.value);
    const accuracy = view.metrics.find((m) => m.name === 'accuracy')!;
    expect(accuracy).toEqual({
      name: 'accuracy',
      last: acc[49],
      count: 50,
      mean: acc.reduce((a, b) => a + b, 0) / 50,
      min: Math.min(...acc),
      max: Math.max(...acc),
      updatedAt: T0 + 2000,
    });
    expect(view.metrics.find((m) => m.name === 'latencySeconds')).toMatchObject({ count: 50, min: 0, max: 0.6 });
    // The events carry the state after the whole change.
    expect(events[1]![0]!.job.completed).toBe(ok);
  });

  it.each<[string, () => unknown, string]>([
    ['an empty batch', () => applyItems(newJob(), [], T0), 'BAD_USER_INPUT items'],
    ['too many items', () => applyItems(newJob(), Array.from({ length: ITEM_LIMITS.perCall + 1 }, (_, i) => item(i)), T0), 'BAD_USER_INPUT items'],
    ['a NaN metric', () => applyItems(newJob(), [item(1, { metrics: [{ name: 'f1', value: NaN }] })], T0), 'BAD_USER_INPUT items[0].metrics[0].value'],
    ['an infinite latency', () => applyItems(newJob(), [item(1), item(2, { latencySeconds: Infinity })], T0), 'BAD_USER_INPUT items[1].latencySeconds'],
    ['oversized data', () => applyItems(newJob(), [item(1, { data: { text: 'x'.repeat(4096) } })], T0), 'BAD_USER_INPUT items[0].data'],
    ['over 256 KiB of data in one call', () => applyItems(newJob(), Array.from({ length: 70 }, (_, i) => item(i, { data: 'x'.repeat(4000) })), T0), 'BAD_USER_INPUT items'],
    ['an empty itemId', () => applyItems(newJob(), [item(1, { itemId: ' ' })], T0), 'BAD_USER_INPUT items[0].itemId'],
    ['a duplicate metric name', () => applyItems(newJob(), [item(1, { metrics: [{ name: 'a', value: 1 }, { name: 'a', value: 2 }] })], T0), 'BAD_USER_INPUT items[0].metrics[1].name'],
    ['more items than total', () => applyItems(newJob(2), [item(1), item(2), item(3)], T0), 'BAD_USER_INPUT items'],
    ['a finished job', () => applyItems(finishJob(newJob(), 'COMPLETED', null, T0).job, [item(1)], T0), 'CONFLICT'],
  ])('refuses %s', (_name, call, expected) => {
    expect(failure(call)).toBe(expected);
  });

  it('accepts data up to 4 KiB of JSON', () => {
    const data = { text: 'x'.repeat(ITEM_LIMITS.dataJson - 11) };
    expect(JSON.stringify(data).length).toBe(ITEM_LIMITS.dataJson);
    expect(applyItems(newJob(), [item(1, { data })], T0).events[1]!.items![0]!.data).toEqual(data);
  });
});

describe('metric summaries', () => {
  it('gauges from reportProgress are summarized per name and conflated like other progress', () => {
    // STARTED, then a PROGRESS with the first gauge, then one inside the conflation interval.
    let job = applyProgress(newJob(), {}, T0, 100).job;
    job = applyProgress(job, { metrics: [{ name: 'tokensPerSecond', value: 10 }] }, T0, 100).job;
    const change = applyProgress(job, { metrics: [{ name: 'tokensPerSecond', value: 30 }, { name: 'costEur', value: 0.5 }] }, T0 + 10, 100);
    expect(change.events).toEqual([]);
    expect(change.flushAtMs).toBe(T0 + 100);
    job = change.job;
    expect(viewJob(job, T0 + 20).metrics).toEqual([
      { name: 'tokensPerSecond', last: 30, count: 2, mean: 20, min: 10, max: 30, updatedAt: T0 + 10 },
      { name: 'costEur', last: 0.5, count: 1, mean: 0.5, min: 0.5, max: 0.5, updatedAt: T0 + 10 },
    ]);
    expect(viewJob(job, T0).successRate).toBeNull();
  });

  it('bounds names per job, name length, and refuses non-finite values', () => {
    const many = Array.from({ length: METRIC_LIMITS.namesPerJob }, (_, i) => ({ name: `m${i}`, value: i }));
    const job = applyProgress(newJob(), { metrics: many }, T0, 100).job;
    expect(failure(() => applyProgress(job, { metrics: [{ name: 'one-more', value: 1 }] }, T0 + 1, 100))).toBe('BAD_USER_INPUT metrics');
    expect(failure(() => applyProgress(job, { metrics: [{ name: 'm3', value: 1 }] }, T0 + 1, 100))).toBe('ok');
    expect(failure(() => applyProgress(newJob(), { metrics: [{ name: 'x'.repeat(101), value: 1 }] }, T0, 100))).toBe('BAD_USER_INPUT metrics[0].name');
    expect(failure(() => applyProgress(newJob(), { metrics: [{ name: 'loss', value: -Infinity }] }, T0, 100))).toBe('BAD_USER_INPUT metrics[0].value');
  });
});

describe('steps', () => {
  it('three stages in order become three steps with their durations', () => {
    let job = newJob();
    const at = [T0, T0 + 2_000, T0 + 7_000];
    const changes = ['download', 'ocr', 'index'].map((stage, i) => {
      const change = applyProgress(job, { stage }, at[i]!, 100);
      job = change.job;
      return change;
    });
    expect(changes[1]!.events.map((e) => [e.type, e.message, e.step?.name, e.step?.status])).toEqual([['STAGE', 'ocr', 'ocr', 'RUNNING']]);
    const view = viewJob(job, T0 + 8_500);
    expect(view.steps.map((s) => [s.name, s.status, s.durationSeconds])).toEqual([
      ['download', 'COMPLETED', 2],
      ['ocr', 'COMPLETED', 5],
      ['index', 'RUNNING', 1.5],
    ]);
    job = finishJob(job, 'COMPLETED', null, T0 + 9_000).job;
    expect(viewJob(job, T0 + 20_000).steps[2]).toMatchObject({ status: 'COMPLETED', durationSeconds: 2, finishedAt: T0 + 9_000 });
  });

  it('reportStep runs steps in parallel, and a failed one keeps its error', () => {
    let job = newJob();
    job = applyStep(job, { name: 'ocr', status: 'RUNNING', total: 10 }, T0).job;
    const change = applyStep(job, { name: 'layout', status: 'RUNNING' }, T0 + 500);
    expect(change.events.map((e) => [e.type, e.step?.name])).toEqual([['STAGE', 'layout']]);
    job = change.job;
    job = applyStep(job, { name: 'ocr', status: 'FAILED', completed: 4, error: 'tesseract: bad image' }, T0 + 3_000).job;
    const view = viewJob(job, T0 + 4_000);
    expect(view.steps).toEqual([
      { name: 'ocr', status: 'FAILED', startedAt: T0, finishedAt: T0 + 3_000, durationSeconds: 3, completed: 4, total: 10, error: 'tesseract: bad image' },
      { name: 'layout', status: 'RUNNING', startedAt: T0 + 500, finishedAt: null, durationSeconds: 3.5, completed: null, total: null, error: null },
    ]);
    expect(view.stage).toBeNull();
    // The job failing fails its running steps with its error.
    job = finishJob(job, 'FAILED', 'out of memory', T0 + 5_000).job;
    expect(viewJob(job, T0 + 6_000).steps[1]).toMatchObject({ status: 'FAILED', error: 'out of memory', durationSeconds: 4.5 });
  });

  it("a finished step's view is the same whenever it is taken; a running step's duration follows the clock", () => {
    let job = newJob();
    job = applyProgress(job, { stage: 'download' }, T0, 100).job;
    job = applyProgress(job, { stage: 'ocr' }, T0 + 2_000, 100).job;
    const early = viewJob(job, T0 + 3_000).steps;
    const late = viewJob(job, T0 + 60_000).steps;
    expect(late[0]).toEqual(early[0]);
    expect(late[0]).toMatchObject({ name: 'download', status: 'COMPLETED', durationSeconds: 2 });
    expect([early[1]!.durationSeconds, late[1]!.durationSeconds]).toEqual([1, 58]);
    // Taken again at a time seen before, the views are the same ones (made once per report, not per view).
    expect(viewJob(job, T0 + 60_000).steps).toBe(late);
    expect(viewJob(job, T0 + 3_000).steps.map((s) => s.durationSeconds)).toEqual([2, 1]);
    // A new stage completes the running step: its view now says so, at the time it finished.
    job = applyProgress(job, { stage: 'index' }, T0 + 70_000, 100).job;
    expect(viewJob(job, T0 + 90_000).steps.map((s) => [s.name, s.status, s.durationSeconds])).toEqual([
      ['download', 'COMPLETED', 2],
      ['ocr', 'COMPLETED', 68],
      ['index', 'RUNNING', 20],
    ]);
  });

  it('bounds steps and their fields', () => {
    let job = newJob();
    for (let i = 0; i < STEP_LIMITS.perJob; i++) job = applyStep(job, { name: `s${i}`, status: 'RUNNING' }, T0 + i).job;
    expect(failure(() => applyStep(job, { name: 'one more', status: 'PENDING' }, T0))).toBe('BAD_USER_INPUT name');
    expect(failure(() => applyStep(newJob(), { name: 'a', status: 'RUNNING', error: 'x' }, T0))).toBe('BAD_USER_INPUT error');
    expect(failure(() => applyStep(newJob(), { name: 'a', status: 'RUNNING', completed: 3, total: 2 }, T0))).toBe('BAD_USER_INPUT completed');
    expect(failure(() => applyStep(newJob(), { name: '', status: 'RUNNING' }, T0))).toBe('BAD_USER_INPUT name');
    // Stages never fail for the bound: a new stage replaces the oldest finished step.
    let staged = newJob();
    for (let i = 0; i < STEP_LIMITS.perJob + 5; i++) staged = applyProgress(staged, { stage: `page ${i}` }, T0 + i, 100).job;
    const steps = viewJob(staged, T0 + 1000).steps;
    expect(steps).toHaveLength(STEP_LIMITS.perJob);
    expect(steps[steps.length - 1]).toMatchObject({ name: `page ${STEP_LIMITS.perJob + 4}`, status: 'RUNNING' });
    expect(steps[0]).toMatchObject({ name: 'page 5', status: 'COMPLETED' });
    // …but with 100 steps and none finished, a new stage has no room: BAD_USER_INPUT, nothing changes.
    expect(failure(() => applyProgress(job, { stage: 'one more' }, T0 + 200, 100))).toBe('BAD_USER_INPUT stage');
  });
});

describe('log lines', () => {
  const limits = { logBurst: 5, logRatePerSecond: 10 };
  const lines = (n: number, from = 0) => Array.from({ length: n }, (_, i) => ({ level: 'INFO' as const, message: `line ${from + i}` }));

  it('pass the per-job rate limit in one LOG event and count the dropped ones in droppedBefore', () => {
    let job = newJob();
    let r = applyLogs(job, lines(8), T0, limits);
    expect(r.accepted).toBe(5);
    expect(r.change.events.map((e) => e.type)).toEqual(['LOG']);
    expect(r.change.events[0]!.logs!.map((l) => [l.message, l.droppedBefore])).toEqual([0, 1, 2, 3, 4].map((i) => [`line ${i}`, 0]));
    job = r.change.job;
    // No token yet: everything dropped, no event.
    r = applyLogs(job, lines(2, 8), T0 + 50, limits);
    expect([r.accepted, r.change.events.length]).toEqual([0, 0]);
    job = r.change.job;
    // 0.2 s later: two tokens; the first line reports the 5 dropped before it.
    r = applyLogs(job, lines(3, 10), T0 + 250, limits);
    expect(r.change.events[0]!.logs!.map((l) => [l.message, l.droppedBefore])).toEqual([
      ['line 10', 5],
      ['line 11', 0],
    ]);
    expect(r.change.job.status).toBe('QUEUED');
  });

  it('reports dropped lines that no later line reports on the trailing edge, once a token is back', () => {
    const first = applyLogs(newJob(), lines(8), T0, limits).change;
    expect(first.flushAtMs).toBe(T0 + 100); // one token every 100 ms
    expect(flushProgress(first.job, T0 + 50, 100)).toMatchObject({ events: [], flushAtMs: T0 + 100 });
    const flushed = flushProgress(first.job, T0 + 100, 100)!;
    expect(flushed.events.map((e) => [e.type, e.logs])).toEqual([
      ['LOG', [{ level: 'WARNING', message: '3 log lines dropped by the rate limit', source: 'runwatch', timestamp: T0 + 100, droppedBefore: 3 }]],
    ]);
    expect(flushed.flushAtMs).toBeNull();
    expect(flushProgress(flushed.job, T0 + 500, 100)).toBeNull();
  });

  it('refuses bad lines and finished jobs', () => {
    expect(failure(() => applyLogs(newJob(), [], T0, limits))).toBe('BAD_USER_INPUT lines');
    expect(failure(() => applyLogs(newJob(), [{ level: 'LOUD' as 'INFO', message: 'x' }], T0, limits))).toBe('BAD_USER_INPUT lines[0].level');
    expect(failure(() => applyLogs(newJob(), [{ level: 'INFO', message: '' }], T0, limits))).toBe('BAD_USER_INPUT lines[0].message');
    expect(failure(() => applyLogs(finishJob(newJob(), 'CANCELLED', null, T0).job, lines(1), T0, limits))).toBe('CONFLICT');
  });
});
