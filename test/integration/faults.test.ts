/**
 * Faults with real processes: redis-server killed and restarted mid-stream,
 * a server process SIGKILLed mid-stream, and a graceful SIGTERM.
 */
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { decodeCursor } from '../../src/domain/cursor.js';
import type { RedisEventBus } from '../../src/backends/redis.js';
import type { RunningServer } from '../../src/server.js';
import { Collector, deferred, errorCode, gql, gqlHttp, subscribeSse, subscribeWs, withTimeout, wsClient } from '../helpers/clients.js';
import { spawnServer } from '../helpers/processes.js';
import { startRedis, testKeys } from '../helpers/redis.js';
import { freshInstitute, sharedRedisUrl, startTestServer, TEST_SECRET, token, viewerOf } from '../helpers/servers.js';
import { waitUntil } from '../helpers/wait.js';

const CREATE = `mutation($input: CreateBatchJobInput!) { createBatchJob(input: $input) { id } }`;
const REPORT = `mutation($input: ReportProgressInput!) { reportProgress(input: $input) { completed } }`;
const COMPLETE = `mutation($id: ID!) { completeBatchJob(id: $id) { id } }`;
const WATCH = `subscription($runId: ID!, $after: String) { runProgress(runId: $runId, after: $after) { cursor type job { completed stage status } } }`;
const offsetOf = (e: { cursor: string }) => decodeCursor(e.cursor).offset;

/** Offsets of the events stored in the job's history stream, read straight from Redis. */
async function storedOffsets(redisUrl: string, jobId: string): Promise<number[]> {
  const redis = new Redis(redisUrl);
  try {
    const entries = await redis.xrange(testKeys.jobEvents(jobId), '-', '+');
    return entries.map(([id]) => Number(id.split('-')[0]));
  } finally {
    redis.disconnect();
  }
}

/** How Redis goes away and comes back with its data (appendonly yes); see docs/operations.md "Redis persistence". */
const PERSISTENT_RESTARTS = [
  { how: 'SIGKILLed with appendfsync always', appendfsync: 'always', graceful: false },
  { how: 'restarted with SIGTERM with appendfsync everysec (the recommended set-up)', appendfsync: 'everysec', graceful: true },
] as const;

describe('redis-server restarted mid-stream with its data (AOF)', () => {
  it.each(PERSISTENT_RESTARTS)('$how: mutations fail fast with SERVICE_UNAVAILABLE, subscriptions on both instances get every stored event, no fresh SNAPSHOT', async ({ appendfsync, graceful }) => {
    const redis = await startRedis({ persistent: true, appendfsync });
    try {
      const [a, b] = await Promise.all([startTestServer({ redisUrl: redis.url }), startTestServer({ redisUrl: redis.url })]);
      const tok = await token({ inst: freshInstitute() });
      const total = 120;
      const { createBatchJob: job } = await gql(a.url, tok, CREATE, { input: { name: 'outage', total } });
      const subs = [a, b].map((s) => subscribeWs(wsClient(s.url, tok), WATCH, { runId: job.id }, 'runProgress'));
      await Promise.all(subs.map((s) => s.waitForCount(1)));

      const failures: { code?: string; ms: number }[] = [];
      let killed = false;
      let restarting: Promise<void> | null = null;
      const producer = (async () => {
        for (let i = 1; i <= total; ) {
          const started = Date.now();
          const { body } = await gqlHttp(a.url, tok, REPORT, { input: { jobId: job.id, completed: i, stage: `s${i}` } });
          if (body.errors) {
            failures.push({ code: errorCode(body), ms: Date.now() - started });
            restarting ??= redis.restart({ graceful }); // Redis comes back after the first refused report
            await new Promise((r) => setTimeout(r, 50)); // a worker's retry pause, not a test wait
            continue;
          }
          if (i === 40 && !killed) {
            killed = true;
            await redis.stop(!graceful); // mid-stream
          }
          i++;
        }
        for (;;) {
          const { body } = await gqlHttp(b.url, tok, COMPLETE, { id: job.id });
          if (!body.errors) break;
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      await producer;
      const results = await Promise.all(subs.map((s) => s.done(30_000)));
      const stored = await storedOffsets(redis.url, job.id);
      expect(stored.length).toBeGreaterThan(total);
      for (const events of results) {
        // The first event is the subscription's SNAPSHOT; Redis kept the history, so no other SNAPSHOT was needed.
        expect(events.findLastIndex((e) => e.type === 'SNAPSHOT')).toBe(0);
        const seen = events.slice(1).map(offsetOf);
        const missing = stored.filter((o) => !seen.includes(o));
        expect(seen, `missing offsets ${JSON.stringify(missing)} of ${stored.length} stored (Redis was stopped after report 40)`).toEqual(stored);
        expect(events.at(-1)).toMatchObject({ type: 'COMPLETED', job: { completed: total } });
      }
      expect(failures.length).toBeGreaterThan(0);
      expect(failures.every((f) => f.code === 'SERVICE_UNAVAILABLE')).toBe(true);
      expect(Math.max(...failures.map((f) => f.ms), 0)).toBeLessThan(1000);
    } finally {
      await redis.stop();
    }
    // 120 sequential reports, a Redis restart and two instances' catch-up: about 3 s on a quiet machine, over
    // 30 s on a 2-core machine running other suites beside it.
  }, 90_000);

  it('reports not ready on /readyz while Redis is down, and ready again after', async () => {
    const redis = await startRedis();
    try {
      const server: RunningServer = await startTestServer({ redisUrl: redis.url });
      const readyz = async () => (await fetch(new URL('/readyz', server.url))).status;
      expect(await readyz()).toBe(200);
      await redis.stop(true);
      await waitUntil(readyz, (s) => s === 503, '/readyz to fail');
      const tok = await token({ inst: freshInstitute() });
      const started = Date.now();
      const { body } = await gqlHttp(server.url, tok, CREATE, { input: { name: 'down' } });
      expect(errorCode(body)).toBe('SERVICE_UNAVAILABLE');
      expect(Date.now() - started).toBeLessThan(3000);
      await redis.restart();
      await waitUntil(readyz, (s) => s === 200, '/readyz to recover', 20_000);
    } finally {
      await redis.stop();
    }
  });
});

describe('an instance whose Redis subscriber connection drops', () => {
  it('catches job, training, command and job-list streams up when it reconnects', async () => {
    const [a, b] = await Promise.all([startTestServer({ backend: 'redis' }), startTestServer({ backend: 'redis' })]);
    const tok = await token({ inst: freshInstitute() });
    const { createBatchJob: job } = await gql(b.url, tok, CREATE, { input: { name: 'blip', kind: 'TRAINING', total: 100 } });
    const TRAIN = `subscription($runId: ID!) { trainingEvents(runId: $runId, types: [TRAINING_LOG]) { ... on TrainingLog { cursor message } } }`;
    const PUBLISH = `mutation($runId: ID!, $events: [TrainingEventInput!]!) { publishTrainingEvents(runId: $runId, events: $events) }`;
    const log = (message: string) => gql(b.url, tok, PUBLISH, { runId: job.id, events: [{ log: { message } }] });
    const progress = subscribeWs(wsClient(a.url, tok), WATCH, { runId: job.id }, 'runProgress');
    const logs = subscribeWs(wsClient(a.url, tok), TRAIN, { runId: job.id }, 'trainingEvents');
    await progress.waitForCount(1);
    // A log-only subscription starts with no event of its own (its fresh start has no TRAINING_LOG): it is live once
    // A holds the run's training channel, and only lines published after that reach it.
    const bus = a.backend.bus as RedisEventBus;
    const subscriber = bus.subscriber;
    await waitUntil(() => bus.subscribedChannels(), (channels) => channels.includes(testKeys.channel(`training:${job.id}`)), 'the training subscription to be live on A');
    await log('before');
    await logs.waitFor((items) => items.some((e) => e.message === 'before'), 'the first log line');
    await gql(b.url, tok, REPORT, { input: { jobId: job.id, completed: 1, stage: 'warmup' } });
    await progress.waitFor((items) => items.at(-1)?.job.stage === 'warmup', 'the first stage');
    // A trainer's command stream and the tenant's job list, on A too (every stream kind catches up the same way).
    const COMMANDS = `subscription($runId: ID!) { trainingCommands(runId: $runId) { id command } }`;
    const SEND = `mutation($runId: ID!, $command: TrainingCommandKind!) { sendTrainingCommand(runId: $runId, command: $command) { id } }`;
    const UPDATES = `subscription { jobUpdates { type cursor job { id stage } } }`;
    const commands = subscribeWs(wsClient(a.url, tok), COMMANDS, { runId: job.id }, 'trainingCommands');
    const updates = subscribeWs(wsClient(a.url, tok), UPDATES, {}, 'jobUpdates');
    await updates.waitForCount(1); // the snapshot: live
    await waitUntil(() => bus.subscribedChannels(), (channels) => channels.includes(testKeys.channel(`commands:${job.id}`)), 'the command subscription to be live on A');
    const first = (await gql(b.url, tok, SEND, { runId: job.id, command: 'SAMPLE' })).sendTrainingCommand.id;
    await commands.waitFor((items) => items.some((c) => c.id === first), 'the first command');

    // A's subscriber connection goes away; what B publishes meanwhile never reaches A over pub/sub.
    subscriber.disconnect();
    const sentInGap: string[] = [];
    for (let i = 1; i <= 5; i++) {
      await gql(b.url, tok, REPORT, { input: { jobId: job.id, completed: 1 + i, stage: `gap-${i}` } });
      await log(`gap-${i}`);
      if (i <= 2) sentInGap.push((await gql(b.url, tok, SEND, { runId: job.id, command: 'SAMPLE' })).sendTrainingCommand.id);
    }
    await subscriber.connect();
    await commands.waitFor((items) => sentInGap.every((id) => items.some((c) => c.id === id)), 'the commands sent while disconnected', 15_000);
    expect(commands.items.map((c) => c.id)).toEqual([first, ...sentInGap]);
    await updates.waitFor((items) => items.some((u) => u.job.stage === 'gap-5'), 'the job list updates made while disconnected', 15_000);
    const listed = updates.items.slice(1).map((u) => u.cursor);
    expect(new Set(listed).size).toBe(listed.length);
    commands.dispose();
    updates.dispose();
    await progress.waitFor((items) => items.at(-1)?.job.stage === 'gap-5', 'the stages published while disconnected', 15_000);
    await logs.waitFor((items) => items.some((e) => e.message === 'gap-5'), 'the log lines published while disconnected', 15_000);
    expect(progress.items.filter((e) => e.type === 'STAGE').map((e) => e.job.stage)).toEqual(['warmup', 'gap-1', 'gap-2', 'gap-3', 'gap-4', 'gap-5']);
    expect(logs.items.map((e) => e.message).filter((m) => m !== null)).toEqual(['before', 'gap-1', 'gap-2', 'gap-3', 'gap-4', 'gap-5']);
    const offsets = progress.items.slice(1).map(offsetOf);
    expect(offsets).toEqual(offsets.map((_, i) => offsets[0]! + i));
    progress.dispose();
    logs.dispose();
  });
});

describe('a server process killed mid-stream', () => {
  it('lets its subscriber resume on the other instance with its cursor and lose nothing', async () => {
    // The instance that dies is a real process; the surviving one runs in-process and its producer reports
    // in-process too (the test is about delivery, not HTTP).
    const [p1, p2] = await Promise.all([spawnServer({ REDIS_URL: sharedRedisUrl() }), startTestServer({ backend: 'redis' })]);
    const tok = await token({ inst: freshInstitute() });
    const viewer = await viewerOf(tok);
    const total = 150;
    const { createBatchJob: job } = await gql(p2.url, tok, CREATE, { input: { name: 'crash', total } });
    const closed = deferred<number>();
    const first = subscribeWs(wsClient(p1.url, tok, { onClose: (code) => closed.resolve(code) }), WATCH, { runId: job.id }, 'runProgress');
    await first.waitForCount(1);
    const reference = subscribeWs(wsClient(p2.url, tok), WATCH, { runId: job.id }, 'runProgress');
    await reference.waitForCount(1);

    // Reports 51-100 go out while the subscriber is away; 101-150 while it resumes on the other instance.
    const resumed = deferred<void>();
    const producer = (async () => {
      for (let i = 1; i <= total; i++) {
        if (i === 101) await withTimeout(resumed.promise, 20_000, 'the subscriber to resume');
        await p2.services.jobs.report(viewer, job.id, { completed: i, stage: `s${i}` });
        if (i === 50) p1.kill('SIGKILL');
      }
      await gql(p2.url, tok, COMPLETE, { id: job.id });
    })();
    await withTimeout(closed.promise, 10_000, 'the subscriber to notice its server died');
    await first.done();
    const last = first.items.at(-1);
    const second: Collector = subscribeWs(wsClient(p2.url, tok), WATCH, { runId: job.id, after: last.cursor }, 'runProgress');
    resumed.resolve(); // the producer goes on while the resumed subscription replays and goes live
    await producer;
    const rest = await second.done(20_000);
    const all = await reference.done(20_000);
    expect(rest[0].type).not.toBe('SNAPSHOT');
    expect([...first.items.slice(1), ...rest].map(offsetOf)).toEqual(all.slice(1).map(offsetOf));
    expect(rest.at(-1)).toMatchObject({ type: 'COMPLETED', job: { completed: total } });
    expect(await p1.exited).toBe('SIGKILL');
    // Its budget covers a server process to start (spawnServer: up to 60 s on a loaded machine) and its waits.
  }, 120_000);
});

describe('graceful shutdown', () => {
  it('on SIGTERM tells graphql-ws clients to reconnect (1012) and exits 0 within the bound', async () => {
    const proc = await spawnServer({});
    const tok = await token({ inst: freshInstitute() });
    const { createBatchJob: job } = await gql(proc.url, tok, CREATE, { input: { name: 'deploy' } });
    const closed = deferred<number>();
    const sub = subscribeWs(wsClient(proc.url, tok, { onClose: (code) => closed.resolve(code) }), WATCH, { runId: job.id }, 'runProgress');
    const sse = subscribeSse(proc.url, tok, WATCH, { runId: job.id }, 'runProgress');
    await Promise.all([sub.waitForCount(1), sse.waitForCount(1)]);
    const started = Date.now();
    proc.kill('SIGTERM');
    expect(await withTimeout(closed.promise, 5000, 'the close frame')).toBe(1012);
    await sse.done(5000);
    expect(JSON.stringify(sse.errors)).toContain('SERVICE_UNAVAILABLE');
    expect(await withTimeout(proc.exited, 10_000, 'the process to exit')).toBe(0);
    expect(Date.now() - started).toBeLessThan(6000);
    // Its budget covers a server process to start (spawnServer: up to 60 s on a loaded machine).
  }, 120_000);
});

describe('a server whose stdout reader went away', () => {
  /**
   * Starts `src/main.ts` on a free port with stdout piped to this test, and closes that pipe `before` the server
   * writes its first line or `after` its banner (as `npm start | head` does); then checks that it serves and exits 0
   * on SIGTERM.
   */
  async function servesAndStops(close: 'before' | 'after') {
    // A free port chosen here: with the pipe closed first, the server's announcement of it is lost.
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, '127.0.0.1', () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', RUNWATCH_JWT_SECRET: TEST_SECRET, LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
    try {
      if (close === 'before') child.stdout!.destroy();
      else {
        let printed = '';
        await withTimeout(
          new Promise<void>((resolve) => child.stdout!.on('data', (chunk: Buffer) => (printed += chunk.toString()).includes('runwatch is running') && resolve())),
          60_000, // as spawnServer: loading the server's modules takes far longer than 2 s on a loaded machine
          'the banner',
        );
        child.stdout!.destroy();
      }
      const url = `http://127.0.0.1:${port}`;
      const ready = () => fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) }).then((r) => r.status, () => 0);
      await waitUntil(ready, (status) => status === 200, 'the server to answer /readyz', 60_000);
      const tok = await token({ inst: freshInstitute() });
      const { createBatchJob: job } = await gql(`${url}/graphql`, tok, CREATE, { input: { name: 'headless' } });
      expect(job.id).toMatch(/^j_/);
      child.kill('SIGTERM');
      expect(await withTimeout(exited, 10_000, 'the process to exit after SIGTERM')).toBe(0);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }

  // Budgets covering a server process start (up to 60 s on a loaded machine, as spawnServer allows) and the exit.
  it('serves and exits 0 on SIGTERM when the reader is gone before the first line (every write to stdout fails)', () => servesAndStops('before'), 120_000);
  it('serves and exits 0 on SIGTERM when the reader goes away after the banner, as `npm start | head` does', () => servesAndStops('after'), 120_000);
});
