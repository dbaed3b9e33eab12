/**
 * Jobs: the BatchJob type, its queries and the worker/people mutations.
 */
import { badInput } from '../domain/errors.js';
import { JOB_KINDS, JOB_STATUSES, MAX_DEPTH, TAG_LIMITS, type ChildCounts, type JobStatus, type JobView, type Resources } from '../domain/job.js';
import type { JobPage } from '../services/jobs.js';
import type { Context } from './context.js';
import type { ListPosition } from '../backends/types.js';
import { builder } from './builder.js';
import { MetricInput } from './metrics.js';

export const JobKindEnum = builder.enumType('JobKind', {
  description: 'What sort of work a job is.',
  values: {
    BATCH: { description: 'A batch of items: embeddings, inference, transformations.' },
    EVALUATION: { description: 'An evaluation run over a data set; failed items count as `failed`.' },
    TRAINING: { description: 'A training run; its progress is steps (completed = globalStep, total = maxStep).' },
    PIPELINE: { description: 'A multi-stage pipeline; `stage` names the current stage.' },
  } satisfies Record<(typeof JOB_KINDS)[number], unknown>,
});

export const JobStatusEnum = builder.enumType('JobStatus', {
  description: 'Where a job is in its life: QUEUED → RUNNING ⇄ PAUSED → COMPLETED | FAILED | CANCELLED (final).',
  values: {
    QUEUED: { description: 'Created, no progress reported yet.' },
    RUNNING: { description: 'Progress has been reported.' },
    PAUSED: { description: 'Paused by its worker; the next report resumes it.' },
    COMPLETED: { description: 'Finished successfully (final).' },
    FAILED: { description: 'Finished with an error; see `errorMessage` (final).' },
    CANCELLED: { description: 'Cancelled by a person or program with `jobs:control` (final).' },
  } satisfies Record<(typeof JOB_STATUSES)[number], unknown>,
});

export const ResourcesRef = builder.objectRef<Resources>('Resources').implement({
  description: 'What a job holds now.',
  fields: (t) => ({
    containers: t.exposeInt('containers', { description: 'Containers (or processes) running for the job.' }),
    cpuCores: t.exposeFloat('cpuCores', { description: 'CPU cores, may be fractional.' }),
    memoryGb: t.exposeFloat('memoryGb', { description: 'Memory in GB.' }),
    gpus: t.exposeInt('gpus', { description: 'GPUs.' }),
  }),
});

export const ResourcesInput = builder.inputType('ResourcesInput', {
  description: 'What a job holds now; every number is non-negative.',
  fields: (t) => ({
    containers: t.int({ required: true, description: 'Containers (or processes).' }),
    cpuCores: t.float({ required: true, description: 'CPU cores.' }),
    memoryGb: t.float({ required: true, description: 'Memory in GB.' }),
    gpus: t.int({ required: true, description: 'GPUs.' }),
  }),
});

export const BatchJobRef = builder.objectRef<JobView>('BatchJob').implement({
  description: 'One long-running unit of work. Its `id` is the `runId` of its streams.',
  fields: (t) => ({
    id: t.exposeID('id'),
    kind: t.expose('kind', { type: JobKindEnum }),
    name: t.exposeString('name'),
    status: t.expose('status', { type: JobStatusEnum }),
    total: t.exposeInt('total', { nullable: true, description: 'Items in the job; null while unknown.' }),
    completed: t.exposeInt('completed', { description: 'Items done; never goes down.' }),
    failed: t.exposeInt('failed', { description: 'Items that failed.' }),
    percent: t.exposeFloat('percent', { nullable: true, description: '0..100: (completed + failed) / total; null while total is unknown.' }),
    rate: t.exposeFloat('rate', {
      nullable: true,
      description:
        'Items (completed + failed) per second over a 30-second sliding window ending now, so a stall shows as a falling rate; null while unknown. For a finished job: the average over its run.',
    }),
    etaSeconds: t.exposeFloat('etaSeconds', { nullable: true, description: 'Seconds until done at `rate`; null when unknown (no total, no rate, or stalled).' }),
    stage: t.exposeString('stage', { nullable: true, description: 'Current stage, for pipelines.' }),
    message: t.exposeString('message', { nullable: true, description: 'Latest status message from the worker.' }),
    errorMessage: t.exposeString('errorMessage', { nullable: true, description: 'Why it failed (FAILED only).' }),
    metadata: t.expose('metadata', { type: 'JSON', nullable: true, description: 'Free-form JSON given at creation.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true, description: 'When the first progress arrived.' }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
    resources: t.expose('resources', { type: ResourcesRef, nullable: true, description: 'What the job holds now, as last reported.' }),
    heartbeatSeconds: t.exposeInt('heartbeatSeconds', {
      description: 'Seconds without a report after which a RUNNING job is stalled (STALLED event, `stalled: true`); 0: stall detection is off.',
    }),
    stalled: t.exposeBoolean('stalled', {
      description: 'RUNNING, but no report for `heartbeatSeconds`: the worker may be stuck or gone. The next report clears it (RECOVERED event).',
    }),
    lastCursor: t.exposeString('lastCursor', {
      nullable: true,
      description: 'Cursor of the newest event; pass it as `runProgress(after:)` to get only what comes next. Null before the first event.',
    }),
    parentId: t.exposeID('parentId', { nullable: true, description: 'The parent of this job in a job group; null for a top-level job.' }),
    tags: t.exposeStringList('tags', { description: `Tags given at creation (at most ${TAG_LIMITS.maxTags}, each 1..${TAG_LIMITS.maxLength} characters).` }),
    childCounts: t.field({
      type: ChildCountsRef,
      nullable: true,
      description:
        "This job's children per status; null for a job without children. A parent's total, completed, failed, percent, rate, etaSeconds and resources are its own plus its children's.",
      resolve: (job) => job.childCounts,
    }),
  }),
});

const ChildCountsRef = builder.objectRef<ChildCounts>('ChildCounts').implement({
  description: "How many of a parent's children are in each status.",
  fields: (t) => ({
    queued: t.exposeInt('queued'),
    running: t.exposeInt('running'),
    paused: t.exposeInt('paused'),
    completed: t.exposeInt('completed'),
    failed: t.exposeInt('failed'),
    cancelled: t.exposeInt('cancelled'),
  }),
});

const BatchJobEdge = builder.objectRef<{ cursor: string; node: JobView }>('BatchJobEdge').implement({
  description: 'A job in a list, with its list cursor.',
  fields: (t) => ({
    cursor: t.exposeString('cursor', { description: 'Pass as `after` to get the jobs after this one.' }),
    node: t.field({ type: BatchJobRef, resolve: (edge) => edge.node }),
  }),
});

interface PageInfoShape {
  hasNextPage: boolean;
  hasPreviousPage: boolean;
  startCursor: string | null;
  endCursor: string | null;
}

export const PageInfoRef = builder.objectRef<PageInfoShape>('PageInfo').implement({
  description: 'Relay page information (forward pagination only).',
  fields: (t) => ({
    hasNextPage: t.exposeBoolean('hasNextPage'),
    hasPreviousPage: t.exposeBoolean('hasPreviousPage'),
    startCursor: t.exposeString('startCursor', { nullable: true }),
    endCursor: t.exposeString('endCursor', { nullable: true }),
  }),
});

/**
 * The Relay cursor connection (https://relay.dev/graphql/connections.htm), forward only, written out: @pothos/plugin-relay's
 * `t.connection` would add `last`/`before` (backward pagination, which the tenant index does not serve), so the
 * plugin is not loaded.
 */
const BatchJobConnection = builder.objectRef<{ edges: { cursor: string; node: JobView }[]; pageInfo: PageInfoShape }>('BatchJobConnection').implement({
  description: 'A page of jobs, newest first (Relay connection).',
  fields: (t) => ({
    edges: t.field({ type: [BatchJobEdge], resolve: (c) => c.edges }),
    nodes: t.field({ type: [BatchJobRef], description: 'The jobs of `edges`, for convenience.', resolve: (c) => c.edges.map((e) => e.node) }),
    pageInfo: t.field({ type: PageInfoRef, resolve: (c) => c.pageInfo }),
  }),
});

const encodeListCursor = (job: JobView) => Buffer.from(JSON.stringify([job.createdAt, job.id])).toString('base64url');

function decodeListCursor(cursor: string): ListPosition {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
    if (typeof createdAt === 'number' && typeof id === 'string') return { createdAt, id };
  } catch {
    // fall through
  }
  throw badInput('after', 'not a cursor from batchJobs');
}

/** Most jobs per page. */
export const MAX_PAGE_SIZE = 100;

/** A Relay connection of a page of jobs read after `after`. */
function connectionOf(page: JobPage, after: ListPosition | null) {
  const edges = page.jobs.map((node) => ({ cursor: encodeListCursor(node), node }));
  return {
    edges,
    pageInfo: {
      hasNextPage: page.hasNextPage,
      hasPreviousPage: after !== null,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges[edges.length - 1]?.cursor ?? null,
    },
  };
}

/** Reads one page of the viewer's jobs. @throws DomainError BAD_USER_INPUT for a bad `first` or `after`. */
async function jobPage(
  ctx: Context,
  filter: { status?: readonly JobStatus[] | null; kind?: readonly (typeof JOB_KINDS)[number][] | null; tags?: readonly string[] | null; parentId?: string | null },
  firstArg: number | null | undefined,
  afterArg: string | null | undefined,
) {
  const first = firstArg ?? 20;
  if (first < 0 || first > MAX_PAGE_SIZE) throw badInput('first', `first must be from 0 to ${MAX_PAGE_SIZE}`);
  const after = afterArg ? decodeListCursor(afterArg) : null;
  return connectionOf(await ctx.services.jobs.list(ctx.viewer, filter, first, after), after);
}

builder.objectField(BatchJobRef, 'children', (t) =>
  t.field({
    type: BatchJobConnection,
    description: `This job's children (a job group), newest first, as a Relay connection; \`first\` defaults to 20 (at most ${MAX_PAGE_SIZE}). Raises BAD_USER_INPUT for a bad \`first\` or \`after\`.`,
    args: {
      first: t.arg.int({ description: `Page size, 0..${MAX_PAGE_SIZE}; default 20.` }),
      after: t.arg.string({ description: 'An `endCursor` or edge `cursor` of a previous page.' }),
      status: t.arg({ type: [JobStatusEnum], description: 'Only children in one of these statuses.' }),
    },
    resolve: (job, args, ctx) => jobPage(ctx, { parentId: job.id, status: args.status }, args.first, args.after),
  }),
);

builder.queryFields((t) => ({
  batchJob: t.field({
    type: BatchJobRef,
    nullable: true,
    authScopes: { 'jobs:read': true },
    description: "A job by id; null when there is no such job in the caller's tenant. Needs `jobs:read`.",
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.jobs.get(ctx.viewer, String(args.id)),
  }),
  batchJobs: t.field({
    type: BatchJobConnection,
    authScopes: { 'jobs:read': true },
    description: `The tenant's jobs, newest first, as a Relay connection. \`first\` defaults to 20 (at most ${MAX_PAGE_SIZE}). Needs \`jobs:read\`. Raises BAD_USER_INPUT for a bad \`first\` or \`after\`.`,
    args: {
      status: t.arg({ type: [JobStatusEnum], description: 'Only jobs in one of these statuses.' }),
      kind: t.arg({ type: [JobKindEnum], description: 'Only jobs of one of these kinds.' }),
      tags: t.arg.stringList({ description: 'Only jobs carrying every one of these tags.' }),
      parentId: t.arg.id({ description: 'Only children of this job.' }),
      first: t.arg.int({ description: `Page size, 0..${MAX_PAGE_SIZE}; default 20.` }),
      after: t.arg.string({ description: 'An `endCursor` or edge `cursor` of a previous page.' }),
    },
    resolve: (_root, args, ctx) =>
      jobPage(ctx, { status: args.status, kind: args.kind, tags: args.tags, parentId: args.parentId == null ? null : String(args.parentId) }, args.first, args.after),
  }),
}));

const CreateBatchJobInput = builder.inputType('CreateBatchJobInput', {
  description: 'A new job.',
  fields: (t) => ({
    name: t.string({ required: true, description: 'Human-readable name, 1..200 characters.' }),
    kind: t.field({ type: JobKindEnum, defaultValue: 'BATCH', description: 'Default BATCH.' }),
    total: t.int({ description: 'Items in the job, if known.' }),
    metadata: t.field({ type: 'JSON', description: 'Free-form JSON, at most 16 KiB serialized.' }),
    heartbeatSeconds: t.int({
      description:
        'Seconds without a report after which a RUNNING job counts as stalled (a STALLED event, `stalled: true`, an activity hint, STALLED webhooks); 0 turns stall detection off. Default RUNWATCH_STALL_SECONDS (300). Whole seconds, 0..2592000; negative is BAD_USER_INPUT.',
    }),
    parentId: t.id({
      description: `Makes the job a child of this one (same tenant): the parent then shows its children's aggregate. Groups are at most ${MAX_DEPTH} levels deep. An unknown parent (or another tenant's) is NOT_FOUND; too deep is BAD_USER_INPUT; a finished parent is CONFLICT.`,
    }),
    tags: t.stringList({
      description: `Tags to filter by (batchJobs, jobUpdates): at most ${TAG_LIMITS.maxTags}, each 1..${TAG_LIMITS.maxLength} characters after trimming; duplicates are dropped.`,
    }),
    idempotencyKey: t.string({
      description: 'A retried create with the same key and input returns the first job; the same key with other input is CONFLICT. Kept 7 days, or until the job is removed (RUNWATCH_RETENTION_DAYS after it finishes) if that is sooner.',
    }),
  }),
});

const ReportProgressInput = builder.inputType('ReportProgressInput', {
  description: 'A progress report from a worker. Give `completed` (absolute) or `completedDelta`, not both.',
  fields: (t) => ({
    jobId: t.id({ required: true }),
    completed: t.int({ description: 'Items completed so far (absolute); may not go down.' }),
    completedDelta: t.int({ description: 'Items completed since the last report; non-negative.' }),
    failedDelta: t.int({ description: 'Items that failed since the last report; non-negative. Emits ITEM_FAILED.' }),
    total: t.int({ description: 'Set or correct the total; completed + failed may not exceed it.' }),
    stage: t.string({ description: 'Current stage; a change emits STAGE.' }),
    message: t.string({ description: 'Status message, at most 2000 characters.' }),
    resources: t.field({ type: ResourcesInput, description: 'What the job holds now.' }),
    metrics: t.field({
      type: [MetricInput],
      description: 'Gauges to set (tokens per second, cost so far): each value joins `BatchJob.metrics` and `metricSeries`. At most 50 per report, names distinct, at most 50 names per job.',
    }),
  }),
});

builder.mutationFields((t) => ({
  createBatchJob: t.field({
    type: BatchJobRef,
    authScopes: { 'jobs:write': true },
    description: "Creates a QUEUED job in the caller's tenant. Needs `jobs:write`. With `parentId`, a child of that job (a job group). Raises BAD_USER_INPUT (input, tags, too deep), NOT_FOUND (no such parent in your tenant), CONFLICT (idempotency key reused with other input; parent finished).",
    args: { input: t.arg({ type: CreateBatchJobInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      ctx.services.jobs.create(ctx.viewer, {
        name: input.name,
        kind: input.kind ?? 'BATCH',
        total: input.total,
        metadata: input.metadata,
        heartbeatSeconds: input.heartbeatSeconds,
        idempotencyKey: input.idempotencyKey,
        parentId: input.parentId == null ? null : String(input.parentId),
        tags: input.tags,
      }),
  }),
  reportProgress: t.field({
    type: BatchJobRef,
    authScopes: { 'jobs:write': true },
    description:
      'Reports progress. The first report moves a QUEUED job to RUNNING (STARTED); a new `stage` completes the previous stage\'s step and starts its own (`steps`). Needs `jobs:write`. Raises NOT_FOUND, CONFLICT (job finished), BAD_USER_INPUT (completed going down, negative delta, completed + failed > total, a non-finite or surplus metric); nothing changes on error.',
    args: { input: t.arg({ type: ReportProgressInput, required: true }) },
    resolve: (_root, { input }, ctx) =>
      ctx.services.results.reportProgress(ctx.viewer, String(input.jobId), {
        completed: input.completed,
        completedDelta: input.completedDelta,
        failedDelta: input.failedDelta,
        total: input.total,
        stage: input.stage,
        message: input.message,
        resources: input.resources,
        metrics: input.metrics,
      }),
  }),
  completeBatchJob: t.field({
    type: BatchJobRef,
    authScopes: { 'jobs:write': true },
    description: 'Marks a job COMPLETED. Needs `jobs:write`. Raises NOT_FOUND, CONFLICT (already finished).',
    args: { id: t.arg.id({ required: true }), message: t.arg.string() },
    resolve: (_root, args, ctx) => ctx.services.jobs.finish(ctx.viewer, String(args.id), 'COMPLETED', args.message ?? null),
  }),
  failBatchJob: t.field({
    type: BatchJobRef,
    authScopes: { 'jobs:write': true },
    description: 'Marks a job FAILED with an error message. Needs `jobs:write`. Raises NOT_FOUND, CONFLICT, BAD_USER_INPUT (empty error).',
    args: { id: t.arg.id({ required: true }), error: t.arg.string({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.jobs.finish(ctx.viewer, String(args.id), 'FAILED', args.error),
  }),
  cancelBatchJob: t.field({
    type: BatchJobRef,
    authScopes: { 'jobs:control': true },
    description: 'Cancels a job. Needs `jobs:control`. Raises NOT_FOUND, CONFLICT (already finished).',
    args: { id: t.arg.id({ required: true }), reason: t.arg.string() },
    resolve: (_root, args, ctx) => ctx.services.jobs.finish(ctx.viewer, String(args.id), 'CANCELLED', args.reason ?? null),
  }),
  pauseBatchJob: t.field({
    type: BatchJobRef,
    authScopes: { 'jobs:write': true },
    description: 'A worker reports that it paused the job (PAUSED event); the next report or resumeBatchJob resumes it. Needs `jobs:write`. Raises NOT_FOUND, CONFLICT.',
    args: { id: t.arg.id({ required: true }), message: t.arg.string() },
    resolve: (_root, args, ctx) => ctx.services.jobs.setPaused(ctx.viewer, String(args.id), true, args.message ?? null),
  }),
  resumeBatchJob: t.field({
    type: BatchJobRef,
    authScopes: { 'jobs:write': true },
    description: 'A worker reports that it resumed a paused job (RESUMED event). Needs `jobs:write`. Raises NOT_FOUND, CONFLICT.',
    args: { id: t.arg.id({ required: true }), message: t.arg.string() },
    resolve: (_root, args, ctx) => ctx.services.jobs.setPaused(ctx.viewer, String(args.id), false, args.message ?? null),
  }),
}));
