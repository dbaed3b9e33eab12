/**
 * runProgress: a job's live event stream.
 */
import { PROGRESS_EVENT_TYPES, type JobEvent } from '../domain/job.js';
import { BatchJobRef } from './jobs.js';
import { builder } from './builder.js';

export const ProgressEventTypeEnum = builder.enumType('ProgressEventType', {
  description: 'Kinds of event on a job stream. PROGRESS is conflated (at most RUNWATCH_PROGRESS_HZ per second per job); the others never are.',
  values: {
    SNAPSHOT: { description: 'The current state: first event of a stream (not stored in history).' },
    STARTED: { description: 'The first progress report arrived: QUEUED → RUNNING.' },
    PROGRESS: { description: 'Counts, total, message or resources changed (conflated).' },
    STAGE: { description: 'A step started or changed (`step`); `message` is its name. A new `stage` from reportProgress is one, and so is every reportStep.' },
    ITEM_FAILED: { description: 'Items failed (failedDelta > 0); `message` is the report message.' },
    PAUSED: { description: 'The job was paused.' },
    RESUMED: { description: 'The job was resumed: back from PAUSED.' },
    STALLED: { description: 'A RUNNING job sent no report for `heartbeatSeconds`; `job.stalled` is true until its next report. `message` says how long. One per stall.' },
    RECOVERED: { description: 'A stalled job reported again; `job.stalled` is false.' },
    COMPLETED: { description: 'Finished successfully (terminal).' },
    FAILED: { description: 'Finished with an error (terminal); `message` is the error.' },
    CANCELLED: { description: 'Cancelled (terminal); `message` is the reason.' },
    CHILD: {
      description:
        'A child of this job (a job group) was added or changed status; `childId` names it, `message` is "<child name>: <STATUS>". The parent\'s aggregate travels in `job` (its own PROGRESS is conflated).',
    },
    ITEM_RESULTS: { description: 'A batch of item results (`items`), one per reportItems call; never conflated. Only with `runProgress(items: true)`.' },
    LOG: { description: 'Log lines of one appendLogs call that passed the rate limit (`logs`). Only with `runProgress(logs: true)`.' },
  } satisfies Record<(typeof PROGRESS_EVENT_TYPES)[number], unknown>,
});

export const ProgressEventRef = builder.objectRef<JobEvent>('ProgressEvent').implement({
  description: 'One event of a job stream, with the job state after it.',
  fields: (t) => ({
    cursor: t.exposeString('cursor', { description: 'Opaque stream position; resume with `runProgress(after: cursor)`. Grows with every event.' }),
    runId: t.exposeID('runId'),
    type: t.expose('type', { type: ProgressEventTypeEnum }),
    timestamp: t.expose('timestamp', { type: 'DateTime', description: 'When the event happened.' }),
    job: t.expose('job', { type: BatchJobRef, description: 'The job as it was right after this event.' }),
    message: t.exposeString('message', { nullable: true }),
    childId: t.id({ nullable: true, description: 'CHILD events: the child that changed; null otherwise.', resolve: (e) => e.childId ?? null }),
  }),
});

builder.subscriptionField('runProgress', (t) =>
  t.field({
    type: ProgressEventRef,
    authScopes: { 'jobs:read': true },
    description: [
      "A job's live stream. First a SNAPSHOT of the current state, then every event in order, each with a growing `cursor`;",
      'the last is terminal (COMPLETED, FAILED or CANCELLED) and the server then completes the subscription.',
      'A finished job yields its terminal SNAPSHOT and completes.',
      'With `after`, the events after that cursor are replayed from history (no gap, no duplicate) before live ones;',
      "when history no longer holds them (trimmed, or another epoch) a fresh SNAPSHOT comes first instead.",
      'ITEM_RESULTS and LOG events come only to subscribers that ask for them with `items` and `logs`, live and replayed alike.',
      'Needs `jobs:read`. Raises NOT_FOUND (no such job in your tenant), BAD_USER_INPUT (not a cursor).',
    ].join(' '),
    args: {
      runId: t.arg.id({ required: true, description: 'The job id.' }),
      after: t.arg.string({ description: 'A cursor from a previous event of this job.' }),
      items: t.arg.boolean({ defaultValue: false, description: 'Also ITEM_RESULTS events (each a batch of item results).' }),
      logs: t.arg.boolean({ defaultValue: false, description: 'Also LOG events (log lines).' }),
    },
    subscribe: (_root, args, ctx) =>
      ctx.services.jobs.openStream(ctx.viewer, String(args.runId), args.after ?? null, ctx.transport, { items: args.items ?? false, logs: args.logs ?? false }),
    resolve: (event) => event,
  }),
);
