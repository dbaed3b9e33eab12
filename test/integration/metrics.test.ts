/**
 * /metrics as an operator scrapes it, during a real stream on the Redis
 * backend: counters move by exactly the events that happened, the delivery
 * latency histogram fills, gauges follow connections and subscriptions, and
 * no label value is ever an id.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { errorCode, gql, gqlHttp, subscribeSse, subscribeWs, wsClient } from '../helpers/clients.js';
import { scrape } from '../helpers/prometheus.js';
import { startRedis } from '../helpers/redis.js';
import { freshInstitute, startTestServer, token } from '../helpers/servers.js';
import { waitUntil } from '../helpers/wait.js';

const CREATE = `mutation Create($input: CreateBatchJobInput!) { createBatchJob(input: $input) { id } }`;
const REPORT = `mutation Report($input: ReportProgressInput!) { reportProgress(input: $input) { status } }`;
const COMPLETE = `mutation Complete($id: ID!) { completeBatchJob(id: $id, message: "done") { status } }`;
const WATCH = `subscription Watch($runId: ID!) { runProgress(runId: $runId) { type cursor job { status completed } } }`;

describe('/metrics', () => {
  let server: RunningServer;

  beforeAll(async () => {
    server = await startTestServer({ backend: 'redis' });
  });

  it('counts a real stream exactly, fills the latency histogram and never labels an id', async () => {
    const institute = freshInstitute();
    const sub = `user-metrics-${Date.now()}`;
    const tok = await token({ sub, inst: institute });
    const { createBatchJob: job } = await gql(server.url, tok, CREATE, { input: { name: 'scraped', total: 30 } });

    const before = await scrape(server.url);
    const ws = subscribeWs(wsClient(server.url, tok), WATCH, { runId: job.id }, 'runProgress');
    const sse = subscribeSse(server.url, tok, WATCH, { runId: job.id }, 'runProgress');
    await ws.waitForCount(1);
    await sse.waitForCount(1);

    const during = await scrape(server.url);
    expect(during.value('runwatch_subscriptions_active', { field: 'runProgress', transport: 'ws' })).toBe(1);
    expect(during.value('runwatch_subscriptions_active', { field: 'runProgress', transport: 'sse' })).toBe(1);
    expect(during.value('runwatch_connections_open', { transport: 'ws' })).toBe(1);
    expect(during.value('runwatch_connections_open', { transport: 'sse' })).toBe(1);

    await gql(server.url, tok, REPORT, { input: { jobId: job.id, completedDelta: 10, stage: 'parse' } }); // STARTED, STAGE
    await gql(server.url, tok, REPORT, { input: { jobId: job.id, completedDelta: 5, failedDelta: 1, message: 'bad pdf' } }); // ITEM_FAILED
    await gql(server.url, tok, REPORT, { input: { jobId: job.id, completedDelta: 5, stage: 'embed' } }); // STAGE
    await gql(server.url, tok, COMPLETE, { id: job.id }); // COMPLETED
    const late = await gqlHttp(server.url, tok, REPORT, { input: { jobId: job.id, completedDelta: 1 } });
    expect(errorCode(late.body)).toBe('CONFLICT');
    const seen = ['SNAPSHOT', 'STARTED', 'STAGE', 'ITEM_FAILED', 'STAGE', 'COMPLETED'];
    expect((await ws.done()).map((e) => e.type)).toEqual(seen);
    expect((await sse.done()).map((e) => e.type)).toEqual(seen);

    const after = await scrape(server.url);
    const delta = (name: string, labels: Record<string, string> = {}) => after.value(name, labels) - before.value(name, labels);

    // Published once per event (not per subscriber), delivered once per event per subscriber.
    expect(delta('runwatch_events_published_total', { type: 'STARTED' })).toBe(1);
    expect(delta('runwatch_events_published_total', { type: 'STAGE' })).toBe(2);
    expect(delta('runwatch_events_published_total', { type: 'ITEM_FAILED' })).toBe(1);
    expect(delta('runwatch_events_published_total', { type: 'COMPLETED' })).toBe(1);
    expect(delta('runwatch_events_published_total')).toBe(5);
    expect(delta('runwatch_events_delivered_total', { type: 'SNAPSHOT' })).toBe(2);
    expect(delta('runwatch_events_delivered_total', { type: 'STAGE' })).toBe(4);
    expect(delta('runwatch_events_delivered_total')).toBe(12);

    // The latency histogram has one sample per delivery, in seconds, and buckets that add up.
    expect(delta('runwatch_event_delivery_latency_seconds_count', { type: 'STAGE' })).toBe(4);
    expect(delta('runwatch_event_delivery_latency_seconds_count')).toBe(12);
    const sum = delta('runwatch_event_delivery_latency_seconds_sum');
    expect(sum).toBeGreaterThanOrEqual(0);
    expect(sum).toBeLessThan(12 * 5); // seconds, not milliseconds
    expect(delta('runwatch_event_delivery_latency_seconds_bucket', { type: 'STAGE', le: '+Inf' })).toBe(4);

    // Operations by root field and outcome.
    expect(delta('runwatch_graphql_operations_total', { type: 'mutation', field: 'reportProgress', outcome: 'ok' })).toBe(3);
    expect(delta('runwatch_graphql_operations_total', { type: 'mutation', field: 'reportProgress', outcome: 'CONFLICT' })).toBe(1);
    expect(delta('runwatch_graphql_operations_total', { type: 'mutation', field: 'completeBatchJob', outcome: 'ok' })).toBe(1);
    expect(delta('runwatch_graphql_operations_total', { type: 'subscription', field: 'runProgress', outcome: 'ok' })).toBe(2);
    expect(after.value('runwatch_graphql_operation_duration_seconds_count', { type: 'mutation', field: 'reportProgress' })).toBeGreaterThanOrEqual(4);

    // Streams that ended leave the gauges; the WebSocket is still open until the client disposes it.
    expect(after.value('runwatch_subscriptions_active', { field: 'runProgress' })).toBe(0);
    expect(after.value('runwatch_connections_open', { transport: 'sse' })).toBe(0);
    expect(after.value('runwatch_redis_up')).toBe(1);
    // Default process metrics are there too.
    expect(after.value('process_cpu_user_seconds_total')).toBeGreaterThan(0);

    // No label value is an id: not the job's, the user's, the tenant's, nor a cursor. runwatch's labels are
    // from fixed vocabularies (transports, root fields, event types, codes, reasons) and bucket bounds.
    const ids = [job.id, sub, institute, ...ws.items.map((e) => e.cursor)];
    for (const id of ids) expect(after.text).not.toContain(id);
    const vocabulary = /^(ws|sse|[a-z][A-Za-z]*|[A-Z_]+|[a-z_]+|ok|unknown|\+Inf|\d+(\.\d+)?(e[-+]?\d+)?)$/;
    for (const sample of after.samples.filter((s) => s.name.startsWith('runwatch_'))) {
      for (const [name, value] of Object.entries(sample.labels)) {
        expect(['transport', 'field', 'type', 'outcome', 'reason', 'kind', 'limit', 'le'], `${sample.name} label name`).toContain(name);
        expect(value, `${sample.name}{${name}}`).toMatch(vocabulary);
        expect(value, `${sample.name}{${name}}`).not.toMatch(/^j_/);
      }
    }
  });

  it('counts training events delivered to trainingEvents subscribers too', async () => {
    const tok = await token({ inst: freshInstitute() });
    const { createBatchJob: job } = await gql(server.url, tok, CREATE, { input: { name: 'train', kind: 'TRAINING' } });
    const before = await scrape(server.url);
    const logs = subscribeWs(
      wsClient(server.url, tok),
      `subscription($runId: ID!) { trainingEvents(runId: $runId, types: [TRAINING_LOG]) { ... on TrainingLog { message } } }`,
      { runId: job.id },
      'trainingEvents',
    );
    await waitUntil(async () => (await scrape(server.url)).value('runwatch_subscriptions_active', { field: 'trainingEvents' }), (n) => n >= 1, 'the subscription');
    const publish = `mutation($runId: ID!, $events: [TrainingEventInput!]!) { publishTrainingEvents(runId: $runId, events: $events) }`;
    await gql(server.url, tok, publish, { runId: job.id, events: [{ log: { message: 'one' } }, { log: { message: 'two' } }] });
    await logs.waitFor((items) => items.filter((e) => e.message).length === 2, 'two log lines');
    const after = await scrape(server.url);
    expect(after.value('runwatch_event_delivery_latency_seconds_count', { type: 'TRAINING_LOG' }) - before.value('runwatch_event_delivery_latency_seconds_count', { type: 'TRAINING_LOG' })).toBe(2);
    logs.dispose();
  });

  it('counts PROGRESS conflated at the publisher (RUNWATCH_PROGRESS_HZ)', async () => {
    const slow = await startTestServer({ backend: 'redis', config: { progressHz: 0.2 } }); // one PROGRESS per 5 s
    const tok = await token({ inst: freshInstitute() });
    const { createBatchJob: job } = await gql(slow.url, tok, CREATE, { input: { name: 'fast', total: 100 } });
    await gql(slow.url, tok, REPORT, { input: { jobId: job.id, completedDelta: 1 } }); // STARTED
    const before = await scrape(slow.url);
    // Two quick reports: the first PROGRESS goes out, the second comes within 5 s and is deferred.
    await gql(slow.url, tok, REPORT, { input: { jobId: job.id, completedDelta: 1 } });
    await gql(slow.url, tok, REPORT, { input: { jobId: job.id, completedDelta: 1 } });
    const after = await scrape(slow.url);
    const published = after.value('runwatch_events_published_total', { type: 'PROGRESS' }) - before.value('runwatch_events_published_total', { type: 'PROGRESS' });
    const conflated = after.value('runwatch_events_conflated_total', { reason: 'publish_rate' }) - before.value('runwatch_events_conflated_total', { reason: 'publish_rate' });
    expect(published).toBe(1);
    expect(conflated).toBe(1);
  });

  it('counts replayed events for a resumed stream', async () => {
    const tok = await token({ inst: freshInstitute() });
    const { createBatchJob: job } = await gql(server.url, tok, CREATE, { input: { name: 'resume', total: 10 } });
    const first = subscribeWs(wsClient(server.url, tok), WATCH, { runId: job.id }, 'runProgress');
    await first.waitForCount(1);
    const cursor = first.items[0].cursor;
    first.dispose();
    await gql(server.url, tok, REPORT, { input: { jobId: job.id, completedDelta: 1, stage: 'a' } }); // STARTED, STAGE
    await gql(server.url, tok, REPORT, { input: { jobId: job.id, stage: 'b' } }); // STAGE
    const before = await scrape(server.url);
    const resumed = subscribeWs(
      wsClient(server.url, tok),
      `subscription($runId: ID!, $after: String) { runProgress(runId: $runId, after: $after) { type } }`,
      { runId: job.id, after: cursor },
      'runProgress',
    );
    await resumed.waitForCount(3);
    expect(resumed.items.map((e) => e.type)).toEqual(['STARTED', 'STAGE', 'STAGE']);
    const after = await scrape(server.url);
    expect(after.value('runwatch_events_replayed_total') - before.value('runwatch_events_replayed_total')).toBe(3);
    resumed.dispose();
  });

  it('needs the bearer token when RUNWATCH_METRICS_TOKEN is set', async () => {
    const metricsToken = 'metrics-token-0123456789';
    const guarded = await startTestServer({ config: { metricsToken } });
    const url = new URL('/metrics', guarded.url);
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status).toBe(401);
    const ok = await scrape(guarded.url, metricsToken);
    expect(ok.value('runwatch_connections_open')).toBe(0);
    expect(ok.text).not.toContain('runwatch_redis_up'); // memory backend: no Redis gauge
  });

  it('shows Redis going down and coming back: redis_up, command errors, one reconnect', async () => {
    const redis = await startRedis();
    try {
      const own = await startTestServer({ redisUrl: redis.url });
      const tok = await token({ inst: freshInstitute() });
      expect((await scrape(own.url)).value('runwatch_redis_up')).toBe(1);
      await redis.stop(true);
      await waitUntil(() => scrape(own.url), (m) => m.value('runwatch_redis_up') === 0, 'runwatch_redis_up to drop to 0');
      const failed = await gqlHttp(own.url, tok, CREATE, { input: { name: 'while down' } });
      expect(errorCode(failed.body)).toBe('SERVICE_UNAVAILABLE');
      await redis.restart();
      const back = await waitUntil(() => scrape(own.url), (m) => m.value('runwatch_redis_up') === 1, 'runwatch_redis_up back to 1', 15_000);
      expect(back.value('runwatch_redis_reconnects_total')).toBe(1);
      expect(back.value('runwatch_redis_errors_total', { kind: 'command' })).toBeGreaterThanOrEqual(1);
      expect(back.value('runwatch_graphql_operations_total', { field: 'createBatchJob', outcome: 'SERVICE_UNAVAILABLE' })).toBe(1);
    } finally {
      await redis.stop(true);
    }
  });
});
