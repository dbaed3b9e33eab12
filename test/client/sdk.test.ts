/**
 * The SDK against real servers: watchJob across a server restart (Redis,
 * same port), waitForCompletion's outcomes, ProgressReporter coalescing.
 */
import { describe, expect, it } from 'vitest';
import { JobCancelledError, JobFailedError, ProgressReporter, RunwatchClient, RunwatchError, WaitTimeoutError, type ProgressEvent } from '../../clients/typescript/src/client/index.js';
import { deferred, gql, subscribeWs, withTimeout, wsClient } from '../helpers/clients.js';
import { freshInstitute, startTestServer, token } from '../helpers/servers.js';

const REPORT = `mutation($input: ReportProgressInput!) { reportProgress(input: $input) { id completed } }`;
const COMPLETE = `mutation($id: ID!) { completeBatchJob(id: $id) { id } }`;
const WATCH = `subscription($runId: ID!) { runProgress(runId: $runId) { cursor type job { status completed } } }`;

/** Consumes an iterator in the background; `waitFor` resolves once a predicate over the events holds. */
function consume(iter: AsyncIterable<ProgressEvent>) {
  const events: ProgressEvent[] = [];
  let waiter = null as { check: () => boolean; resolve: () => void } | null;
  const done = (async () => {
    for await (const e of iter) {
      events.push(e);
      if (waiter?.check()) waiter.resolve();
    }
  })();
  return {
    events,
    done,
    waitFor(check: (events: ProgressEvent[]) => boolean, what: string, ms = 15_000) {
      if (check(events)) return Promise.resolve();
      const d = deferred();
      waiter = { check: () => check(events), resolve: d.resolve };
      return withTimeout(d.promise, ms, `${what} (have ${events.length}: ${JSON.stringify(events.slice(-2).map((e) => [e.type, e.job.completed]))})`);
    },
  };
}

describe('watchJob', () => {
  it('survives a server restart mid-run and yields every event exactly once', async () => {
    const tok = await token({ inst: freshInstitute() });
    const a = await startTestServer({ backend: 'redis' });
    const reporterServer = await startTestServer({ backend: 'redis' });
    const client = new RunwatchClient({ url: a.url, token: tok });
    const job = await client.createJob({ name: 'restart me', total: 90 });

    // A reference subscriber on an instance that stays up the whole time.
    const reference = subscribeWs(wsClient(reporterServer.url, tok), WATCH, { runId: job.id }, 'runProgress');
    await reference.waitForCount(1);

    const reconnects: string[] = [];
    const watch = consume(client.watchJob(job.id, { onReconnect: (i) => reconnects.push(i.reason), retry: { initialDelayMs: 50, maxDelayMs: 500 } }));
    await watch.waitFor((e) => e.length >= 1, 'the first SNAPSHOT');
    const report = (completed: number) => gql(reporterServer.url, tok, REPORT, { input: { jobId: job.id, completed, stage: completed > 30 ? 'second half' : 'first half' } });

    for (let i = 1; i <= 30; i++) await report(i);
    await watch.waitFor((e) => e.some((x) => x.job.completed === 30), 'progress up to 30 before the restart');

    await a.close(); // closes the watcher's socket with 1012
    for (let i = 31; i <= 60; i++) await report(i); // while nothing listens on the watcher's port
    const b = await startTestServer({ backend: 'redis', config: { port: a.port } });
    expect(b.port).toBe(a.port);
    for (let i = 61; i <= 90; i++) await report(i);
    await gql(reporterServer.url, tok, COMPLETE, { id: job.id });

    await withTimeout(watch.done, 15_000, 'watchJob to end after COMPLETED');
    await reference.done();
    expect(reconnects.some((r) => r.includes('1012'))).toBe(true);

    const cursors = watch.events.map((e) => e.cursor);
    expect(new Set(cursors).size).toBe(cursors.length); // nothing twice
    const streamed = (events: { type: string; cursor: string }[]) => events.filter((e) => e.type !== 'SNAPSHOT').map((e) => `${e.type}@${e.cursor}`);
    expect(streamed(watch.events)).toEqual(streamed(reference.items)); // nothing missing, same order
    expect(watch.events.at(-1)).toMatchObject({ type: 'COMPLETED', job: { status: 'COMPLETED', completed: 90 } });
    const completedSeq = watch.events.map((e) => e.job.completed);
    expect(completedSeq).toEqual([...completedSeq].sort((x, y) => x - y));
    expect(watch.events.filter((e) => e.type === 'STAGE').map((e) => e.job.stage)).toEqual(['first half', 'second half']);
    await client.close();
  });

  it('fails fast on a bad token (4401) and on another tenant’s job (NOT_FOUND)', async () => {
    const server = await startTestServer();
    const bad = new RunwatchClient({ url: server.url, token: 'not-a-jwt' });
    await expect(bad.watchJob('whatever').next()).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    const owner = new RunwatchClient({ url: server.url, token: await token({ inst: freshInstitute() }) });
    const job = await owner.createJob({ name: 'mine' });
    const stranger = new RunwatchClient({ url: server.url, token: await token({ inst: freshInstitute() }) });
    const notFound = { code: 'NOT_FOUND', message: `no job with id "${job.id}"` };
    await expect(stranger.watchJob(job.id).next()).rejects.toMatchObject(notFound);
    // One wording everywhere: getJob raises the same NOT_FOUND as watchJob (and the server) for a job it cannot see.
    await expect(stranger.getJob(job.id)).rejects.toMatchObject(notFound);
    await expect(stranger.getJob(job.id)).rejects.toBeInstanceOf(RunwatchError);
    expect((await owner.getJob(job.id)).name).toBe('mine');
    await Promise.all([bad.close(), owner.close(), stranger.close()]);
  });
});

describe('new RunwatchClient', () => {
  const saved = { url: process.env.RUNWATCH_URL, token: process.env.RUNWATCH_TOKEN };
  const restore = () => {
    for (const [name, value] of [['RUNWATCH_URL', saved.url], ['RUNWATCH_TOKEN', saved.token]] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };

  it('reads RUNWATCH_URL and RUNWATCH_TOKEN when url or token is left out, as the CLI and the Python client do', async () => {
    const server = await startTestServer();
    try {
      process.env.RUNWATCH_URL = server.url.replace(/\/graphql$/, '');
      process.env.RUNWATCH_TOKEN = await token({ inst: freshInstitute() });
      const fromEnv = new RunwatchClient();
      expect(fromEnv.endpoint).toBe(server.url);
      expect((await fromEnv.createJob({ name: 'from env' })).name).toBe('from env');
      const tokenOnly = new RunwatchClient({ token: process.env.RUNWATCH_TOKEN });
      expect((await tokenOnly.listJobs({ first: 1 })).nodes[0]!.name).toBe('from env');
    } finally {
      restore();
    }
  });

  it('says which setting is missing instead of a TypeError: Invalid URL', () => {
    try {
      delete process.env.RUNWATCH_URL;
      delete process.env.RUNWATCH_TOKEN;
      expect(() => new RunwatchClient({ token: 't' })).toThrow(expect.objectContaining({ code: 'BAD_USER_INPUT', message: expect.stringContaining('RUNWATCH_URL') }));
      expect(() => new RunwatchClient({ url: 'http://127.0.0.1:4000' })).toThrow(expect.objectContaining({ code: 'BAD_USER_INPUT', message: expect.stringContaining('RUNWATCH_TOKEN') }));
      process.env.RUNWATCH_URL = 'localhost 4000';
      expect(() => new RunwatchClient({ token: 't' })).toThrow(expect.objectContaining({ code: 'BAD_USER_INPUT', message: expect.stringContaining('"localhost 4000" (from RUNWATCH_URL)') }));
    } finally {
      restore();
    }
  });
});

describe('waitForCompletion', () => {
  it('resolves with the COMPLETED job and reports progress on the way', async () => {
    const server = await startTestServer();
    const client = new RunwatchClient({ url: server.url, token: await token({ inst: freshInstitute() }) });
    const job = await client.createJob({ name: 'ok', total: 3 });
    const seen: number[] = [];
    const firstSeen = deferred();
    const done = client.waitForCompletion(job.id, { onProgress: (j) => (seen.push(j.completed), firstSeen.resolve()), timeoutMs: 10_000 });
    await firstSeen.promise;
    const reporter = new ProgressReporter(client);
    reporter.attach(job.id);
    reporter.advance(3);
    await reporter.complete('all good');
    const finished = await done;
    expect(finished).toMatchObject({ id: job.id, status: 'COMPLETED', completed: 3 });
    expect(seen[0]).toBe(0);
    expect(seen.at(-1)).toBe(3);
    await client.close();
  });

  it('rejects with JobFailedError on FAILED and JobCancelledError on CANCELLED', async () => {
    const server = await startTestServer();
    const client = new RunwatchClient({ url: server.url, token: await token({ inst: freshInstitute() }) });
    const failing = await client.createJob({ name: 'bad' });
    const failed = client.waitForCompletion(failing.id, { timeoutMs: 10_000 });
    const r = new ProgressReporter(client);
    r.attach(failing.id);
    await r.fail(new Error('GPU fell off the bus'));
    const failure = await failed.catch((e) => e);
    expect(failure).toBeInstanceOf(JobFailedError);
    expect(failure).toMatchObject({ code: 'JOB_FAILED', job: { status: 'FAILED', errorMessage: 'GPU fell off the bus' } });

    const cancelling = await client.createJob({ name: 'cancel me' });
    const cancelled = client.waitForCompletion(cancelling.id, { timeoutMs: 10_000 });
    await client.cancelJob(cancelling.id, 'not needed');
    const cancel = await cancelled.catch((e) => e);
    expect(cancel).toBeInstanceOf(JobCancelledError);
    expect(cancel).toMatchObject({ code: 'JOB_CANCELLED', job: { status: 'CANCELLED' } });
    await client.close();
  });

  it('rejects with WaitTimeoutError when the job does not finish in time', async () => {
    const server = await startTestServer();
    const client = new RunwatchClient({ url: server.url, token: await token({ inst: freshInstitute() }) });
    const job = await client.createJob({ name: 'slow', total: 10 });
    const started = Date.now();
    const error = await client.waitForCompletion(job.id, { timeoutMs: 300 }).catch((e) => e);
    expect(error).toBeInstanceOf(WaitTimeoutError);
    expect(error).toMatchObject({ code: 'TIMEOUT', jobId: job.id, job: { status: 'QUEUED' } });
    expect(Date.now() - started).toBeLessThan(5_000);
    await client.close();
  });
});

describe('ProgressReporter', () => {
  it('coalesces many advance calls into few requests and reports the exact final count', async () => {
    const server = await startTestServer();
    let requests = 0;
    const countingFetch: typeof fetch = (input, init) => (requests++, fetch(input, init));
    const client = new RunwatchClient({ url: server.url, token: await token({ inst: freshInstitute() }), fetch: countingFetch });
    const reporter = new ProgressReporter(client, { onError: (e) => expect.unreachable(e.message) });
    const id = await reporter.start({ name: 'coalesce', kind: 'BATCH', total: 20_000 });
    expect(id).toBeTruthy();
    const started = Date.now();
    // A worker doing 20 000 small items in 40 batches, yielding to the event loop between batches.
    for (let batch = 0; batch < 40; batch++) {
      for (let i = 0; i < 500; i++) reporter.advance();
      if (batch === 20) reporter.setStage('second half');
      await new Promise((r) => setTimeout(r, 25)); // simulated work between batches
    }
    await reporter.complete();
    const elapsedMs = Date.now() - started;
    const job = await client.getJob(id!);
    expect(job).toMatchObject({ status: 'COMPLETED', completed: 20_000, stage: 'second half' });
    // create + complete + at most one report per 250 ms (+1 for the trailing flush), + the getJob above
    expect(requests).toBeLessThanOrEqual(3 + Math.ceil(elapsedMs / 250) + 1);
    expect(requests).toBeGreaterThanOrEqual(4);
    console.log(`ProgressReporter: 20000 advance() calls over ${elapsedMs} ms -> ${requests} HTTP requests`);
  });

  it('never throws into the worker when the server is unreachable; errors go to onError', async () => {
    const server = await startTestServer();
    const url = server.url;
    await server.close();
    const errors: RunwatchError[] = [];
    const reporter = new ProgressReporter(new RunwatchClient({ url, token: 'x' }), { maxAttempts: 2, onError: (e) => errors.push(e) });
    expect(await reporter.start({ name: 'offline', total: 10 })).toBeNull();
    reporter.advance(5);
    reporter.setStage('still working');
    await reporter.complete();
    expect(errors.map((e) => e.code)).toEqual(['NETWORK']);
    expect(errors[0]!.transient).toBe(true);
  });
});
