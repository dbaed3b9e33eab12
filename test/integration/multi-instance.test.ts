/**
 * Two server instances on one redis-server: events published through one
 * reach subscribers on the other, in order; concurrent reports never lose
 * an update; SSE works like graphql-ws.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { gql, gqlHttp, subscribeSse, subscribeWs, wsClient } from '../helpers/clients.js';
import { Redis } from 'ioredis';
import { TokenVerifier } from '../../src/auth/tokens.js';
import { freshInstitute, sharedRedisUrl, startTestServer, TEST_SECRET, token } from '../helpers/servers.js';
import { sharedChannelStats } from '../../src/transport/shared-channel.js';
import { sharedExecutionStats } from '../../src/delivery/shared-execution.js';

const CREATE = `mutation($input: CreateBatchJobInput!) { createBatchJob(input: $input) { id } }`;
const REPORT = `mutation($input: ReportProgressInput!) { reportProgress(input: $input) { completed } }`;
const WATCH_OFFSETS = `subscription($runId: ID!) { runProgress(runId: $runId) { cursor type job { status completed stage } } }`;
const WATCH = `subscription($runId: ID!) { runProgress(runId: $runId) { cursor type job { status completed failed stage } } }`;

describe('two instances sharing one Redis', () => {
  let a: RunningServer;
  let b: RunningServer;
  let tok: string;

  beforeAll(async () => {
    [a, b] = await Promise.all([startTestServer({ backend: 'redis' }), startTestServer({ backend: 'redis' })]);
    tok = await token({ inst: freshInstitute() });
  });

  it('delivers every event reported through A to a graphql-ws subscriber on B, in order', async () => {
    const { createBatchJob: job } = await gql(a.url, tok, CREATE, { input: { name: 'cross', kind: 'PIPELINE', total: 100 } });
    const events = subscribeWs(wsClient(b.url, tok), WATCH, { runId: job.id }, 'runProgress');
    await events.waitForCount(1);
    const stages = ['download', 'parse', 'chunk', 'embed', 'index'];
    for (const [i, stage] of stages.entries()) {
      await gql(a.url, tok, REPORT, { input: { jobId: job.id, completedDelta: 10, stage, failedDelta: i === 2 ? 1 : 0 } });
    }
    await gql(b.url, tok, `mutation($id: ID!) { completeBatchJob(id: $id) { id } }`, { id: job.id });
    const all = await events.done();
    expect(all.map((e) => e.type)).toEqual(['SNAPSHOT', 'STARTED', 'STAGE', 'STAGE', 'STAGE', 'ITEM_FAILED', 'STAGE', 'STAGE', 'COMPLETED']);
    expect(all.filter((e) => e.type === 'STAGE').map((e) => e.job.stage)).toEqual(stages);
    expect(all.at(-1).job).toMatchObject({ status: 'COMPLETED', completed: 50, failed: 1 });
    expect(new Set(all.map((e) => e.cursor)).size).toBe(all.length);
  });

  it('executes each event once per distinct operation, however many local subscribers share it', async () => {
    const { createBatchJob: job } = await gql(a.url, tok, CREATE, { input: { name: 'fan-out', total: 10 } });
    const client = wsClient(b.url, tok);
    const joinedBefore = sharedChannelStats.joined;
    const subs = Array.from({ length: 6 }, () => subscribeWs(client, WATCH, { runId: job.id }, 'runProgress'));
    await Promise.all(subs.map((s) => s.waitForCount(1)));
    const before = { ...sharedExecutionStats };
    for (let i = 1; i <= 5; i++) await gql(a.url, tok, REPORT, { input: { jobId: job.id, completed: i * 2, stage: `s${i}` } });
    await gql(a.url, tok, `mutation($id: ID!) { completeBatchJob(id: $id) { id } }`, { id: job.id });
    const results = await Promise.all(subs.map((s) => s.done()));
    for (const r of results) expect(r.slice(1)).toEqual(results[0]!.slice(1));
    const events = results[0]!.length - 1; // all but the per-subscriber SNAPSHOT
    expect(sharedExecutionStats.executed - before.executed).toBe(events);
    // With shared channels on (RUNWATCH_SHARED_CHANNELS), the members of a channel share its one execution
    // without asking the cache; the others reuse the first execution's result.
    const onChannel = sharedChannelStats.joined - joinedBefore;
    const executions = 6 - onChannel + (onChannel > 0 ? 1 : 0);
    expect(sharedExecutionStats.reused - before.reused).toBe(events * (executions - 1));
  });

  it('ends at exactly 100 after 2 × 50 concurrent completedDelta: 1 reports through both instances', async () => {
    const { createBatchJob: job } = await gql(a.url, tok, CREATE, { input: { name: 'race', total: 100 } });
    const reports = [];
    for (let i = 0; i < 50; i++) {
      reports.push(gqlHttp(a.url, tok, REPORT, { input: { jobId: job.id, completedDelta: 1 } }));
      reports.push(gqlHttp(b.url, tok, REPORT, { input: { jobId: job.id, completedDelta: 1 } }));
    }
    const results = await Promise.all(reports);
    expect(results.filter((r) => r.body.errors)).toEqual([]);
    for (const server of [a, b]) {
      const { batchJob } = await gql(server.url, tok, `query($id: ID!) { batchJob(id: $id) { completed status } }`, { id: job.id });
      expect(batchJob).toEqual({ completed: 100, status: 'RUNNING' });
    }
  });

  it('combines 400 concurrent reports to one job from two instances: exact count, gap-free offsets, few Redis round trips', async () => {
    const inst = freshInstitute();
    const viewer = await new TokenVerifier(TEST_SECRET).verify(await token({ inst, sub: 'workers' }));
    const job = await a.services.jobs.create(viewer, { name: 'many writers', kind: 'BATCH', total: 400 });
    const events = subscribeWs(wsClient(b.url, await token({ inst })), WATCH_OFFSETS, { runId: job.id }, 'runProgress');
    await events.waitForCount(1);
    const redis = new Redis(sharedRedisUrl());
    const casBefore = await evalCalls(redis);
    // In-process, as 400 HTTP workers would call it, half through each instance, all at once.
    const reports = Array.from({ length: 400 }, (_, i) =>
      (i % 2 ? a : b).services.jobs.report(viewer, job.id, { completedDelta: 1, stage: i === 199 ? 'second half' : undefined }),
    );
    const views = await Promise.all(reports);
    const casCalls = (await evalCalls(redis)) - casBefore;
    redis.disconnect();
    expect(Math.max(...views.map((v) => v.completed))).toBe(400);
    await a.services.jobs.finish(viewer, job.id, 'COMPLETED', null);
    const all = await events.done();
    expect(all.at(-1).job).toMatchObject({ status: 'COMPLETED', completed: 400 });
    const offsets = all.slice(1).map((e) => Number(e.cursor.split('.')[1]));
    expect(offsets).toEqual(offsets.map((_, i) => offsets[0]! + i));
    expect(all.filter((e) => e.type === 'STAGE').map((e) => e.job.stage)).toEqual(['second half']);
    // One compare-and-set per combined batch (plus retries when the other instance won), never one per report.
    expect(casCalls, `compare-and-set calls for 400 reports`).toBeLessThan(100);
  });

  it('streams over SSE (Accept: text/event-stream) on B what is reported through A', async () => {
    const { createBatchJob: job } = await gql(a.url, tok, CREATE, { input: { name: 'sse', total: 3 } });
    const events = subscribeSse(b.url, tok, WATCH, { runId: job.id }, 'runProgress');
    await events.waitForCount(1);
    await gql(a.url, tok, REPORT, { input: { jobId: job.id, completed: 1, stage: 'one' } });
    await gql(a.url, tok, REPORT, { input: { jobId: job.id, completed: 3, stage: 'two' } });
    await gql(a.url, tok, `mutation($id: ID!) { completeBatchJob(id: $id) { id } }`, { id: job.id });
    const all = await events.done();
    expect(all.map((e) => e.type)).toEqual(['SNAPSHOT', 'STARTED', 'STAGE', 'STAGE', 'COMPLETED']);
    expect(all.at(-1).job).toMatchObject({ status: 'COMPLETED', completed: 3 });
  });
});

/** Scripts Redis has run so far (every job commit is one EVALSHA of the compare-and-set script). */
async function evalCalls(redis: Redis): Promise<number> {
  const info = await redis.info('commandstats');
  let calls = 0;
  for (const m of info.matchAll(/^cmdstat_(?:evalsha|eval):calls=(\d+)/gm)) calls += Number(m[1]);
  return calls;
}
