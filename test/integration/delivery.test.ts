/**
 * Delivery guarantees: resume from a cursor with no gap and no duplicate,
 * a fresh SNAPSHOT when history cannot cover the cursor, conflation of fast
 * reports, and bounded memory with a subscriber that stops reading.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { decodeCursor } from '../../src/domain/cursor.js';
import { sharedExecutionStats } from '../../src/delivery/shared-execution.js';
import { deferred, errorCode, gql, gqlHttp, subscribeSse, subscribeWs, withTimeout, wsClient } from '../helpers/clients.js';
import { startRedis } from '../helpers/redis.js';
import { BACKENDS_AND_CLUSTER, freshInstitute, startTestServer, token, viewerOf, withClusterBackend } from '../helpers/servers.js';
import { waitUntil } from '../helpers/wait.js';

const CREATE = `mutation($input: CreateBatchJobInput!) { createBatchJob(input: $input) { id } }`;
const REPORT = `mutation($input: ReportProgressInput!) { reportProgress(input: $input) { completed } }`;
const COMPLETE = `mutation($id: ID!) { completeBatchJob(id: $id) { id } }`;
const WATCH = `subscription($runId: ID!, $after: String) { runProgress(runId: $runId, after: $after) { cursor type job { completed failed stage status } } }`;
const WATCH_ALL = `subscription($runId: ID!, $after: String) { runProgress(runId: $runId, after: $after) { cursor type message job { completed failed metadata } } }`;

export const offsetOf = (e: { cursor: string }) => decodeCursor(e.cursor).offset;
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe.each(BACKENDS_AND_CLUSTER)('resume on the %s backend', (backend) => {
  const target = withClusterBackend(backend);

  it('replays exactly the missed events, in order, while a producer keeps publishing through another instance', async () => {
    const [a, b] = backend !== 'memory' ? await Promise.all([startTestServer(target()), startTestServer(target())]) : [await startTestServer(target())];
    const subscriberServer = b ?? a!;
    const tok = await token({ inst: freshInstitute() });
    const { createBatchJob: job } = await gql(a!.url, tok, CREATE, { input: { name: 'resume', total: 400 } });
    const reference = subscribeWs(wsClient(subscriberServer.url, tok), WATCH, { runId: job.id }, 'runProgress');
    const first = subscribeWs(wsClient(subscriberServer.url, tok), WATCH, { runId: job.id }, 'runProgress');
    await Promise.all([reference.waitForCount(1), first.waitForCount(1)]);

    // The producer reports through instance A in-process (the resolver's own call): the test is about delivery, not HTTP.
    // Half of the reports go out before the resumed subscription starts and half while it replays and goes live.
    const viewer = await viewerOf(tok);
    const resumedLive = deferred<void>();
    const producer = (async () => {
      for (let i = 1; i <= 400; i++) {
        if (i === 201) await withTimeout(resumedLive.promise, 20_000, 'the subscriber to resume');
        await a!.services.jobs.report(viewer, job.id, { completedDelta: 1, stage: `s${Math.floor(i / 4)}`, failedDelta: 0 });
      }
      await gql(a!.url, tok, COMPLETE, { id: job.id });
    })();

    await first.waitForCount(40);
    first.dispose();
    const seen = first.items.slice();
    const resumed = subscribeWs(wsClient(subscriberServer.url, tok), WATCH, { runId: job.id, after: seen.at(-1).cursor }, 'runProgress');
    resumedLive.resolve(); // the producer goes on while the resumed subscription replays and goes live
    await producer;
    const rest = await resumed.done(20_000);
    const all = await reference.done(20_000);

    expect(rest[0].type).not.toBe('SNAPSHOT');
    const offsets = [...seen.slice(1), ...rest].map(offsetOf);
    const expected = all.slice(1).map(offsetOf);
    expect(offsets).toEqual(expected);
    expect(expected).toEqual(range(expected[0]!, expected.at(-1)!));
    expect(rest.at(-1)).toMatchObject({ type: 'COMPLETED', job: { completed: 400 } });
  });

  it('starts with a fresh SNAPSHOT when history no longer holds the cursor, or it is of another epoch', async () => {
    const server = await startTestServer({ ...target(), config: { ...target().config, historySize: 10 } });
    const tok = await token({ inst: freshInstitute() });
    const { createBatchJob: job } = await gql(server.url, tok, CREATE, { input: { name: 'trimmed', total: 1000 } });
    const live = subscribeWs(wsClient(server.url, tok), WATCH, { runId: job.id }, 'runProgress');
    await live.waitForCount(1);
    const viewer = await viewerOf(tok);
    for (let i = 1; i <= 300; i++) await server.services.jobs.report(viewer, job.id, { completedDelta: 1, stage: `s${i}` });
    await live.waitFor((items) => items.at(-1)?.job.completed === 300, 'all 300 reports');
    const early = live.items[2].cursor;

    const trimmed = subscribeWs(wsClient(server.url, tok), WATCH, { runId: job.id, after: early }, 'runProgress');
    await trimmed.waitForCount(1);
    expect(trimmed.items[0]).toMatchObject({ type: 'SNAPSHOT', job: { completed: 300 } });

    const otherEpoch = subscribeWs(wsClient(server.url, tok), WATCH, { runId: job.id, after: 'someOtherEpoch.5' }, 'runProgress');
    await otherEpoch.waitForCount(1);
    expect(otherEpoch.items[0]).toMatchObject({ type: 'SNAPSHOT', job: { completed: 300 } });

    const recent = subscribeWs(wsClient(server.url, tok), WATCH, { runId: job.id, after: live.items.at(-4).cursor }, 'runProgress');
    await recent.waitForCount(3);
    expect(recent.items.map((e) => e.type)).toEqual(['STAGE', 'STAGE', 'STAGE']);

    const bad = await gqlHttp(server.url, tok, `query { batchJob(id: "x") { id } }`);
    expect(bad.status).toBe(200);
    const malformed = subscribeWs(wsClient(server.url, tok), WATCH, { runId: job.id, after: 'garbage' }, 'runProgress');
    await malformed.done();
    expect(JSON.stringify(malformed.errors)).toContain('BAD_USER_INPUT');
    for (const s of [live, trimmed, otherEpoch, recent]) s.dispose();
  });
});

describe('conflation', () => {
  it('turns 5,000 fast reports into far fewer PROGRESS events, the final state and exactly one terminal event, in order', async () => {
    const server = await startTestServer({ backend: 'redis' });
    const tok = await token({ inst: freshInstitute() });
    const { createBatchJob: job } = await gql(server.url, tok, CREATE, { input: { name: 'flood', total: 5000 } });
    const events = subscribeWs(wsClient(server.url, tok), WATCH, { runId: job.id }, 'runProgress');
    await events.waitForCount(1);
    const started = Date.now();
    // Ten workers, in-process (the resolver's own call), so the test measures delivery, not HTTP.
    const viewer = await viewerOf(tok);
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        for (let i = 0; i < 500; i++) await server.services.jobs.report(viewer, job.id, { completedDelta: 1 });
      }),
    );
    const seconds = (Date.now() - started) / 1000;
    await events.waitFor((items) => items.at(-1)?.job.completed === 5000, 'the newest state (5000) to arrive', 15_000);
    await gql(server.url, tok, COMPLETE, { id: job.id });
    const all = await events.done();
    const progress = all.filter((e) => e.type === 'PROGRESS');
    // At most RUNWATCH_PROGRESS_HZ (10) per second, plus the trailing edge.
    expect(progress.length).toBeLessThanOrEqual(Math.ceil(seconds * 10) + 2);
    expect(progress.length).toBeLessThan(500);
    expect(all.filter((e) => ['COMPLETED', 'FAILED', 'CANCELLED'].includes(e.type))).toHaveLength(1);
    expect(all.at(-1)).toMatchObject({ type: 'COMPLETED', job: { completed: 5000 } });
    const offsets = all.map(offsetOf);
    for (let i = 1; i < offsets.length; i++) expect(offsets[i]).toBe(offsets[i - 1]! + 1);
    const completed = all.map((e) => e.job.completed);
    for (let i = 1; i < completed.length; i++) expect(completed[i]).toBeGreaterThanOrEqual(completed[i - 1]!);
  }, 120_000);
});

describe('SSE', () => {
  it('gives every SSE subscriber of one document the same events, serialized once per event, not once per subscriber', async () => {
    const server = await startTestServer();
    const tok = await token({ inst: freshInstitute() });
    const { createBatchJob: job } = await gql(server.url, tok, CREATE, { input: { name: 'sse fan-out', total: 100 } });
    const subscribers = 4;
    const streams = Array.from({ length: subscribers }, () => subscribeSse(server.url, tok, WATCH, { runId: job.id }, 'runProgress'));
    await Promise.all(streams.map((s) => s.waitForCount(1)));
    const before = { ...sharedExecutionStats };
    const viewer = await viewerOf(tok);
    for (let i = 1; i <= 20; i++) await server.services.jobs.report(viewer, job.id, { completedDelta: 1, stage: `stage ${i}` });
    await gql(server.url, tok, COMPLETE, { id: job.id });
    const received = await Promise.all(streams.map((s) => s.done()));
    for (const events of received) expect(events.slice(1)).toEqual(received[0]!.slice(1));
    const shared = received[0]!.length - 1; // all but each subscriber's own SNAPSHOT
    expect(received[0]!.at(-1)).toMatchObject({ type: 'COMPLETED', job: { completed: 20, stage: 'stage 20' } });
    expect(sharedExecutionStats.serializedReused - before.serializedReused).toBeGreaterThanOrEqual(shared * (subscribers - 1));
    expect(sharedExecutionStats.serialized - before.serialized).toBeLessThanOrEqual(shared);
  });
});

describe('backpressure', () => {
  it('drops a subscriber that stopped reading (close 4008) with bounded memory while the others keep receiving', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const server = await startTestServer({ closeGraceMs: 120_000, config: { subscriberQueue: 100, historySize: 100 } }) // the stuck client reads its close only after the drop is seen: a long grace keeps the 4008 frame for it;
    const tok = await token({ inst: freshInstitute() });
    // Big metadata makes every event ~17 KB on the wire (one shared object in memory), so the
    // socket buffers fill after a few hundred events and the server's queue bound is what holds.
    const metadata = { notes: 'm'.repeat(15_000) };
    const { createBatchJob: job } = await gql(server.url, tok, CREATE, { input: { name: 'slow reader', total: 100_000, metadata } });

    // A healthy subscriber that only counts.
    let healthy = 0;
    const healthyDone = deferred();
    const onHealthy: (() => void)[] = [];
    const client = wsClient(server.url, tok);
    const next = () => {
      healthy++;
      for (const wake of onHealthy.splice(0)) wake();
    };
    client.subscribe({ query: WATCH, variables: { runId: job.id } }, { next, error: healthyDone.reject, complete: healthyDone.resolve });
    /** Flow control for the in-process producer: the healthy reader stays within 50 events of it. */
    const healthyWithin50Of = async (produced: number) => {
      while (healthy < produced - 50) await withTimeout(new Promise<void>((wake) => onHealthy.push(wake)), 10_000, 'the healthy subscriber to keep up');
    };

    // A stuck one: a raw socket that stops reading once subscribed.
    const stuck = new WebSocket(server.url.replace(/^http/, 'ws'), 'graphql-transport-ws');
    const received: any[] = [];
    const closed = deferred<number>();
    const subscribed = deferred();
    stuck.on('open', () => stuck.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${tok}` } })));
    stuck.on('message', (raw) => {
      const msg = JSON.parse(String(raw));
      if (msg.type === 'connection_ack') stuck.send(JSON.stringify({ id: 's', type: 'subscribe', payload: { query: WATCH_ALL, variables: { runId: job.id } } }));
      if (msg.type === 'next') {
        received.push({ cursor: msg.payload.data.runProgress.cursor }); // keep only the cursor: this process's heap is measured
        subscribed.resolve();
      }
    });
    stuck.on('close', (code) => closed.resolve(code));
    await withTimeout(subscribed.promise, 5000, 'the stuck subscriber to get its SNAPSHOT');
    stuck.pause();

    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    const message = (i: number) => `item ${i} failed: ${'x'.repeat(1900)}`;
    const n = 6000;
    let produced = 0;
    const viewer = await viewerOf(tok);
    const producer = Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let i = produced++; i < n; i = produced++) {
          await healthyWithin50Of(i);
          await server.services.jobs.report(viewer, job.id, { completedDelta: 1, failedDelta: 1, message: message(i) });
        }
      }),
    );
    // The server gives up on the stuck stream once its queue overflows; then let the client read again.
    await waitUntil(() => server.services.jobs.activeStreams, (open) => open === 1, 'the stuck stream to be dropped', 30_000);
    stuck.resume();
    expect(await withTimeout(closed.promise, 10_000, 'the stuck subscriber to see its close')).toBe(4008);
    await producer;
    await gql(server.url, tok, COMPLETE, { id: job.id });
    await withTimeout(healthyDone.promise, 20_000, 'the healthy subscriber to finish');
    gc();
    const grownMb = (process.memoryUsage().heapUsed - heapBefore) / 1e6;
    // ~2 KB per event: 6,000 events are ~12 MB per subscriber; the stuck one may hold 100.
    expect(grownMb).toBeLessThan(8);
    expect(healthy).toBe(1 + 1 + n + 1); // SNAPSHOT, STARTED, ITEM_FAILED × n, COMPLETED

    const offsets = received.map(offsetOf);
    for (let i = 1; i < offsets.length; i++) expect(offsets[i]).toBe(offsets[i - 1]! + 1);
    expect(received.length).toBeLessThan(n);

    // It resumes from its last cursor; history (100 events here) no longer covers it, so a SNAPSHOT of the end state.
    const resumed = subscribeWs(wsClient(server.url, tok), WATCH, { runId: job.id, after: received.at(-1).cursor }, 'runProgress');
    const rest = await resumed.done(20_000);
    expect(rest).toHaveLength(1);
    expect(rest[0]).toMatchObject({ type: 'SNAPSHOT', job: { status: 'COMPLETED', completed: n, failed: n } });
  }, 120_000);
});

describe('Redis restarted empty', () => {
  it('restores a watched job under a new epoch: live subscribers get a SNAPSHOT, old cursors resume with one, reports work again', async () => {
    const redis = await startRedis();
    try {
      const server = await startTestServer({ redisUrl: redis.url });
      const tok = await token({ inst: freshInstitute() });
      const { createBatchJob: job } = await gql(server.url, tok, CREATE, { input: { name: 'amnesia', total: 100 } });
      const live = subscribeWs(wsClient(server.url, tok), WATCH, { runId: job.id }, 'runProgress');
      await live.waitForCount(1);
      for (let i = 1; i <= 5; i++) await gql(server.url, tok, REPORT, { input: { jobId: job.id, completed: i * 10, stage: `s${i}` } });
      await live.waitFor((items) => items.at(-1)?.job.completed === 50, 'five reports');
      const oldCursor = live.items.at(-1).cursor;

      await redis.restartEmpty();
      await live.waitFor((items) => items.at(-1)?.type === 'SNAPSHOT' && items.length > 6, 'a SNAPSHOT after Redis came back empty', 20_000);
      const snapshot = live.items.at(-1);
      expect(snapshot.job).toMatchObject({ completed: 50, stage: 's5', status: 'RUNNING' });
      expect(decodeCursor(snapshot.cursor).epoch).not.toBe(decodeCursor(oldCursor).epoch);

      const report = await gqlHttp(server.url, tok, REPORT, { input: { jobId: job.id, completed: 60, stage: 's6' } });
      expect(report.body.errors).toBeUndefined();
      await live.waitFor((items) => items.at(-1)?.job.completed === 60, 'the report after the restore');

      const resumer = subscribeWs(wsClient(server.url, tok), WATCH, { runId: job.id, after: oldCursor }, 'runProgress');
      await resumer.waitForCount(1);
      expect(resumer.items[0]).toMatchObject({ type: 'SNAPSHOT', job: { completed: 60 } });
      live.dispose();
      resumer.dispose();
      expect(errorCode((await gqlHttp(server.url, tok, `{ batchJob(id: "${job.id}") { id } }`)).body)).toBeUndefined();
    } finally {
      await redis.stop();
    }
  });
});
