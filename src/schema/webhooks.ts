/**
 * Webhooks (Standard Webhooks format): register a URL for a tenant's job
 * events, list and delete them, and read each delivery attempt. Needs `admin`.
 */
import { WEBHOOK_EVENTS, type DeliveryAttempt } from '../domain/webhooks.js';
import { badInput } from '../domain/errors.js';
import type { WebhookView } from '../services/webhooks.js';
import { builder } from './builder.js';

export const WebhookEventEnum = builder.enumType('WebhookEvent', {
  description: 'What a webhook is told about. The body\'s `type` is `job.completed`, `job.failed`, `job.cancelled`, `job.stalled` or `budget.over_budget`.',
  values: {
    COMPLETED: { description: 'A job of the tenant completed.' },
    FAILED: { description: 'A job failed.' },
    CANCELLED: { description: 'A job was cancelled.' },
    STALLED: { description: 'A RUNNING job sent no report for its `heartbeatSeconds`.' },
    OVER_BUDGET: { description: "The tenant's usage passed its budget (once per crossing)." },
  } satisfies Record<(typeof WEBHOOK_EVENTS)[number], unknown>,
});

export const WebhookRef = builder.objectRef<WebhookView>('Webhook').implement({
  description: 'A URL that receives signed POSTs (Standard Webhooks) for some of its tenant\'s events.',
  fields: (t) => ({
    id: t.exposeID('id'),
    url: t.exposeString('url'),
    events: t.field({ type: [WebhookEventEnum], resolve: (w) => w.events }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    createdBy: t.exposeString('createdBy', { description: 'User id of its creator.' }),
  }),
});

const CreatedWebhookRef = builder.objectRef<{ webhook: WebhookView; secret: string }>('CreatedWebhook').implement({
  description: 'A new webhook and its signing secret.',
  fields: (t) => ({
    webhook: t.field({ type: WebhookRef, resolve: (c) => c.webhook }),
    secret: t.exposeString('secret', {
      description:
        'The signing secret, `whsec_<base64>`: verify deliveries with it (e.g. `new Webhook(secret).verify(body, headers)` of the `standardwebhooks` package). Shown only here, once.',
    }),
  }),
});

const WebhookDeliveryRef = builder.objectRef<DeliveryAttempt>('WebhookDelivery').implement({
  description: 'One delivery attempt: every retry of a delivery is one more, with the same `messageId`.',
  fields: (t) => ({
    messageId: t.exposeString('messageId', { description: 'The `webhook-id` header: the same on every attempt of one delivery.' }),
    event: t.expose('event', { type: WebhookEventEnum }),
    jobId: t.exposeID('jobId', { nullable: true, description: 'The job it is about; null for OVER_BUDGET.' }),
    attempt: t.exposeInt('attempt', { description: '1 for the first attempt.' }),
    timestamp: t.field({ type: 'DateTime', description: 'When the attempt started.', resolve: (a) => a.at }),
    statusCode: t.exposeInt('statusCode', { nullable: true, description: "HTTP status of the receiver's answer; null when there was none." }),
    error: t.exposeString('error', { nullable: true, description: 'Why there was no answer (timeout, refused connection, refused address).' }),
    durationMs: t.exposeInt('durationMs', { description: 'How long the attempt took, milliseconds.' }),
    ok: t.exposeBoolean('ok', { description: 'The receiver answered 2xx: no retry follows.' }),
  }),
});

/** Most attempts one webhookDeliveries call returns. */
const MAX_DELIVERIES = 200;

builder.queryFields((t) => ({
  webhooks: t.field({
    type: [WebhookRef],
    authScopes: { admin: true },
    description: "Your tenant's webhooks, oldest first (without secrets). Needs `admin`.",
    resolve: (_root, _args, ctx) => ctx.services.webhooks.list(ctx.viewer),
  }),
  webhookDeliveries: t.field({
    type: [WebhookDeliveryRef],
    authScopes: { admin: true },
    description: `A webhook's newest delivery attempts, newest first (\`first\` default 50, at most ${MAX_DELIVERIES}). Needs \`admin\`. Raises NOT_FOUND (no such webhook in your tenant), BAD_USER_INPUT (first).`,
    args: { webhookId: t.arg.id({ required: true }), first: t.arg.int({ description: `1..${MAX_DELIVERIES}; default 50.` }) },
    resolve: (_root, args, ctx) => {
      const first = args.first ?? 50;
      if (first < 1 || first > MAX_DELIVERIES) throw badInput('first', `first must be from 1 to ${MAX_DELIVERIES}`);
      return ctx.services.webhooks.attempts(ctx.viewer, String(args.webhookId), first);
    },
  }),
}));

builder.mutationFields((t) => ({
  createWebhook: t.field({
    type: CreatedWebhookRef,
    authScopes: { admin: true },
    description: [
      "Registers a webhook for your tenant's `events`: each is POSTed as JSON with the Standard Webhooks headers",
      '(`webhook-id`, the same on every retry; `webhook-timestamp`; `webhook-signature: v1,<base64 HMAC-SHA256 of id.timestamp.body>`),',
      'retried with exponential backoff and jitter until a 2xx answer (10 attempts over at most about 85 minutes by default). Returns the secret once.',
      '`url` must be http or https and resolve only to public addresses (RUNWATCH_WEBHOOK_ALLOW_PRIVATE=true allows private ones; dev mode allows loopback).',
      'Needs `admin`. Raises BAD_USER_INPUT (url, events, more than 20 webhooks); nothing is stored on error.',
    ].join(' '),
    args: {
      url: t.arg.string({ required: true }),
      events: t.arg({ type: [WebhookEventEnum], required: true, description: 'At least one, no repeats.' }),
    },
    resolve: (_root, args, ctx) => ctx.services.webhooks.create(ctx.viewer, args.url, args.events),
  }),
  deleteWebhook: t.field({
    type: 'Boolean',
    authScopes: { admin: true },
    description: 'Deletes a webhook; deliveries still pending for it are dropped. Returns true. Needs `admin`. Raises NOT_FOUND (no such webhook in your tenant).',
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.webhooks.delete(ctx.viewer, String(args.id)),
  }),
}));
