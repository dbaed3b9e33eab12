/**
 * Webhooks: what a tenant registers (a URL and the events it wants), what a
 * delivery carries, and which addresses a delivery may go to. Pure (the
 * randomness of ids and secrets aside, as in ids.ts).
 *
 * Format: Standard Webhooks (https://www.standardwebhooks.com): a JSON body
 * `{ type, timestamp, data }`, headers `webhook-id` (the same on every retry),
 * `webhook-timestamp` (unix seconds) and `webhook-signature`
 * (`v1,<base64 HMAC-SHA256 of id.timestamp.body>`), secrets `whsec_<base64>`.
 * Signing itself is the `standardwebhooks` package's (services/webhooks.ts).
 */
import { randomBytes } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import type { BudgetView } from './budget.js';
import { badInput, DomainError } from './errors.js';
import type { JobEvent, JobView, Tenant } from './job.js';

export const WEBHOOK_EVENTS = ['COMPLETED', 'FAILED', 'CANCELLED', 'STALLED', 'OVER_BUDGET'] as const;
/** What a webhook can be told about: a job finishing (three ways) or stalling, or the tenant going over budget. */
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

/** A registered webhook. Times are epoch ms. */
export interface WebhookRecord {
  id: string;
  url: string;
  events: WebhookEvent[];
  /** `whsec_<base64 of 24 random bytes>`; shown to its creator once, kept to sign deliveries. */
  secret: string;
  createdAt: number;
  createdBy: string;
}

/** The webhooks of one tenant. */
export interface TenantWebhooksState {
  webhooks: WebhookRecord[];
}

/** Most webhooks per tenant; longest URL, characters. */
export const WEBHOOK_LIMITS = { perTenant: 20, urlLength: 2000 } as const;

/** One delivery attempt, as recorded (times epoch ms). */
export interface DeliveryAttempt {
  /** The delivery's `webhook-id`: the same for every attempt of one delivery. */
  messageId: string;
  event: WebhookEvent;
  /** The job it is about; null for OVER_BUDGET. */
  jobId: string | null;
  /** 1 for the first attempt. */
  attempt: number;
  at: number;
  /** HTTP status of the receiver's answer; null when there was none (timeout, refused, bad address). */
  statusCode: number | null;
  /** Why it failed without a status (or the address check that refused it); null otherwise. */
  error: string | null;
  durationMs: number;
  /** A 2xx answer. */
  ok: boolean;
}

/** The attempts of one webhook, oldest first (the newest {@link MAX_KEPT_ATTEMPTS}). */
export interface WebhookAttemptsState {
  attempts: DeliveryAttempt[];
}

/** Attempts kept per webhook. */
export const MAX_KEPT_ATTEMPTS = 200;

/** What a queued delivery carries (the secret is read when sending, so a deleted webhook sends nothing). */
export interface DeliveryTask {
  webhookId: string;
  tenant: Tenant;
  messageId: string;
  event: WebhookEvent;
  jobId: string | null;
  /** The JSON body, exactly as signed and sent. */
  body: string;
}

/** A new webhook id such as `wh_3f9a…`. */
export const newWebhookId = () => `wh_${randomBytes(9).toString('base64url')}`;
/** A new signing secret: `whsec_` and the base64 of 24 random bytes (Standard Webhooks). */
export const newWebhookSecret = () => `whsec_${randomBytes(24).toString('base64')}`;

/**
 * Checks a webhook URL's form: http or https, a host, no credentials, at most 2000 characters.
 * @returns the URL and its host (brackets of an IPv6 literal removed).
 * @throws DomainError BAD_USER_INPUT (field `url`).
 */
export function parseWebhookUrl(raw: string): { url: URL; host: string } {
  if (raw.length > WEBHOOK_LIMITS.urlLength) throw badInput('url', `url is longer than ${WEBHOOK_LIMITS.urlLength} characters`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw badInput('url', 'url is not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw badInput('url', `url must be http or https, not ${url.protocol.slice(0, -1)}`);
  if (url.username || url.password) throw badInput('url', 'url must not carry credentials');
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) throw badInput('url', 'url has no host');
  return { url, host };
}

/** Addresses a webhook may not reach unless private addresses are allowed: RFC 1918, CGNAT, link-local, ULA, multicast, reserved, unspecified. */
const PRIVATE = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  PRIVATE.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const)
  PRIVATE.addSubnet(net, prefix, 'ipv6');
const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) as its IPv4 address; others unchanged. */
const unmapped = (ip: string) => (/^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1] ?? ip);

/** What kind of address `ip` is, for the webhook address rule. */
export function addressClass(ip: string): 'loopback' | 'private' | 'public' {
  const a = unmapped(ip);
  const family = isIP(a) === 6 ? 'ipv6' : 'ipv4';
  if (LOOPBACK.check(a, family)) return 'loopback';
  if (PRIVATE.check(a, family)) return 'private';
  return 'public';
}

/**
 * The address rule: every address the host resolves to must be public, unless private addresses are allowed
 * (RUNWATCH_WEBHOOK_ALLOW_PRIVATE) — or, for loopback only, in dev mode.
 * @throws DomainError BAD_USER_INPUT naming the first refused address.
 */
export function checkAddresses(host: string, addresses: readonly string[], allow: { private: boolean; loopback: boolean }): void {
  if (addresses.length === 0) throw badInput('url', `url host ${host} does not resolve`);
  if (allow.private) return;
  for (const ip of addresses) {
    const kind = addressClass(ip);
    if (kind === 'public' || (kind === 'loopback' && allow.loopback)) continue;
    throw badInput('url', `url host ${host} resolves to a ${kind} address (${ip}); set RUNWATCH_WEBHOOK_ALLOW_PRIVATE=true to allow it`);
  }
}

/**
 * Checks the events of a new webhook: at least one, no repeats.
 * @throws DomainError BAD_USER_INPUT (field `events`).
 */
export function checkEvents(events: readonly WebhookEvent[]): WebhookEvent[] {
  if (events.length === 0) throw badInput('events', 'give at least one event');
  const unique = [...new Set(events)];
  if (unique.length !== events.length) throw badInput('events', 'events repeat');
  return unique;
}

/** Adds a webhook to the tenant's. @throws DomainError BAD_USER_INPUT when the tenant has {@link WEBHOOK_LIMITS.perTenant} already. */
export function addWebhook(state: TenantWebhooksState | null, record: WebhookRecord): TenantWebhooksState {
  const webhooks = state?.webhooks ?? [];
  if (webhooks.length >= WEBHOOK_LIMITS.perTenant) throw badInput('url', `a tenant has at most ${WEBHOOK_LIMITS.perTenant} webhooks; delete one first`);
  return { webhooks: [...webhooks, record] };
}

/** Removes a webhook. @throws DomainError NOT_FOUND when the tenant has no webhook with that id. */
export function removeWebhook(state: TenantWebhooksState | null, id: string): TenantWebhooksState {
  const webhooks = state?.webhooks ?? [];
  if (!webhooks.some((w) => w.id === id)) throw missingWebhook(id);
  return { webhooks: webhooks.filter((w) => w.id !== id) };
}

/** The error for a webhook id unknown in the caller's tenant. */
export const missingWebhook = (id: string) => new DomainError('NOT_FOUND', `no webhook with id ${JSON.stringify(id)}`);

/** Adds an attempt, keeping the newest {@link MAX_KEPT_ATTEMPTS}. */
export const addAttempt = (state: WebhookAttemptsState | null, attempt: DeliveryAttempt): WebhookAttemptsState => ({
  attempts: [...(state?.attempts ?? []), attempt].slice(-MAX_KEPT_ATTEMPTS),
});

/** The webhook event a job event is, if any: the terminal events and STALLED. */
export function webhookEventOf(type: JobEvent['type']): WebhookEvent | null {
  return type === 'COMPLETED' || type === 'FAILED' || type === 'CANCELLED' || type === 'STALLED' ? type : null;
}

/**
 * A delivery's `webhook-id`, derived from what it is about so that enqueuing it twice (a projector
 * applying an event again) is one delivery: per job event (job id and offset) or budget crossing
 * (budget version), per webhook.
 */
export const messageIdOf = (about: string, webhookId: string) => `msg_${about}_${webhookId}`.replace(/[^A-Za-z0-9_.-]/g, '-');

/** The body of a job event delivery: `{ type: "job.completed", timestamp, data: { job, message } }`. */
export function jobEventBody(event: WebhookEvent, job: JobView, message: string | null, timestampMs: number): string {
  return JSON.stringify({
    type: `job.${event.toLowerCase()}`,
    timestamp: new Date(timestampMs).toISOString(),
    data: { job: { ...job, createdAt: iso(job.createdAt), startedAt: iso(job.startedAt), finishedAt: iso(job.finishedAt), updatedAt: iso(job.updatedAt) }, message },
  });
}

/** The body of an OVER_BUDGET delivery: `{ type: "budget.over_budget", timestamp, data: { environmentId, budget } }`. */
export function overBudgetBody(environmentId: string, budget: BudgetView, timestampMs: number): string {
  return JSON.stringify({ type: 'budget.over_budget', timestamp: new Date(timestampMs).toISOString(), data: { environmentId, budget } });
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
