/**
 * The `webhooks` projector (WebhookService.applyChange): a job change with a
 * COMPLETED, FAILED, CANCELLED or STALLED event queues one delivery per
 * webhook that asked for it, under an id derived from the change — so the same
 * change applied twice (a projector hand-over) queues the same ids, which the
 * work queue adds once; other events and other tenants queue nothing.
 */
import { describe, expect, it } from 'vitest';
import type { Viewer } from '../../src/auth/tokens.js';
import { createMemoryBackend } from '../../src/backends/memory.js';
import type { WorkQueues } from '../../src/backends/work-queue.js';
import { createInfra } from '../../src/delivery/job-writer.js';
import { updateChange } from '../../src/domain/changes.js';
import { applyProgress, createJob, finishJob, stallCheck } from '../../src/domain/job.js';
import type { DeliveryTask } from '../../src/domain/webhooks.js';
import { WebhookService } from '../../src/services/webhooks.js';

const tenant = { institute: 'i1', environment: 'default' };
const viewer: Viewer = { userId: 'u', tenant, scopes: new Set(['admin']), expiresAt: null, jobId: null };

function world() {
  const backend = createMemoryBackend({ historySize: 100 });
  const added: { id: string; task: DeliveryTask }[] = [];
  const queues: WorkQueues = {
    open: <T>() => ({
      add: async (id: string, data: T) => {
        added.push({ id, task: data as DeliveryTask });
      },
    }),
    close: async () => {},
  };
  const infra = createInfra({ ...backend, queues }, Date.now, { progressHz: 10 });
  const webhooks = new WebhookService(infra, {
    allowPrivate: false,
    allowLoopback: false,
    timeoutMs: 1000,
    retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 100 },
    resolve: async () => ['93.184.216.34'],
  });
  return { webhooks, added };
}

const ids = { id: 'j_1', epoch: 'e', tenant, ownerId: 'u' };

describe('webhooks projector', () => {
  it('queues one delivery per matching webhook; the same change twice queues the same ids', async () => {
    const { webhooks, added } = world();
    const completedOnly = (await webhooks.create(viewer, 'https://example.com/a', ['COMPLETED'])).webhook;
    const both = (await webhooks.create(viewer, 'https://example.com/b', ['COMPLETED', 'STALLED'])).webhook;
    const running = applyProgress(createJob({ name: 'x', kind: 'BATCH', heartbeatSeconds: 1 }, ids, 0), { completedDelta: 1 }, 0, 100).job;

    await webhooks.applyChange(updateChange(running, ['STARTED'])!); // not a webhook event
    expect(added).toEqual([]);

    const stalled = stallCheck(running, 5000).change!.job;
    const stall = updateChange(stalled, ['STALLED'])!;
    await webhooks.applyChange(stall);
    await webhooks.applyChange(stall); // applied again after a hand-over
    expect(added.map((a) => a.task.webhookId)).toEqual([both.id, both.id]);
    expect(added[0]!.id).toBe(added[1]!.id);
    expect(JSON.parse(added[0]!.task.body)).toMatchObject({ type: 'job.stalled', data: { job: { id: 'j_1', stalled: true }, message: 'no report for 1 s' } });

    added.length = 0;
    const done = updateChange(finishJob(stalled, 'COMPLETED', 'ok', 6000).job, ['COMPLETED'])!;
    await webhooks.applyChange(done);
    await webhooks.applyChange(done);
    expect(new Set(added.map((a) => a.id)).size).toBe(2);
    expect(new Set(added.map((a) => a.task.webhookId))).toEqual(new Set([completedOnly.id, both.id]));
  });

  it("queues nothing for another tenant's job", async () => {
    const { webhooks, added } = world();
    await webhooks.create(viewer, 'https://example.com/a', ['COMPLETED']);
    const other = createJob({ name: 'x', kind: 'BATCH' }, { ...ids, tenant: { institute: 'i2', environment: 'default' } }, 0);
    await webhooks.applyChange(updateChange(finishJob(other, 'COMPLETED', null, 1).job, ['COMPLETED'])!);
    expect(added).toEqual([]);
  });
});
