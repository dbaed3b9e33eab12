/**
 * What jobs produce, through the public API, on one in-memory instance and
 * on two instances sharing Redis (workers report through both, people watch
 * on the other): item results with live summaries and the ITEM_RESULTS
 * opt-in, steps, log lines for any job with the rate limit, the metric
 * history of a long training run, and bad input that changes nothing.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { errorCode, gql, gqlHttp, subscribeWs, wsClient } from '../helpers/clients.js';
import { freshInstitute, startTestServer, token, viewerOf } from '../helpers/servers.js';

const CREATE = `mutation($name: String!, $kind: JobKind, $total: Int) { createBatchJob(input: { name: $name, kind: $kind, total: $total }) { id } }`;
const REPORT_ITEMS = `mutation($jobId: ID!, $items: [ItemResultInput!]!) {
  reportItems(jobId: $jobId, items: $items) { completed failed successRate } }`;
const JOB = `query($id: ID!) { batchJob(id: $id) {
  status completed failed successRate
  metrics { name last count mean min max }
  steps { name status startedAt finishedAt durationSeconds completed total error } } }`;
const WATCH = `subscription($runId: ID!, $items: Boolean, $logs: Boolean, $after: String) {
  runProgress(runId: $runId, items: $items, logs: $logs, after: $after) {
    type cursor message
    job { status completed failed }
    items { seq itemId ok latencySeconds error data metrics { name value } }
    step { name status durationSeconds error }
    logs { level message source droppedBefore }
  } }`;
const ITEM_RESULTS = `query($jobId: ID!, $first: Int, $after: String, $ok: Boolean) {
  itemResults(jobId: $jobId, first: $first, after: $after, ok: $ok) {
    edges { cursor node { seq itemId ok error } } pageInfo { hasNextPage endCursor } } }`;
const SERIES = `query($jobId: ID!, $name: String!, $maxPoints: Int) { metricSeries(jobId: $jobId, name: $name, maxPoints: $maxPoints) { step value timestamp } }`;
const APPEND = `mutation($jobId: ID!, $lines: [LogLineInput!]!) { appendLogs(jobId: $jobId, lines: $lines) }`;
const STEP = `mutation($jobId: ID!, $name: String!, $status: StepStatus!, $completed: Int, $total: Int, $error: String) {
  reportStep(jobId: $jobId, name: $name, status: $status, completed: $completed, total: $total, error: $error) { steps { name status } } }`;
const PROGRESS = `mutation($input: ReportProgressInput!) { reportProgress(input: $input) { stage metrics { name last count } } }`;
const COMPLETE = `mutation($id: ID!) { completeBatchJob(id: $id) { status } }`;

const SETUPS = [
  { name: 'one in-memory instance', backend: 'memory' as const, instances: 1 },
  { name: 'two instances on Redis', backend: 'redis' as const, instances: 2 },
];

/** The n-th item of the evaluation: every fifth fails; two metrics and a latency, all made up but fixed. */
const itemOf = (n: number) => ({
  itemId: `q-${n}`,
  ok: n % 5 !== 0,
  latencySeconds: ((n * 37) % 101) / 100,
  metrics: [
    { name: 'accuracy', value: ((n * 13) % 17) / 16 },
    { name: 'tokens', value: 100 + ((n * 7) % 50) },
  ],
  error: n % 5 === 0 ? `wrong answer for q-${n}` : null,
  data: n % 100 === 0 ? { answer: `a${n}`, confidence: 0.5 } : null,
});

/** count, mean (values summed in order), min and max of a list, computed here independently of the server. */
const summary = (values: number[]) => ({
  count: values.length,
  mean: values.reduce((a, b) => a + b, 0) / values.length,
  min: Math.min(...values),
  max: Math.max(...values),
});

describe.each(SETUPS)('job results on $name', ({ backend, instances }) => {
  let a: RunningServer; // workers report here (and on b)
  let b: RunningServer; // people watch here
  let tok: string;

  beforeAll(async () => {
    a = await startTestServer({ backend });
    b = instances === 2 ? await startTestServer({ backend }) : a;
    tok = await token({ inst: freshInstitute() });
  });

  const create = async (name: string, kind = 'BATCH', total: number | null = null) =>
    (await gql(a.url, tok, CREATE, { name, kind, total })).createBatchJob.id as string;

  it('1,000 items in 20 calls through both instances: exact counters, summaries and success rate; ITEM_RESULTS only for subscribers who ask', async () => {
    const jobId = await create('qa eval', 'EVALUATION', 1000);
    const client = wsClient(b.url.replace('http', 'ws'), tok);
    const withItems = subscribeWs(client, WATCH, { runId: jobId, items: true }, 'runProgress');
    const without = subscribeWs(client, WATCH, { runId: jobId }, 'runProgress');
    await withItems.waitForCount(1);
    await without.waitForCount(1);

    const all = Array.from({ length: 1000 }, (_, i) => itemOf(i + 1));
    for (let call = 0; call < 20; call++) {
      const via = call % 2 === 0 ? a : b;
      await gql(via.url, tok, REPORT_ITEMS, { jobId, items: all.slice(call * 50, call * 50 + 50) });
    }
    await gql(a.url, tok, COMPLETE, { id: jobId });
    const events = await withItems.done(20_000);
    const plain = await without.done(20_000);

    const ok = all.filter((i) => i.ok).length;
    const job = (await gql(b.url, tok, JOB, { id: jobId })).batchJob;
    expect(job).toMatchObject({ status: 'COMPLETED', completed: ok, failed: 1000 - ok, successRate: ok / 1000 });
    const byName = Object.fromEntries(job.metrics.map((m: any) => [m.name, m]));
    expect(byName.accuracy).toEqual({ name: 'accuracy', last: all[999]!.metrics[0]!.value, ...summary(all.map((i) => i.metrics[0]!.value)) });
    expect(byName.tokens).toEqual({ name: 'tokens', last: all[999]!.metrics[1]!.value, ...summary(all.map((i) => i.metrics[1]!.value)) });
    expect(byName.latencySeconds).toMatchObject(summary(all.map((i) => i.latencySeconds)));

    // Every batch, in order, each item once, with what was reported.
    const batches = events.filter((e) => e.type === 'ITEM_RESULTS');
    expect(batches).toHaveLength(20);
    const seen = batches.flatMap((e) => e.items);
    expect(seen.map((i: any) => i.seq)).toEqual(all.map((_, i) => i + 1));
    expect(seen.map((i: any) => i.itemId)).toEqual(all.map((i) => i.itemId));
    expect(seen[99]).toMatchObject({ ok: false, error: 'wrong answer for q-100', data: { answer: 'a100', confidence: 0.5 }, metrics: all[99]!.metrics });
    expect(batches.map((e) => e.job.completed + e.job.failed)).toEqual(Array.from({ length: 20 }, (_, i) => 50 * (i + 1)));
    expect(plain.filter((e) => e.type === 'ITEM_RESULTS')).toEqual([]);
    expect(plain[plain.length - 1].type).toBe('COMPLETED');

    // The newest failures, newest first, paged.
    const page1 = (await gql(a.url, tok, ITEM_RESULTS, { jobId, first: 3, ok: false })).itemResults;
    expect(page1.edges.map((e: any) => e.node.itemId)).toEqual(['q-1000', 'q-995', 'q-990']);
    expect(page1.pageInfo.hasNextPage).toBe(true);
    const page2 = (await gql(b.url, tok, ITEM_RESULTS, { jobId, first: 2, ok: false, after: page1.pageInfo.endCursor })).itemResults;
    expect(page2.edges.map((e: any) => e.node.itemId)).toEqual(['q-985', 'q-980']);
    // Item metrics have a history too (x: the item's seq).
    const accuracy = (await gql(b.url, tok, SERIES, { jobId, name: 'accuracy', maxPoints: 100 })).metricSeries;
    expect(accuracy.length).toBeLessThanOrEqual(100);
    expect([accuracy[0].step, accuracy[accuracy.length - 1].step]).toEqual([1, 1000]);
    expect(Math.min(...accuracy.map((p: any) => p.value))).toBe(byName.accuracy.min);
    expect(Math.max(...accuracy.map((p: any) => p.value))).toBe(byName.accuracy.max);
  });

  it('steps: three stages in order, a failed step with its error, two parallel steps; STAGE events carry them', async () => {
    const jobId = await create('ingest', 'PIPELINE');
    const client = wsClient(b.url.replace('http', 'ws'), tok);
    const watch = subscribeWs(client, WATCH, { runId: jobId }, 'runProgress');
    await watch.waitForCount(1);
    const began = Date.now();
    for (const stage of ['download', 'ocr', 'index']) {
      await gql(a.url, tok, PROGRESS, { input: { jobId, stage } });
      await watch.waitFor((events) => events.some((e) => e.type === 'STAGE' && e.step?.name === stage), `STAGE ${stage}`);
    }
    let job = (await gql(b.url, tok, JOB, { id: jobId })).batchJob;
    const elapsed = (Date.now() - began) / 1000;
    expect(job.steps.map((s: any) => [s.name, s.status])).toEqual([
      ['download', 'COMPLETED'],
      ['ocr', 'COMPLETED'],
      ['index', 'RUNNING'],
    ]);
    for (const s of job.steps) {
      expect(s.durationSeconds).toBeGreaterThanOrEqual(0);
      expect(s.durationSeconds).toBeLessThanOrEqual(elapsed + 1);
    }
    expect(Date.parse(job.steps[0].finishedAt)).toBe(Date.parse(job.steps[1].startedAt));
    expect(job.steps[0].durationSeconds + job.steps[1].durationSeconds).toBeLessThanOrEqual(elapsed + 0.01);

    // Two tools at once, one of which fails.
    await gql(a.url, tok, STEP, { jobId, name: 'tables', status: 'RUNNING', total: 4 });
    await gql(b.url, tok, STEP, { jobId, name: 'figures', status: 'RUNNING' });
    job = (await gql(b.url, tok, JOB, { id: jobId })).batchJob;
    expect(job.steps.filter((s: any) => s.status === 'RUNNING').map((s: any) => s.name)).toEqual(['index', 'tables', 'figures']);
    await gql(a.url, tok, STEP, { jobId, name: 'tables', status: 'FAILED', completed: 2, error: 'camelot: no lattice found' });
    job = (await gql(b.url, tok, JOB, { id: jobId })).batchJob;
    expect(job.steps.find((s: any) => s.name === 'tables')).toMatchObject({ status: 'FAILED', completed: 2, total: 4, error: 'camelot: no lattice found' });
    expect(job.steps.find((s: any) => s.name === 'figures').status).toBe('RUNNING');
    const events = await watch.waitFor((es) => es.some((e) => e.step?.name === 'tables' && e.step.status === 'FAILED'), 'the failed step');
    expect(events.filter((e) => e.type === 'STAGE').map((e) => `${e.step.name}:${e.step.status}`)).toEqual([
      'download:RUNNING',
      'ocr:RUNNING',
      'index:RUNNING',
      'tables:RUNNING',
      'figures:RUNNING',
      'tables:FAILED',
    ]);
    watch.dispose();
  });

  it('a 20,000-step training run reported fast keeps its whole loss curve: ≤ 500 points from step 1 to 20,000 with the global minimum', async () => {
    const runId = await create('fine-tune', 'TRAINING');
    const viewer = await viewerOf(tok);
    const loss = (step: number) => 3 / Math.sqrt(step) + 0.05 * Math.sin(step / 7) + (step === 12_345 ? -0.9 : 0);
    for (let from = 1; from <= 20_000; from += 1000) {
      const events = Array.from({ length: 1000 }, (_, i) => ({
        type: 'TRAINING_PROGRESS' as const,
        globalStep: from + i,
        maxStep: 20_000,
        step: null,
        epoch: null,
        epochStep: null,
        maxEpoch: null,
        loss: loss(from + i),
        learningRate: 1e-4,
        etaSeconds: null,
      }));
      await a.services.training.publish(viewer, runId, events);
    }
    const points = (await gql(b.url, tok, SERIES, { jobId: runId, name: 'loss', maxPoints: 500 })).metricSeries;
    expect(points.length).toBeLessThanOrEqual(500);
    expect(points.length).toBeGreaterThan(250);
    expect(points[0]).toMatchObject({ step: 1, value: loss(1) });
    expect(points[points.length - 1]).toMatchObject({ step: 20_000, value: loss(20_000) });
    let min = Infinity;
    for (let s = 1; s <= 20_000; s++) min = Math.min(min, loss(s));
    expect(points).toContainEqual(expect.objectContaining({ step: 12_345, value: min }));
    const lr = (await gql(b.url, tok, SERIES, { jobId: runId, name: 'learningRate' })).metricSeries;
    expect(lr.length).toBeLessThanOrEqual(500);
    expect(lr[lr.length - 1].step).toBe(20_000);
  });

  it('log lines of a BATCH job arrive on the stream (only when asked for) and obey the rate limit with exact droppedBefore counts', async () => {
    const jobId = await create('embed');
    const client = wsClient(b.url.replace('http', 'ws'), tok);
    const withLogs = subscribeWs(client, WATCH, { runId: jobId, logs: true }, 'runProgress');
    const without = subscribeWs(client, WATCH, { runId: jobId }, 'runProgress');
    await withLogs.waitForCount(1);
    await without.waitForCount(1);
    const lines = Array.from({ length: 250 }, (_, i) => ({ level: i % 50 === 0 ? 'WARNING' : 'INFO', message: `line ${i}`, source: 'worker' }));
    // The burst is 200 lines: the other 50 are dropped and counted.
    expect((await gql(a.url, tok, APPEND, { jobId, lines })).appendLogs).toBe(200);
    // One more line until one passes (a token comes back every 20 ms); the lines refused meanwhile are counted too.
    let refused = 0;
    while ((await gql(b.url, tok, APPEND, { jobId, lines: [{ level: 'ERROR', message: 'after the burst' }] })).appendLogs === 0) refused++;
    const userLine = (e: any) => e.type === 'LOG' && e.logs.some((l: any) => l.message === 'after the burst');
    const events = await withLogs.waitFor((es) => es.some(userLine), 'the line after the burst');
    const logEvents = events.filter((e) => e.type === 'LOG');
    const delivered = logEvents.flatMap((e) => e.logs);
    expect(delivered.slice(0, 200).map((l: any) => l.message)).toEqual(lines.slice(0, 200).map((l) => l.message));
    expect(delivered.slice(0, 200).every((l: any) => l.droppedBefore === 0 && l.source === 'worker')).toBe(true);
    // Between them, at most one runwatch line may have reported the drops so far (the trailing edge); together exact.
    const rest = delivered.slice(200);
    expect(rest[rest.length - 1]).toMatchObject({ level: 'ERROR', message: 'after the burst' });
    expect(rest.slice(0, -1).every((l: any) => l.source === 'runwatch' && l.level === 'WARNING')).toBe(true);
    expect(rest.reduce((sum: number, l: any) => sum + l.droppedBefore, 0)).toBe(50 + refused);

    // Replayed with `after` like every event, for those who ask.
    const first = events[0].cursor;
    const replay = subscribeWs(client, WATCH, { runId: jobId, logs: true, after: first }, 'runProgress');
    await replay.waitFor((es) => es.filter((e) => e.type === 'LOG').length === logEvents.length, 'the LOG events replayed');
    await gql(a.url, tok, COMPLETE, { id: jobId });
    expect((await without.done()).filter((e) => e.type === 'LOG')).toEqual([]);
    expect((await gql(a.url, tok, APPEND, { jobId, lines: [{ level: 'INFO', message: 'late' }] }).catch((e) => String(e)))).toMatch(/CONFLICT|already/);
  });

  it('refuses bad input with the contract code and changes nothing', async () => {
    const jobId = await create('strict', 'EVALUATION', 10);
    await gql(a.url, tok, REPORT_ITEMS, { jobId, items: [itemOf(1)] });
    const before = (await gql(b.url, tok, JOB, { id: jobId })).batchJob;
    const other = await token({ inst: freshInstitute() });
    const cases: [string, string, string, Record<string, unknown>][] = [
      ['too many metrics', tok, REPORT_ITEMS, { jobId, items: [{ ...itemOf(2), metrics: Array.from({ length: 51 }, (_, i) => ({ name: `m${i}`, value: i })) }] }],
      ['oversized data', tok, REPORT_ITEMS, { jobId, items: [{ ...itemOf(2), data: { blob: 'x'.repeat(5000) } }] }],
      ['more items than total', tok, REPORT_ITEMS, { jobId, items: Array.from({ length: 10 }, (_, i) => itemOf(i + 2)) }],
      ['an unknown job', tok, REPORT_ITEMS, { jobId: 'j_nope', items: [itemOf(2)] }],
      ["another tenant's job", other, REPORT_ITEMS, { jobId, items: [itemOf(2)] }],
      ['a gauge that is too long a name', tok, PROGRESS, { input: { jobId, metrics: [{ name: 'x'.repeat(101), value: 1 }] } }],
      ['a step error on a running step', tok, STEP, { jobId, name: 'x', status: 'RUNNING', error: 'no' }],
      ['an unknown job for logs', tok, APPEND, { jobId: 'j_nope', lines: [{ level: 'INFO', message: 'x' }] }],
      ['a maxPoints below 4', tok, SERIES, { jobId, name: 'accuracy', maxPoints: 3 }],
    ];
    const codes: Record<string, string | undefined> = {};
    for (const [what, who, query, variables] of cases) codes[what] = errorCode((await gqlHttp(a.url, who, query, variables)).body);
    expect(codes).toEqual({
      'too many metrics': 'BAD_USER_INPUT',
      'oversized data': 'BAD_USER_INPUT',
      'more items than total': 'BAD_USER_INPUT',
      'an unknown job': 'NOT_FOUND',
      "another tenant's job": 'NOT_FOUND',
      'a gauge that is too long a name': 'BAD_USER_INPUT',
      'a step error on a running step': 'BAD_USER_INPUT',
      'an unknown job for logs': 'NOT_FOUND',
      'a maxPoints below 4': 'BAD_USER_INPUT',
    });
    const notFound = (await gqlHttp(a.url, other, ITEM_RESULTS, { jobId })).body;
    expect(notFound.errors?.[0]?.message).toBe(`no job with id "${jobId}"`);
    // Infinity cannot be written in JSON variables but 1e999 parses to it; NaN is refused as a literal.
    for (const body of [
      `{"query":${JSON.stringify(REPORT_ITEMS)},"variables":{"jobId":"${jobId}","items":[{"itemId":"x","ok":true,"latencySeconds":1e999}]}}`,
      `{"query":${JSON.stringify(PROGRESS)},"variables":{"input":{"jobId":"${jobId}","metrics":[{"name":"loss","value":-1e999}]}}}`,
      JSON.stringify({ query: `mutation { reportProgress(input: { jobId: "${jobId}", metrics: [{ name: "loss", value: NaN }] }) { stage } }` }),
    ]) {
      const res = await fetch(a.url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${tok}` }, body });
      const result = (await res.json()) as any;
      expect(result.data?.reportItems ?? result.data?.reportProgress ?? null).toBeNull();
      expect(result.errors?.[0]?.extensions?.code).toMatch(/BAD_USER_INPUT|GRAPHQL_VALIDATION_FAILED/);
    }
    await gql(a.url, tok, COMPLETE, { id: jobId });
    const finished = await gqlHttp(a.url, tok, REPORT_ITEMS, { jobId, items: [itemOf(2)] });
    expect(errorCode(finished.body)).toBe('CONFLICT');
    expect(errorCode((await gqlHttp(a.url, tok, STEP, { jobId, name: 'late', status: 'RUNNING' })).body)).toBe('CONFLICT');
    const after = (await gql(b.url, tok, JOB, { id: jobId })).batchJob;
    expect({ ...after, status: before.status }).toEqual(before);
    expect((await gql(b.url, tok, ITEM_RESULTS, { jobId })).itemResults.edges).toHaveLength(1);
  });
});
