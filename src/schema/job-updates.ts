/**
 * jobUpdates: a tenant's live job list (the dashboard's and `runwatch watch --all`'s source, instead of polling).
 */
import { JOB_UPDATE_TYPES, type JobUpdate } from '../domain/job-list.js';
import { BatchJobRef, JobKindEnum, JobStatusEnum } from './jobs.js';
import { builder } from './builder.js';

const JobUpdateTypeEnum = builder.enumType('JobUpdateType', {
  description: 'What a JobUpdate says.',
  values: {
    SNAPSHOT: { description: 'A matching job as it is now: the first events of a stream (its first page, newest first).' },
    CREATED: { description: 'A matching job was created.' },
    STATUS: { description: 'A job changed status (started, paused, resumed, finished); `previousStatus` is the one it left.' },
    PROGRESS: {
      description:
        "A job's numbers moved: its PROGRESS (conflated per job to RUNWATCH_PROGRESS_HZ, like runProgress), a stage change, failed items, or a child's change for a parent.",
    },
  } satisfies Record<(typeof JOB_UPDATE_TYPES)[number], unknown>,
});

const JobUpdateRef = builder.objectRef<JobUpdate>('JobUpdate').implement({
  description: "One change of a job in the tenant's live job list.",
  fields: (t) => ({
    cursor: t.exposeString('cursor', { description: 'Opaque position in the tenant job list; resume with `jobUpdates(after: cursor)`.' }),
    type: t.expose('type', { type: JobUpdateTypeEnum }),
    timestamp: t.expose('timestamp', { type: 'DateTime' }),
    job: t.expose('job', { type: BatchJobRef, description: 'The job right after the change.' }),
    previousStatus: t.expose('previousStatus', {
      type: JobStatusEnum,
      nullable: true,
      description: 'The status before this update (STATUS); null when not known (CREATED, or a job the list had not seen yet).',
    }),
  }),
});

export const JobFilterInput = builder.inputType('JobFilter', {
  description: 'Which jobs a job list shows; every field optional (all jobs of the tenant).',
  fields: (t) => ({
    status: t.field({ type: [JobStatusEnum], description: 'Jobs in one of these statuses (a job leaving them is still shown once, with `previousStatus`).' }),
    kind: t.field({ type: [JobKindEnum], description: 'Jobs of one of these kinds.' }),
    tags: t.stringList({ description: 'Jobs carrying every one of these tags.' }),
    parentId: t.id({ description: 'Children of this job only.' }),
  }),
});

builder.subscriptionField('jobUpdates', (t) =>
  t.field({
    type: JobUpdateRef,
    authScopes: { 'jobs:read': true },
    description: [
      "The tenant's live job list. First a SNAPSHOT per matching job (the newest 100), then one update per matching job created,",
      'per status change and per PROGRESS (conflated per job to RUNWATCH_PROGRESS_HZ), each with a growing `cursor`.',
      'With `after`, the updates after that cursor are replayed from history instead of the snapshot (no gap, no duplicate);',
      'when history no longer holds them (more than RUNWATCH_HISTORY updates ago) the snapshot comes instead.',
      'Never completes by itself. Needs `jobs:read`. Raises BAD_USER_INPUT (not a cursor).',
    ].join(' '),
    args: {
      filter: t.arg({ type: JobFilterInput }),
      after: t.arg.string({ description: 'A cursor from a previous JobUpdate of this tenant.' }),
    },
    subscribe: (_root, args, ctx) =>
      ctx.services.jobs.openUpdates(
        ctx.viewer,
        {
          status: args.filter?.status,
          kind: args.filter?.kind,
          tags: args.filter?.tags,
          parentId: args.filter?.parentId == null ? null : String(args.filter.parentId),
        },
        args.after ?? null,
        ctx.transport,
      ),
    resolve: (event) => event,
  }),
);
