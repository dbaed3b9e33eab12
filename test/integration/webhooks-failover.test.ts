/**
 * Webhooks on Redis when the instance sending a delivery dies (SIGKILL) with
 * the POST in flight: the delivery is not lost — another instance sends it,
 * with the same `webhook-id` and a valid signature, once the dead instance's
 * queue lock lapses (twice RUNWATCH_WEBHOOK_TIMEOUT_SECONDS, at least 5 s).
 */
import { describe, expect, it } from 'vitest';
import { gql } from '../helpers/clients.js';
import { spawnServer } from '../helpers/processes.js';
import { closeTestServers, freshInstitute, startTestServer, token } from '../helpers/servers.js';
import { startRedis } from '../helpers/redis.js';
import { COMPLETE, CREATE_HOOK, CREATE_JOB, FAST, startReceiver, verify } from '../helpers/webhooks.js';

describe('webhooks on Redis when the sending instance dies', () => {
  it('a delivery in flight on a SIGKILLed instance is sent by another, with the same webhook-id', { timeout: 120_000 }, async () => {
    // A redis-server of this test's own: every instance on one Redis works one delivery queue, so servers of other
    // test files on the shared one could take the delivery (and, with other settings, fail it).
    const redis = await startRedis();
    const receiver = await startReceiver();
    try {
      receiver.answers.push(0); // the first attempt never gets an answer: it is in flight when its instance dies
      const doomed = await spawnServer({
        REDIS_URL: redis.url,
        RUNWATCH_WEBHOOK_ALLOW_PRIVATE: 'true',
        RUNWATCH_WEBHOOK_TIMEOUT_SECONDS: '1',
        RUNWATCH_WEBHOOK_RETRY_BASE_SECONDS: '0.05',
      }, { listenTimeoutMs: 60_000 });
      const admin = await token({ inst: freshInstitute() });
      const { secret } = (await gql(doomed.url, admin, CREATE_HOOK, { url: receiver.url, events: ['COMPLETED'] })).createWebhook;
      const jobId = (await gql(doomed.url, admin, CREATE_JOB, { name: 'doomed', hb: 0 })).createBatchJob.id;
      await gql(doomed.url, admin, COMPLETE, { id: jobId });
      await receiver.received.waitForCount(1);
      doomed.kill('SIGKILL');
      await doomed.exited;
      // Started after the kill, so only it can send the delivery again.
      await startTestServer({ backend: 'redis', redisUrl: redis.url, config: { ...FAST, webhookTimeoutSeconds: 1 } });
      const [lost, recovered] = await receiver.received.waitForCount(2, 20_000);
      expect(recovered!.headers['webhook-id']).toBe(lost!.headers['webhook-id']);
      expect(verify(secret, recovered!)).toMatchObject({ type: 'job.completed', data: { job: { id: jobId } } });
    } finally {
      await receiver.close();
      await closeTestServers();
      await redis.stop();
    }
  });
});
