/**
 * Retention (RUNWATCH_RETENTION_DAYS): a finished job and everything about it
 * (record, history, tenant index, idempotency entry, training events,
 * commands, item results, metric history) is removed once its retention ends, on both backends; the API
 * then answers NOT_FOUND / null and lists no longer show it. Unfinished jobs
 * stay. The in-memory backend also caps how many jobs it keeps.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import type { RunningServer } from '../../src/server.js';
import { errorCode, gql, gqlHttp, subscribeSse, wsClient, subscribeWs } from '../helpers/clients.js';
import { testKeys } from '../helpers/redis.js';
import { BACKENDS, freshInstitute, sharedRedisUrl, startTestServer, token } from '../helpers/servers.js';
import { waitUntil } from '../helpers/wait.js';

const CREATE = `mutation($input: CreateBatchJobInput!) { createBatchJob(input: $input) { id } }`;
const GET = `query($id: ID!) { batchJob(id: $id) { id status completed } }`;
const LIST = `{ batchJobs(first: 100) { edges { node { id } } } }`;
const REPORT = `mutation($id: ID!, $c: Int) { reportProgress(input: { jobId: $id, completed: $c }) { completed } }`;
const COMPLETE = `mutation($id: ID!) { completeBatchJob(id: $id) { status } }`;
const PUBLISH = `mutation($runId: ID!, $events: [TrainingEventInput!]!) { publishTrainingEvents(runId: $runId, events: $events) }`;
const COMMAND = `mutation($runId: ID!) { sendTrainingCommand(runId: $runId, command: SAVE_CHECKPOINT) { id } }`;
const COMMANDS = `query($id: ID!) { recentTrainingCommands(runId: $id) { id } }`;
const WATCH = `subscription($runId: ID!) { runProgress(runId: $runId) { type } }`;
const ITEMS = `mutation($id: ID!) { reportItems(jobId: $id, items: [{ itemId: "a", ok: true, metrics: [{ name: "f1", value: 0.5 }] }]) { completed } }`;
const ITEM_RESULTS = `query($id: ID!) { itemResults(jobId: $id) { nodes { itemId } } }`;

/**
 * Retention in these tests: 4 seconds (RUNWATCH_RETENTION_DAYS takes fractional days; the config takes
 * seconds). Long enough that a busy machine still sees the job during it; on the memory backend the
 * test moves the server's clock past it instead of waiting, on Redis (whose TTLs run on its own clock) it waits.
 */
const RETENTION_SECONDS = 4;

describe.each(BACKENDS)('retention (%s backend)', (backend) => {
  let server: RunningServer;
  let tok: string;
  const inst = freshInstitute();
  let redis: Redis | null = null;
  let finishedId: string;
  let runId: string;
  let unfinishedId: string;
  const idempotencyKey = `nightly-${Date.now()}`;
  /** The finished job's idempotency key in Redis. */
  let idemKey = '';
  /** Added to the server's clock (memory backend: time travel past the retention). */
  let skewMs = 0;

  /** Redis keys that mention an id (SCAN, so it is safe on the shared server). */
  const keysOf = async (id: string): Promise<string[]> => {
    const found: string[] = [];
    let cursor = '0';
    do {
      const [next, keys] = await redis!.scan(cursor, 'MATCH', `runwatch:*${id}*`, 'COUNT', 1000);
      cursor = next;
      found.push(...keys);
    } while (cursor !== '0');
    return found.sort();
  };

  beforeAll(async () => {
    server = await startTestServer({ backend, config: { retentionSeconds: RETENTION_SECONDS }, clock: () => Date.now() + skewMs });
    if (backend === 'redis') {
      redis = new Redis(sharedRedisUrl(), { maxRetriesPerRequest: 1 });
      redis.on('error', () => {});
    }
    tok = await token({ inst });
    finishedId = (await gql(server.url, tok, CREATE, { input: { name: 'finished batch', total: 10, idempotencyKey, metadata: { a: 1 } } }))
      .createBatchJob.id;
    await gql(server.url, tok, REPORT, { id: finishedId, c: 4 });
    await gql(server.url, tok, ITEMS, { id: finishedId });
    runId = (await gql(server.url, tok, CREATE, { input: { name: 'training run', kind: 'TRAINING' } })).createBatchJob.id;
    await gql(server.url, tok, PUBLISH, { runId, events: [{ progress: { globalStep: 5, maxStep: 50, loss: 1.5 } }, { log: { level: 'INFO', message: 'hi' } }] });
    await gql(server.url, tok, COMMAND, { runId });
    unfinishedId = (await gql(server.url, tok, CREATE, { input: { name: 'still running', total: 10 } })).createBatchJob.id;
    await gql(server.url, tok, REPORT, { id: unfinishedId, c: 1 });
  });

  afterAll(() => {
    redis?.disconnect();
  });

  // One timeline (finish, look during the retention, look after it), so one test: its phases cannot run in another order.
  it('keeps a finished job, its history, training data, commands, item results and metric history during the retention, and removes them all once it ends; the unfinished one stays', async () => {
    await gql(server.url, tok, COMPLETE, { id: finishedId });
    await gql(server.url, tok, COMPLETE, { id: runId });
    // Redis first: its clock runs, so look while the retention surely has not ended.
    if (redis) {
      const keys = await keysOf(finishedId);
      expect(keys).toEqual(
        [
          testKeys.job(finishedId),
          testKeys.jobEvents(finishedId),
          testKeys.logHead(`items:${finishedId}`),
          testKeys.logEvents(`items:${finishedId}`),
          testKeys.logHead(`metrics:${finishedId}`),
        ].sort(),
      );
      const runKeys = await keysOf(runId);
      expect(runKeys).toEqual(
        expect.arrayContaining([
          testKeys.logHead(`training:${runId}`),
          testKeys.logEvents(`training:${runId}`),
          testKeys.logHead(`commands:${runId}`),
          testKeys.logEvents(`commands:${runId}`),
        ]),
      );
      // Every one of them expires within the retention.
      for (const key of [...keys, ...runKeys]) {
        const ttl = await redis.ttl(key);
        expect(ttl, key).toBeGreaterThan(0);
        expect(ttl, key).toBeLessThanOrEqual(RETENTION_SECONDS);
      }
      // The idempotency key is in the tenant's slot, not the job's: the retention sweep removes it with the index entry.
      idemKey = (await redis.hget(testKeys.job(finishedId), 'idem'))!;
      expect(idemKey).toContain(idempotencyKey);
      expect(await redis.get(idemKey)).toMatch(new RegExp(`^${finishedId}\n`));
    }
    expect((await gql(server.url, tok, GET, { id: finishedId })).batchJob.status).toBe('COMPLETED');
    expect((await gql(server.url, tok, COMMANDS, { id: runId })).recentTrainingCommands).toHaveLength(1);

    // Once the retention has ended.
    if (backend === 'memory') skewMs += (RETENTION_SECONDS + 1) * 1000;
    await waitUntil(
      async () => (await gql(server.url, tok, GET, { id: finishedId })).batchJob,
      (job) => job === null,
      'the finished job to be removed',
      15_000,
    );
    await waitUntil(async () => (await gql(server.url, tok, GET, { id: runId })).batchJob, (job) => job === null, 'the training run to be removed', 15_000);

    if (redis) {
      // Before any list call (which also drops expired ids): the sweep empties the index of removed jobs.
      await waitUntil(() => keysOf(finishedId), (keys) => keys.length === 0, `no key left for ${finishedId}`);
      await waitUntil(() => keysOf(runId), (keys) => keys.length === 0, `no key left for ${runId}`);
      const index = testKeys.tenantJobs({ institute: inst, environment: 'default' });
      await waitUntil(() => redis!.zrange(index, 0, -1), (ids) => ids.length === 1 && ids[0] === unfinishedId, 'the tenant index to hold only the unfinished job');
      await waitUntil(
        async () =>
          [...(await redis!.zrange(testKeys.retentionOf(finishedId), 0, -1)), ...(await redis!.zrange(testKeys.retentionOf(runId), 0, -1))].filter(
            (m) => m.includes(`\n${finishedId}\n`) || m.includes(`\n${runId}\n`),
          ),
        (members) => members.length === 0,
        'the retention set to forget the removed jobs',
      );
      expect(await redis.exists(idemKey)).toBe(0);
      // The unfinished job never expires.
      for (const key of await keysOf(unfinishedId)) expect(await redis.ttl(key), key).toBe(-1);
    }

    // The API: null, NOT_FOUND, and gone from lists; the unfinished job is still there.
    const listed = (await gql(server.url, tok, LIST)).batchJobs.edges.map((e: { node: { id: string } }) => e.node.id);
    expect(listed).toEqual([unfinishedId]);
    expect(errorCode((await gqlHttp(server.url, tok, REPORT, { id: finishedId, c: 5 })).body)).toBe('NOT_FOUND');
    expect(errorCode((await gqlHttp(server.url, tok, COMMANDS, { id: runId })).body)).toBe('NOT_FOUND');
    expect(errorCode((await gqlHttp(server.url, tok, COMMAND, { runId })).body)).toBe('NOT_FOUND');
    expect(errorCode((await gqlHttp(server.url, tok, ITEM_RESULTS, { id: finishedId })).body)).toBe('NOT_FOUND');
    const sse = subscribeSse(server.url, tok, WATCH, { runId: finishedId }, 'runProgress');
    await sse.done(5000);
    expect((sse.errors[0] as { extensions?: { code?: string } }[])[0]?.extensions?.code).toBe('NOT_FOUND');
    const ws = subscribeWs(wsClient(server.url, tok), WATCH, { runId }, 'runProgress');
    await ws.done(5000);
    expect((ws.errors[0] as { extensions?: { code?: string } }[])[0]?.extensions?.code).toBe('NOT_FOUND');
    expect((await gql(server.url, tok, GET, { id: unfinishedId })).batchJob).toMatchObject({ status: 'RUNNING', completed: 1 });

    // Training data, commands, item results and metric history are gone with their jobs.
    for (const topic of [`training:${runId}`, `commands:${runId}`, `items:${finishedId}`, `metrics:${finishedId}`, `metrics:${runId}`])
      expect(await server.backend.logs.head(topic), topic).toBeNull();

    // The idempotency entry went too: the same key now makes a new job.
    const again = (await gql(server.url, tok, CREATE, { input: { name: 'finished batch', total: 10, idempotencyKey, metadata: { a: 2 } } })).createBatchJob.id;
    expect(again).not.toBe(finishedId);
  });
});

describe('in-memory backend cap', () => {
  it('removes the oldest finished job first, never an unfinished one, and refuses to grow past the cap', async () => {
    const server = await startTestServer({ config: { memoryMaxJobs: 3 } });
    const tok = await token({ inst: freshInstitute() });
    const create = async (name: string) => (await gql(server.url, tok, CREATE, { input: { name } })).createBatchJob.id as string;
    const exists = async (id: string) => (await gql(server.url, tok, GET, { id })).batchJob !== null;

    const a = await create('a');
    const b = await create('b');
    const c = await create('c');
    await gql(server.url, tok, COMPLETE, { id: b });
    await gql(server.url, tok, COMPLETE, { id: a });
    // b finished first: it goes first, though a is older.
    const d = await create('d');
    expect([await exists(a), await exists(b), await exists(c), await exists(d)]).toEqual([true, false, true, true]);
    const e = await create('e');
    expect([await exists(a), await exists(c), await exists(d), await exists(e)]).toEqual([false, true, true, true]);
    // Three unfinished jobs: nothing may be removed, so creating is refused (and nothing changes).
    const refused = await gqlHttp(server.url, tok, CREATE, { input: { name: 'f' } });
    expect(errorCode(refused.body)).toBe('SERVICE_UNAVAILABLE');
    expect(refused.body.errors![0]!.message).toContain('maximum of 3 jobs');
    const listed = (await gql(server.url, tok, LIST)).batchJobs.edges.map((x: { node: { id: string } }) => x.node.id);
    expect(listed).toEqual([e, d, c]);
    // Once one finishes, there is room again.
    await gql(server.url, tok, COMPLETE, { id: c });
    expect(await create('f')).toBeTruthy();
    expect(await exists(c)).toBe(false);
  });
});

describe('RUNWATCH_RETENTION_DAYS and RUNWATCH_MEMORY_MAX_JOBS', () => {
  it('takes whole or fractional days, and refuses anything else naming the variable', () => {
    expect(loadConfig({ RUNWATCH_RETENTION_DAYS: '7' }).retentionSeconds).toBe(7 * 86_400);
    expect(loadConfig({ RUNWATCH_RETENTION_DAYS: '0.25' }).retentionSeconds).toBe(21_600);
    expect(loadConfig({ RUNWATCH_MEMORY_MAX_JOBS: '50' }).memoryMaxJobs).toBe(50);
    expect(() => loadConfig({ RUNWATCH_MEMORY_MAX_JOBS: '0' })).toThrow('RUNWATCH_MEMORY_MAX_JOBS');
    for (const value of ['0', '-3', 'a month', '1e3']) {
      expect(() => loadConfig({ RUNWATCH_RETENTION_DAYS: value })).toThrow(ConfigError);
      expect(() => loadConfig({ RUNWATCH_RETENTION_DAYS: value })).toThrow('RUNWATCH_RETENTION_DAYS');
    }
  });
});
