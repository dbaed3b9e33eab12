/**
 * The core job API, run against every backend (memory, one Redis, a 3-master
 * Redis Cluster): create, query, list, runProgress ordering, terminal events
 * and validation.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { errorCode, gql, gqlHttp, subscribeWs, wsClient } from '../helpers/clients.js';
import { BACKENDS_AND_CLUSTER, freshInstitute, startTestServer, token, viewerOf, withClusterBackend } from '../helpers/servers.js';

const JOB_FIELDS = 'id name kind status total completed failed percent rate etaSeconds stage message errorMessage lastCursor';
const CREATE = `mutation($input: CreateBatchJobInput!) { createBatchJob(input: $input) { ${JOB_FIELDS} } }`;
const REPORT = `mutation($input: ReportProgressInput!) { reportProgress(input: $input) { ${JOB_FIELDS} } }`;
const GET = `query($id: ID!) { batchJob(id: $id) { ${JOB_FIELDS} } }`;
const LIST = `query($first: Int, $after: String, $status: [JobStatus!], $kind: [JobKind!]) {
  batchJobs(first: $first, after: $after, status: $status, kind: $kind) { edges { cursor node { id name status kind } } pageInfo { hasNextPage endCursor } } }`;
const WATCH = `subscription($runId: ID!, $after: String) { runProgress(runId: $runId, after: $after) { cursor type runId message job { status completed failed total stage } } }`;

describe.each(BACKENDS_AND_CLUSTER)('jobs on the %s backend', (backend) => {
  let server: RunningServer;
  let tok: string;
  const target = withClusterBackend(backend);

  beforeAll(async () => {
    server = await startTestServer(target());
    tok = await token({ inst: freshInstitute() });
  });

  const create = async (input: Record<string, unknown>) => (await gql(server.url, tok, CREATE, { input })).createBatchJob;
  const report = (input: Record<string, unknown>) => gqlHttp(server.url, tok, REPORT, { input });

  it('runs on the backend it names', () => {
    expect(server.backend.kind).toBe(backend);
  });

  it('creates a QUEUED job and reads it back', async () => {
    const job = await create({ name: 'embed 5k docs', kind: 'BATCH', total: 5000, metadata: { model: 'e5' } });
    expect(job).toMatchObject({ name: 'embed 5k docs', kind: 'BATCH', status: 'QUEUED', total: 5000, completed: 0, failed: 0, percent: 0 });
    const { batchJob } = await gql(server.url, tok, GET, { id: job.id });
    expect(batchJob).toEqual(job);
  });

  it('returns the same job for a reused idempotency key and CONFLICT for other input', async () => {
    const input = { name: 'idem', total: 3, idempotencyKey: `k-${Math.random()}` };
    const first = await create(input);
    const again = await create(input);
    expect(again.id).toBe(first.id);
    const other = await gqlHttp(server.url, tok, CREATE, { input: { ...input, total: 4 } });
    expect(errorCode(other.body)).toBe('CONFLICT');
  });

  it('lists jobs newest first with cursor pagination and filters', async () => {
    const listTok = await token({ inst: freshInstitute() });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const { createBatchJob } = await gql(server.url, listTok, CREATE, { input: { name: `j${i}`, kind: i % 2 ? 'EVALUATION' : 'BATCH' } });
      ids.push(createBatchJob.id);
    }
    const page1 = (await gql(server.url, listTok, LIST, { first: 2 })).batchJobs;
    expect(page1.edges.map((e: any) => e.node.id)).toEqual([ids[4], ids[3]]);
    expect(page1.pageInfo.hasNextPage).toBe(true);
    const page2 = (await gql(server.url, listTok, LIST, { first: 2, after: page1.pageInfo.endCursor })).batchJobs;
    expect(page2.edges.map((e: any) => e.node.id)).toEqual([ids[2], ids[1]]);
    const page3 = (await gql(server.url, listTok, LIST, { first: 2, after: page2.pageInfo.endCursor })).batchJobs;
    expect(page3.edges.map((e: any) => e.node.id)).toEqual([ids[0]]);
    expect(page3.pageInfo.hasNextPage).toBe(false);
    const evals = (await gql(server.url, listTok, LIST, { kind: ['EVALUATION'] })).batchJobs;
    expect(evals.edges.map((e: any) => e.node.id)).toEqual([ids[3], ids[1]]);
    const bad = await gqlHttp(server.url, listTok, LIST, { first: 1000 });
    expect(errorCode(bad.body)).toBe('BAD_USER_INPUT');
  });

  it('moves QUEUED → RUNNING on the first report and computes percent', async () => {
    const job = await create({ name: 'p', total: 200 });
    const { body } = await report({ jobId: job.id, completed: 50, stage: 'embed' });
    expect(body.data.reportProgress).toMatchObject({ status: 'RUNNING', completed: 50, percent: 25, stage: 'embed' });
    const delta = await report({ jobId: job.id, completedDelta: 10, failedDelta: 2 });
    expect(delta.body.data.reportProgress).toMatchObject({ completed: 60, failed: 2, percent: 31 });
  });

  it.each([
    [{ completed: 5 }, 'completed going down'],
    [{ completedDelta: -1 }, 'a negative delta'],
    [{ failedDelta: -2 }, 'a negative failedDelta'],
    [{ completed: 95, failedDelta: 10 }, 'completed + failed over total'],
    [{ total: 5 }, 'a total below completed'],
    [{ completed: 20, completedDelta: 1 }, 'both completed and completedDelta'],
  ])('refuses %j (%s) with BAD_USER_INPUT and leaves the job unchanged', async (bad, _reason) => {
    const job = await create({ name: 'v', total: 100 });
    await report({ jobId: job.id, completed: 10, failedDelta: 1 });
    const before = (await gql(server.url, tok, GET, { id: job.id })).batchJob;
    const { status, body } = await report({ jobId: job.id, ...bad });
    expect(status).toBe(200);
    expect(errorCode(body)).toBe('BAD_USER_INPUT');
    const after = (await gql(server.url, tok, GET, { id: job.id })).batchJob;
    expect({ ...after, rate: null, etaSeconds: null }).toEqual({ ...before, rate: null, etaSeconds: null });
  });

  it('refuses reports and a second finish on a finished job with CONFLICT', async () => {
    const job = await create({ name: 'c', total: 2 });
    await gql(server.url, tok, `mutation($id: ID!) { completeBatchJob(id: $id) { status } }`, { id: job.id });
    expect(errorCode((await report({ jobId: job.id, completedDelta: 1 })).body)).toBe('CONFLICT');
    const again = await gqlHttp(server.url, tok, `mutation($id: ID!) { failBatchJob(id: $id, error: "x") { status } }`, { id: job.id });
    expect(errorCode(again.body)).toBe('CONFLICT');
  });

  it('reports NOT_FOUND for a missing job and null from batchJob', async () => {
    expect(errorCode((await report({ jobId: 'j_missing', completedDelta: 1 })).body)).toBe('NOT_FOUND');
    expect((await gql(server.url, tok, GET, { id: 'j_missing' })).batchJob).toBeNull();
  });

  it('streams SNAPSHOT, every event in cursor order, one terminal event, then completes', async () => {
    const job = await create({ name: 'pipeline', kind: 'PIPELINE', total: 30 });
    const events = subscribeWs(wsClient(server.url, tok), WATCH, { runId: job.id }, 'runProgress');
    await events.waitForCount(1);
    expect(events.items[0]).toMatchObject({ type: 'SNAPSHOT', runId: job.id, job: { status: 'QUEUED', completed: 0 } });
    await report({ jobId: job.id, completedDelta: 10, stage: 'parse' });
    await report({ jobId: job.id, completedDelta: 5, failedDelta: 1, message: 'bad pdf' });
    await report({ jobId: job.id, completedDelta: 5, stage: 'embed' });
    await gql(server.url, tok, `mutation($id: ID!) { completeBatchJob(id: $id, message: "done") { status } }`, { id: job.id });
    const all = await events.done();
    const types = all.map((e) => e.type);
    expect(types).toEqual(['SNAPSHOT', 'STARTED', 'STAGE', 'ITEM_FAILED', 'STAGE', 'COMPLETED']);
    expect(all.filter((e) => ['COMPLETED', 'FAILED', 'CANCELLED'].includes(e.type))).toHaveLength(1);
    const offsets = all.map((e) => Number(e.cursor.split('.').pop()));
    for (let i = 1; i < offsets.length; i++) expect(offsets[i]).toBeGreaterThan(offsets[i - 1]!);
    expect(all[all.length - 1].job).toMatchObject({ status: 'COMPLETED', completed: 20, failed: 1, stage: 'embed' });
    expect(all[3]).toMatchObject({ type: 'ITEM_FAILED', message: 'bad pdf' });
  });

  it('yields the terminal SNAPSHOT of a finished job and completes', async () => {
    const job = await create({ name: 'old', total: 1 });
    await gql(server.url, tok, `mutation($id: ID!) { failBatchJob(id: $id, error: "GPU fell off") { status } }`, { id: job.id });
    const events = await subscribeWs(wsClient(server.url, tok), WATCH, { runId: job.id }, 'runProgress').done();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'SNAPSHOT', job: { status: 'FAILED' } });
  });

  it('ends a subscription to a missing job with NOT_FOUND', async () => {
    const c = subscribeWs(wsClient(server.url, tok), WATCH, { runId: 'j_nope' }, 'runProgress');
    await c.done();
    expect(c.items).toHaveLength(0);
    expect(JSON.stringify(c.errors)).toContain('NOT_FOUND');
  });

  it('conflates fast PROGRESS reports to RUNWATCH_PROGRESS_HZ and still delivers the newest state', async () => {
    const job = await create({ name: 'fast', total: 300 });
    const events = subscribeWs(wsClient(server.url, tok), WATCH, { runId: job.id }, 'runProgress');
    await events.waitForCount(1);
    // Reported in-process (the resolver's own call), as fast as the store commits: the test is about conflation, not HTTP.
    const viewer = await viewerOf(tok);
    for (let i = 0; i < 300; i++) await server.services.jobs.report(viewer, job.id, { completedDelta: 1 });
    await events.waitFor((items) => items.at(-1)?.job.completed === 300, 'the final count');
    const progress = events.items.filter((e) => e.type === 'PROGRESS');
    expect(progress.length).toBeLessThan(150);
    expect(events.items.at(-1).type).toBe('PROGRESS');
    events.dispose();
  });
});
