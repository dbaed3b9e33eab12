/**
 * Job commands: CANCEL, PAUSE, RESUME or a named CUSTOM command sent to any
 * job's worker, its acknowledgement, and the worker's `jobCommands` stream.
 * Training commands (schema/training.ts) are the same commands under their
 * training names.
 */
import { COMMAND_STATES, COMMAND_TTL, JOB_COMMAND_KINDS, MAX_COMMAND_NAME } from '../domain/commands.js';
import type { CommandView } from '../services/commands.js';
import { builder } from './builder.js';

/** The values (with descriptions) of both command state enums, JobCommandState and TrainingCommandState. */
export const COMMAND_STATE_VALUES = {
  PENDING: { description: 'Sent; delivered to every worker subscription of the job until answered or expired.' },
  ACKNOWLEDGED: { description: 'The worker accepted it.' },
  REJECTED: { description: 'The worker refused it; `message` says why.' },
  EXPIRED: { description: 'No answer before `expiresAt`; no longer delivered, and too late to answer.' },
} as const satisfies Record<(typeof COMMAND_STATES)[number], unknown>;

export const JobCommandKindEnum = builder.enumType('JobCommandKind', {
  description: "What a command asks a job's worker to do.",
  values: {
    CANCEL: { description: 'Stop the work; the worker acknowledges once it has stopped, which cancels the job.' },
    PAUSE: { description: 'Pause; an acknowledgement pauses a RUNNING job.' },
    RESUME: { description: 'Resume; an acknowledgement resumes a PAUSED job.' },
    CUSTOM: { description: 'Anything else the worker understands; `name` says what (e.g. SAVE_CHECKPOINT).' },
  } satisfies Record<(typeof JOB_COMMAND_KINDS)[number], unknown>,
});

export const JobCommandStateEnum = builder.enumType('JobCommandState', {
  description: 'Where a command is: PENDING until the worker answers (ACKNOWLEDGED or REJECTED) or its time to live passes (EXPIRED).',
  values: COMMAND_STATE_VALUES,
});

export const JobCommandRef = builder.objectRef<CommandView>('JobCommand').implement({
  description: "A command to a job's worker, and its state.",
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Opaque; pass to acknowledgeJobCommand.' }),
    jobId: t.field({ type: 'ID', description: 'The job it was sent to.', resolve: (c) => c.runId }),
    command: t.expose('command', { type: JobCommandKindEnum }),
    name: t.exposeString('name', { nullable: true, description: 'The CUSTOM command\'s name; null for the other kinds.' }),
    args: t.expose('args', { type: 'JSON', nullable: true, description: 'Free-form arguments from the sender.' }),
    state: t.expose('state', { type: JobCommandStateEnum, description: 'The state when this was read.' }),
    senderId: t.exposeString('senderId', { description: 'User id of the sender.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', description: 'When a PENDING command becomes EXPIRED.' }),
    message: t.exposeString('message', { nullable: true, description: "The worker's answer." }),
    respondedAt: t.expose('respondedAt', { type: 'DateTime', nullable: true, description: 'When the worker answered.' }),
  }),
});

builder.queryFields((t) => ({
  jobCommands: t.field({
    type: [JobCommandRef],
    authScopes: { 'jobs:read': true },
    description: "A job's newest commands (up to 200), newest first, with their current states. Needs `jobs:read`. Raises NOT_FOUND (no such job in your tenant).",
    args: { jobId: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.commands.list(ctx.viewer, String(args.jobId)),
  }),
}));

builder.mutationFields((t) => ({
  sendJobCommand: t.field({
    type: JobCommandRef,
    authScopes: { 'jobs:control': true },
    description: [
      "Sends a command to a job's worker (any kind of job). It is PENDING and delivered on `jobCommands` (now, or when a worker subscribes)",
      `until the worker answers with acknowledgeJobCommand or \`ttlSeconds\` pass (default ${COMMAND_TTL.defaultSeconds}, ${COMMAND_TTL.minSeconds}..${COMMAND_TTL.maxSeconds}); then it is EXPIRED.`,
      'Needs `jobs:control`. Raises NOT_FOUND (no such job in your tenant), CONFLICT (job finished),',
      `BAD_USER_INPUT (CUSTOM without \`name\`, \`name\` on another kind or over ${MAX_COMMAND_NAME} characters, ttlSeconds out of range, args over 16 KiB); nothing is sent on error.`,
    ].join(' '),
    args: {
      jobId: t.arg.id({ required: true }),
      command: t.arg({ type: JobCommandKindEnum, required: true }),
      name: t.arg.string({ description: `The CUSTOM command's name (required for CUSTOM, 1..${MAX_COMMAND_NAME} characters).` }),
      args: t.arg({ type: 'JSON', description: 'Free-form arguments for the worker, at most 16 KiB of JSON.' }),
      ttlSeconds: t.arg.int({ description: `Seconds until a PENDING command expires; default ${COMMAND_TTL.defaultSeconds}.` }),
    },
    resolve: (_root, args, ctx) =>
      ctx.services.commands.send(
        ctx.viewer,
        String(args.jobId),
        { command: args.command, name: args.name ?? null },
        args.args ?? null,
        args.ttlSeconds ?? null,
      ),
  }),
  acknowledgeJobCommand: t.field({
    type: JobCommandRef,
    authScopes: { 'jobs:write': true },
    description: [
      'The worker answers a command: accepted → ACKNOWLEDGED, else REJECTED (with `message` saying why).',
      'An accepted CANCEL cancels the job (acknowledge once you have stopped), an accepted PAUSE pauses it and an accepted RESUME resumes it.',
      'Needs `jobs:write`. Raises NOT_FOUND (no such command in your tenant), CONFLICT (already answered, or EXPIRED), BAD_USER_INPUT (message over 2000 characters).',
    ].join(' '),
    args: { id: t.arg.id({ required: true }), accepted: t.arg.boolean({ required: true }), message: t.arg.string() },
    resolve: (_root, args, ctx) => ctx.services.commands.acknowledge(ctx.viewer, String(args.id), args.accepted, args.message ?? null),
  }),
}));

builder.subscriptionFields((t) => ({
  jobCommands: t.field({
    type: JobCommandRef,
    authScopes: { 'jobs:write': true },
    description:
      "For the job's worker: every PENDING, unexpired command in send order (those sent while no worker listened first), then new ones live. A command comes again on a new subscription until answered with acknowledgeJobCommand. Open until you leave. Needs `jobs:write`. Raises NOT_FOUND (no such job in your tenant).",
    args: { jobId: t.arg.id({ required: true }) },
    subscribe: (_root, args, ctx) => ctx.services.commands.openStream(ctx.viewer, String(args.jobId), ctx.transport),
    resolve: (c) => c,
  }),
}));
