/**
 * Share links: `createJobViewToken` mints a short-lived, read-only token for
 * one job (see src/services/share.ts for the policy).
 */
import { VIEW_TOKEN_TTL, type JobViewToken } from '../services/share.js';
import { builder } from './builder.js';

const JobViewTokenRef = builder.objectRef<JobViewToken>('JobViewToken').implement({
  description: 'A read-only bearer token that sees exactly one job (scope `jobs:read`, claim `job`) until it expires.',
  fields: (t) => ({
    token: t.exposeString('token', { description: 'The bearer token: `Authorization: Bearer <token>` or graphql-ws `connectionParams.authorization`.' }),
    jobId: t.exposeID('jobId', { description: 'The one job it can read.' }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', description: 'When it stops working (HTTP 401 UNAUTHENTICATED, graphql-ws close 4403).' }),
    dashboardPath: t.exposeString('dashboardPath', {
      description: "Path on this server's dashboard that opens the job with this token, e.g. `/jobs/<id>#token=<token>`; prefix the server's origin to share it.",
    }),
  }),
});

builder.mutationField('createJobViewToken', (t) =>
  t.field({
    type: JobViewTokenRef,
    authScopes: { 'jobs:read': true },
    description: [
      'Creates a share link token: read-only (`jobs:read` only), for this one job, in your tenant, for `ttlSeconds`',
      `(default ${VIEW_TOKEN_TTL.defaultSeconds}, from ${VIEW_TOKEN_TTL.minSeconds} to ${VIEW_TOKEN_TTL.maxSeconds} seconds = 7 days).`,
      'With it, `batchJob` and `runProgress` work for that job only; any other job is NOT_FOUND and mutations are FORBIDDEN.',
      'Needs `jobs:read`. Raises NOT_FOUND (no such job in your tenant), BAD_USER_INPUT (ttlSeconds out of bounds),',
      'FORBIDDEN (the caller is itself a job-view token).',
    ].join(' '),
    args: {
      jobId: t.arg.id({ required: true, description: 'The job to share.' }),
      ttlSeconds: t.arg.int({ description: `Lifetime in seconds; default ${VIEW_TOKEN_TTL.defaultSeconds}.` }),
    },
    resolve: (_root, args, ctx) => ctx.services.share.createJobViewToken(ctx.viewer, String(args.jobId), args.ttlSeconds ?? undefined),
  }),
);
