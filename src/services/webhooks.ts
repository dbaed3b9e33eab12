/**
 * Webhooks on behalf of a viewer (scope `admin`): register, list, delete, and
 * read delivery attempts; and the deliveries themselves — Standard Webhooks
 * POSTs signed with the `standardwebhooks` package, sent from the backend's
 * work queue (BullMQ on Redis, in-process on memory), so a receiver that is
 * slow or down never slows reporting.
 *
 * Delivery semantics:
 * - One delivery per (event, webhook): its `webhook-id` is derived from the
 *   event (job id and offset, or budget version), and the queue adds an id
 *   once — so an event handed over twice is still one delivery.
 * - Retried with exponential backoff and jitter (domain/retry.ts) until a 2xx
 *   answer or the attempts run out (defaults: 10 attempts, 10 s doubling to at
 *   most 1 h, so the last one comes at most about 85 minutes after the first);
 *   every retry carries the same `webhook-id` and a fresh timestamp and signature.
 * - Each attempt is recorded (time, status or error, duration): `webhookDeliveries`.
 * - Sent by one instance at a time; on Redis an instance that dies mid-delivery
 *   loses nothing (the queue hands the delivery to another instance once its
 *   lock lapses: after twice RUNWATCH_WEBHOOK_TIMEOUT_SECONDS, 5 to 30 s).
 * - Addresses: http/https only; every address the host resolves to must be
 *   public unless RUNWATCH_WEBHOOK_ALLOW_PRIVATE=true (dev mode allows
 *   loopback). Checked when the webhook is created and again before every
 *   attempt (a host may move); redirects are not followed.
 *
 * What triggers a delivery: the `webhooks` projector of the job change log
 * (a change whose events include COMPLETED, FAILED, CANCELLED or STALLED;
 * see {@link WebhookService.applyChange}) — so every such event is handed to
 * one instance at least once, even when the instance that committed it died,
 * and the derived `webhook-id` makes it one delivery — and
 * {@link WebhookService.onOverBudget} for budget crossings.
 */
import { lookup } from 'node:dns/promises';
import { Webhook } from 'standardwebhooks';
import type { Viewer } from '../auth/tokens.js';
import type { Backend } from '../backends/types.js';
import type { Infra } from '../delivery/job-writer.js';
import type { JobChangeRecord } from '../domain/changes.js';
import type { WorkQueue } from '../backends/work-queue.js';
import type { BudgetView } from '../domain/budget.js';
import { viewJob, type Tenant } from '../domain/job.js';
import type { RetryPolicy } from '../domain/retry.js';
import {
  addAttempt,
  addWebhook,
  checkAddresses,
  checkEvents,
  jobEventBody,
  messageIdOf,
  missingWebhook,
  newWebhookId,
  newWebhookSecret,
  overBudgetBody,
  parseWebhookUrl,
  removeWebhook,
  webhookEventOf,
  type DeliveryAttempt,
  type DeliveryTask,
  type TenantWebhooksState,
  type WebhookAttemptsState,
  type WebhookEvent,
  type WebhookRecord,
} from '../domain/webhooks.js';

/** A webhook as its tenant sees it (never the secret). */
export type WebhookView = Omit<WebhookRecord, 'secret'>;

/** Settings of {@link WebhookService}. */
export interface WebhookServiceOptions {
  /** RUNWATCH_WEBHOOK_ALLOW_PRIVATE: any address, private and loopback included. */
  allowPrivate: boolean;
  /** Loopback addresses are allowed (dev mode: no RUNWATCH_JWT_SECRET). */
  allowLoopback: boolean;
  /** Most ms one POST may take (RUNWATCH_WEBHOOK_TIMEOUT_SECONDS × 1000). */
  timeoutMs: number;
  retry: RetryPolicy;
  /** Deliveries sent at once per instance (default 16). */
  concurrency?: number;
  /** Resolves a host to its addresses (default: the system resolver, every address). */
  resolve?: (host: string) => Promise<string[]>;
  onError?: (message: string, error: unknown) => void;
}

const part = (s: string) => encodeURIComponent(s);
/** The topic log of a tenant's webhooks. */
export const webhooksTopic = (t: Tenant) => `webhooks:${part(t.institute)}:${part(t.environment)}`;
/** The topic log of a webhook's delivery attempts. */
export const webhookAttemptsTopic = (webhookId: string) => `webhook-attempts:${webhookId}`;
/** Seconds a webhook's attempt log is kept after its last attempt (Redis): 30 days. */
const ATTEMPTS_TTL_SECONDS = 30 * 24 * 3600;

const systemResolve = async (host: string) => (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

export class WebhookService {
  private readonly queue: WorkQueue<DeliveryTask>;
  private readonly resolve: (host: string) => Promise<string[]>;
  private readonly backend: Backend;
  private readonly clock: () => number;

  constructor(
    infra: Infra,
    private readonly opts: WebhookServiceOptions,
  ) {
    this.backend = infra.backend;
    this.clock = infra.clock;
    this.resolve = opts.resolve ?? systemResolve;
    infra.changes.project('webhooks', (change) => this.applyChange(change));
    this.queue = this.backend.queues.open<DeliveryTask>('webhooks', (task, info) => this.send(task, info.attempt), {
      retry: opts.retry,
      concurrency: opts.concurrency ?? 16,
      // BullMQ renews the lock every lockMs / 2 while a POST runs; it lapses only when the instance is gone (or its
      // event loop stalls for longer than that, which would send the delivery twice: hence at least 5 s).
      lockMs: Math.min(30_000, Math.max(5000, 2 * opts.timeoutMs)),
    });
  }

  private get allow() {
    return { private: this.opts.allowPrivate, loopback: this.opts.allowLoopback || this.opts.allowPrivate };
  }

  /** Resolves the URL's host and applies the address rule. @throws DomainError BAD_USER_INPUT. */
  private async checkUrl(raw: string): Promise<URL> {
    const { url, host } = parseWebhookUrl(raw);
    let addresses: string[];
    try {
      addresses = await this.resolve(host);
    } catch {
      addresses = [];
    }
    checkAddresses(host, addresses, this.allow);
    return url;
  }

  private async tenantWebhooks(tenant: Tenant): Promise<WebhookRecord[]> {
    return (await this.backend.logs.head<TenantWebhooksState>(webhooksTopic(tenant)))?.state?.webhooks ?? [];
  }

  /**
   * Registers a webhook for the viewer's tenant.
   * @returns the webhook and its signing secret (`whsec_…`), which is never shown again.
   * @throws DomainError BAD_USER_INPUT (not http/https, a refused address, a host that does not resolve, no events, 20 webhooks already); nothing is stored on error.
   */
  async create(viewer: Viewer, url: string, events: readonly WebhookEvent[]): Promise<{ webhook: WebhookView; secret: string }> {
    const unique = checkEvents(events);
    const checked = await this.checkUrl(url);
    const record: WebhookRecord = {
      id: newWebhookId(),
      url: checked.toString(),
      events: unique,
      secret: newWebhookSecret(),
      createdAt: this.clock(),
      createdBy: viewer.userId,
    };
    await this.backend.logs.append<TenantWebhooksState, never>(webhooksTopic(viewer.tenant), (head) => ({ state: addWebhook(head.state, record), events: [] }));
    const { secret, ...webhook } = record;
    return { webhook, secret };
  }

  /** The viewer's tenant's webhooks, oldest first, without secrets. */
  async list(viewer: Viewer): Promise<WebhookView[]> {
    return (await this.tenantWebhooks(viewer.tenant)).map(({ secret: _secret, ...w }) => w);
  }

  /** Deletes a webhook; deliveries still queued for it are dropped. @throws DomainError NOT_FOUND (no such webhook in the viewer's tenant). */
  async delete(viewer: Viewer, id: string): Promise<boolean> {
    await this.backend.logs.append<TenantWebhooksState, never>(webhooksTopic(viewer.tenant), (head) => ({ state: removeWebhook(head.state, id), events: [] }));
    return true;
  }

  /**
   * The newest delivery attempts of a webhook (at most `first`, newest first).
   * @throws DomainError NOT_FOUND (no such webhook in the viewer's tenant).
   */
  async attempts(viewer: Viewer, webhookId: string, first: number): Promise<DeliveryAttempt[]> {
    if (!(await this.tenantWebhooks(viewer.tenant)).some((w) => w.id === webhookId)) throw missingWebhook(webhookId);
    const head = await this.backend.logs.head<WebhookAttemptsState>(webhookAttemptsTopic(webhookId));
    return (head?.state?.attempts ?? []).slice(-first).reverse();
  }

  /**
   * The `webhooks` projector: queues a delivery of each COMPLETED, FAILED, CANCELLED or STALLED event of a
   * job change to each of the job's tenant's webhooks that asked for it. Idempotent by offset: the same
   * change applied again (a hand-over after a crash) adds deliveries whose ids exist already, which the queue
   * ignores — so each event is one delivery per webhook across the deployment.
   */
  async applyChange(change: JobChangeRecord): Promise<void> {
    const job = change.job;
    for (const type of change.types) {
      const kind = webhookEventOf(type);
      if (!kind) continue;
      const message = kind === 'STALLED' ? `no report for ${job.heartbeatSeconds} s` : kind === 'FAILED' ? job.errorMessage : job.message;
      const body = jobEventBody(kind, viewJob(job, job.updatedAt), message, job.updatedAt);
      await this.enqueue(job.tenant, kind, `${job.id}.${change.offset}.${kind}`, job.id, body);
    }
  }

  /** Queues an OVER_BUDGET delivery of a budget crossing (budget `version` makes it once per crossing). */
  async onOverBudget(tenant: Tenant, budget: BudgetView, version: number, atMs: number): Promise<void> {
    await this.enqueue(tenant, 'OVER_BUDGET', `budget.${tenant.institute}.${tenant.environment}.${version}`, null, overBudgetBody(tenant.environment, budget, atMs));
  }

  private async enqueue(tenant: Tenant, event: WebhookEvent, about: string, jobId: string | null, body: string): Promise<void> {
    const hooks = (await this.tenantWebhooks(tenant)).filter((w) => w.events.includes(event));
    await Promise.all(
      hooks.map((w) => {
        const messageId = messageIdOf(about, w.id);
        return this.queue.add(messageId, { webhookId: w.id, tenant, messageId, event, jobId, body });
      }),
    );
  }

  /** One attempt of one delivery (the queue's handler). A throw makes the queue retry it later. */
  private async send(task: DeliveryTask, attempt: number): Promise<void> {
    const webhook = (await this.tenantWebhooks(task.tenant)).find((w) => w.id === task.webhookId);
    if (!webhook) return; // deleted since: nothing to send
    const at = this.clock();
    const started = performance.now();
    let statusCode: number | null = null;
    let error: string | null = null;
    try {
      const url = await this.checkUrl(webhook.url);
      const timestamp = new Date(this.clock());
      const signature = new Webhook(webhook.secret).sign(task.messageId, timestamp, task.body);
      const res = await fetch(url, {
        method: 'POST',
        body: task.body,
        redirect: 'manual',
        signal: AbortSignal.timeout(this.opts.timeoutMs),
        headers: {
          'content-type': 'application/json',
          'user-agent': 'runwatch-webhooks/1',
          'webhook-id': task.messageId,
          'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
          'webhook-signature': signature,
        },
      });
      statusCode = res.status;
      await res.body?.cancel().catch(() => {});
    } catch (e) {
      error = e instanceof Error ? (e.name === 'TimeoutError' ? `no answer within ${this.opts.timeoutMs} ms` : e.message) : String(e);
    }
    const ok = statusCode !== null && statusCode >= 200 && statusCode < 300;
    const record: DeliveryAttempt = {
      messageId: task.messageId,
      event: task.event,
      jobId: task.jobId,
      attempt,
      at,
      statusCode,
      error,
      durationMs: Math.round(performance.now() - started),
      ok,
    };
    await this.backend.logs.append<WebhookAttemptsState, never>(webhookAttemptsTopic(task.webhookId), (head) => ({
      state: addAttempt(head.state, record),
      events: [],
      ttlSeconds: ATTEMPTS_TTL_SECONDS,
    }));
    if (!ok) throw new Error(`webhook ${task.webhookId}: delivery ${task.messageId} attempt ${attempt} failed: ${statusCode ?? error}`);
  }
}
