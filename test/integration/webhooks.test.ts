/**
 * Webhooks through the public API, with a receiver on 127.0.0.1 (node:http,
 * port 0): one delivery per terminal or STALLED event, signed so that the
 * `standardwebhooks` package's Webhook.verify accepts it; a 500 is retried
 * with the same `webhook-id`; another tenant's jobs send nothing; each attempt
 * is recorded; bad input is refused with the contract's code. (An instance
 * killed mid-delivery: webhooks-failover.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { errorCode, gql, gqlHttp } from '../helpers/clients.js';
import { COMPLETE, CREATE_HOOK, CREATE_JOB, FAST, startReceiver, verify, type Receiver } from '../helpers/webhooks.js';
import { closeTestServers, freshInstitute, startTestServer, token } from '../helpers/servers.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import type { Config } from '../../src/config.js';
import { waitUntil } from '../helpers/wait.js';

const REPORT = `mutation($id: ID!) { reportProgress(input: { jobId: $id, completedDelta: 1 }) { status } }`;
const FAIL = `mutation($id: ID!) { failBatchJob(id: $id, error: "out of memory") { status } }`;
const DELIVERIES = `query($id: ID!) { webhookDeliveries(webhookId: $id) { messageId event jobId attempt statusCode error ok durationMs } }`;

const SETUPS = [
  { name: 'one in-memory instance', backend: 'memory' as const, instances: 1 },
  { name: 'two instances sharing Redis', backend: 'redis' as const, instances: 2 },
];

describe.each(SETUPS)('webhooks on $name', ({ backend, instances }) => {
  let servers: RunningServer[];
  let receiver: Receiver;
  let admin: string;
  let inst: string;
  // A redis-server of this file's own: every instance on one Redis works one delivery queue, so servers of other
  // test files (with other webhook settings) on the shared one would take these deliveries.
  let redis: TestRedis | undefined;
  const start = (config: Partial<Config>) => startTestServer({ backend, redisUrl: redis?.url, config });
  beforeAll(async () => {
    if (backend === 'redis') redis = await startRedis();
    servers = [];
    for (let i = 0; i < instances; i++) servers.push(await start(FAST));
    receiver = await startReceiver();
    inst = freshInstitute();
    admin = await token({ inst });
  });
  afterAll(async () => {
    await receiver.close();
    await closeTestServers();
    await redis?.stop();
  });

  it('delivers one signed POST per terminal or STALLED event; retries a 500 with the same webhook-id; ignores other tenants', async () => {
    const [a, b] = [servers[0]!, servers[servers.length - 1]!];
    const created = (await gql(a.url, admin, CREATE_HOOK, { url: receiver.url, events: ['COMPLETED', 'FAILED', 'STALLED'] })).createWebhook;
    expect(created.secret).toMatch(/^whsec_[A-Za-z0-9+/=]{20,}$/);
    expect(created.webhook).toMatchObject({ url: receiver.url, events: ['COMPLETED', 'FAILED', 'STALLED'] });
    const listed = (await gql(b.url, admin, `{ webhooks { id url events } }`)).webhooks;
    expect(listed).toEqual([created.webhook]);
    expect(JSON.stringify(listed)).not.toContain('whsec_');

    // Another tenant's job finishing first: it must send nothing here.
    const stranger = await token({ inst: freshInstitute() });
    const foreign = (await gql(a.url, stranger, CREATE_JOB, { name: 'not yours' })).createBatchJob.id;
    await gql(a.url, stranger, COMPLETE, { id: foreign });

    const done = (await gql(a.url, admin, CREATE_JOB, { name: 'embed', hb: 0 })).createBatchJob.id;
    await gql(b.url, admin, REPORT, { id: done });
    await gql(b.url, admin, COMPLETE, { id: done });
    const [first] = await receiver.received.waitForCount(1);
    expect(first!.json).toMatchObject({ type: 'job.completed', data: { job: { id: done, status: 'COMPLETED', completed: 1 }, message: 'all done' } });
    expect(verify(created.secret, first!)).toMatchObject({ type: 'job.completed' });
    expect(first!.headers['webhook-signature']).toMatch(/^v1,/);
    expect(() => verify(created.secret, { ...first!, body: first!.body.replace('all done', 'tampered') })).toThrow();

    // The receiver fails once: the retry carries the same webhook-id and a valid signature.
    receiver.answers.push(500);
    const failed = (await gql(a.url, admin, CREATE_JOB, { name: 'oom', hb: 0 })).createBatchJob.id;
    await gql(a.url, admin, FAIL, { id: failed });
    await receiver.received.waitForCount(3, 30_000);
    const [tryOne, tryTwo] = receiver.received.items.slice(1);
    expect(tryOne!.headers['webhook-id']).toBe(tryTwo!.headers['webhook-id']);
    expect(verify(created.secret, tryTwo!)).toMatchObject({ type: 'job.failed', data: { job: { id: failed, errorMessage: 'out of memory' } } });

    // A job that goes silent: STALLED.
    const silent = (await gql(b.url, admin, CREATE_JOB, { name: 'silent', hb: 1 })).createBatchJob.id;
    await gql(b.url, admin, REPORT, { id: silent });
    await receiver.received.waitFor((items) => items.some((r) => r.json.type === 'job.stalled'), 'the job.stalled delivery', 15_000);
    const stalled = receiver.received.items.find((r) => r.json.type === 'job.stalled')!;
    expect(verify(created.secret, stalled)).toMatchObject({ data: { job: { id: silent, stalled: true } } });

    // Exactly one delivery per event, none for the other tenant's job.
    const ids = receiver.received.items.map((r) => r.json.data.job.id);
    expect(ids.filter((id) => id === done)).toHaveLength(1);
    expect(ids.filter((id) => id === failed)).toHaveLength(2);
    expect(ids).not.toContain(foreign);
    // An attempt is recorded after its POST returns, so the receiver can see the last POST before its record exists.
    const attempts = await waitUntil(
      async (): Promise<any[]> => (await gql(b.url, admin, DELIVERIES, { id: created.webhook.id })).webhookDeliveries,
      (list) => list.length >= 4,
      'the four delivery attempts to be recorded',
    );
    expect(attempts.map((x: any) => [x.jobId, x.attempt, x.statusCode ?? x.error, x.ok]).reverse()).toEqual([
      [done, 1, 200, true],
      [failed, 1, 500, false],
      [failed, 2, 200, true],
      [silent, 1, 200, true],
    ]);
    expect(attempts[1]!.messageId).toBe(tryTwo!.headers['webhook-id']);

    // Deleted: the tenant's next job sends nothing (checked with a second webhook as the barrier).
    expect((await gql(a.url, admin, `mutation($id: ID!) { deleteWebhook(id: $id) }`, { id: created.webhook.id })).deleteWebhook).toBe(true);
    const barrier = await startReceiver();
    try {
      await gql(a.url, admin, CREATE_HOOK, { url: barrier.url, events: ['CANCELLED'] });
      const later = (await gql(a.url, admin, CREATE_JOB, { name: 'after delete', hb: 0 })).createBatchJob.id;
      await gql(a.url, admin, COMPLETE, { id: later });
      const cancelled = (await gql(a.url, admin, CREATE_JOB, { name: 'barrier', hb: 0 })).createBatchJob.id;
      await gql(a.url, admin, `mutation($id: ID!) { cancelBatchJob(id: $id) { status } }`, { id: cancelled });
      await barrier.received.waitForCount(1);
      expect(receiver.received.items.map((r) => r.json.data.job.id)).not.toContain(later);
    } finally {
      await barrier.close();
    }
  });

  it('refuses bad input with the contract code and stores nothing', async () => {
    const [a] = servers;
    const strict = await start({ ...FAST, webhookAllowPrivate: false });
    // Closed at the end: it works this file's delivery queue too, and refuses the loopback receiver other tests use.
    try {
      const tenantAdmin = await token({ inst: freshInstitute() });
      const refused = async (url: string, events: string[], tok = tenantAdmin, on = strict) =>
        errorCode((await gqlHttp(on.url, tok, CREATE_HOOK, { url, events })).body);
      expect(await refused('ftp://example.com/hook', ['COMPLETED'])).toBe('BAD_USER_INPUT');
      expect(await refused('not a url', ['COMPLETED'])).toBe('BAD_USER_INPUT');
      expect(await refused('http://10.1.2.3/hook', ['COMPLETED'])).toBe('BAD_USER_INPUT');
      expect(await refused('http://127.0.0.1:9/hook', ['COMPLETED'])).toBe('BAD_USER_INPUT');
      expect(await refused('http://[::ffff:192.168.1.1]/hook', ['COMPLETED'])).toBe('BAD_USER_INPUT');
      expect(await refused('http://169.254.169.254/latest', ['COMPLETED'])).toBe('BAD_USER_INPUT');
      expect(await refused(receiver.url, [], tenantAdmin, a)).toBe('BAD_USER_INPUT');
      expect(await refused(receiver.url, ['COMPLETED', 'COMPLETED'], tenantAdmin, a)).toBe('BAD_USER_INPUT');
      const worker = await token({ inst: freshInstitute(), scope: 'jobs:read jobs:write jobs:control' });
      expect(await refused(receiver.url, ['COMPLETED'], worker, a!)).toBe('FORBIDDEN');
      expect(errorCode((await gqlHttp(a!.url, worker, `{ webhooks { id } }`)).body)).toBe('FORBIDDEN');
      expect((await gql(strict.url, tenantAdmin, `{ webhooks { id } }`)).webhooks).toEqual([]);
      const unknown = await gqlHttp(a!.url, tenantAdmin, DELIVERIES, { id: 'wh_nope' });
      expect(errorCode(unknown.body)).toBe('NOT_FOUND');
    } finally {
      await strict.close();
    }
  });
});

describe('OVER_BUDGET webhooks', () => {
  it('one delivery when usage passes the budget, none for staying under it', async () => {
    const server = await startTestServer({ backend: 'memory', config: FAST });
    const receiver = await startReceiver();
    try {
      const admin = await token({ inst: freshInstitute() });
      const { secret } = (await gql(server.url, admin, CREATE_HOOK, { url: receiver.url, events: ['OVER_BUDGET'] })).createWebhook;
      await gql(server.url, admin, `mutation { setBudget(total: 10, currency: "EUR") { budgetTotal } }`);
      const jobId = (await gql(server.url, admin, CREATE_JOB, { name: 'costly', hb: 0 })).createBatchJob.id;
      const use = (amount: number) => gql(server.url, admin, `mutation($id: ID!, $a: Float!) { recordUsage(jobId: $id, amount: $a) { budgetUsed } }`, { id: jobId, a: amount });
      await use(4);
      await use(7); // 11 of 10: over
      await use(1); // still over: no second crossing
      const [delivery] = await receiver.received.waitForCount(1);
      expect(verify(secret, delivery!)).toMatchObject({ type: 'budget.over_budget', data: { environmentId: 'default', budget: { budgetTotal: 10, budgetUsed: 11, currency: 'EUR' } } });
      // Barrier: a COMPLETED webhook of the same tenant arrives after anything queued before it.
      await gql(server.url, admin, CREATE_HOOK, { url: receiver.url, events: ['COMPLETED'] });
      await gql(server.url, admin, COMPLETE, { id: jobId });
      await receiver.received.waitForCount(2);
      expect(receiver.received.items.map((r) => r.json.type)).toEqual(['budget.over_budget', 'job.completed']);
    } finally {
      await receiver.close();
    }
  });
});
