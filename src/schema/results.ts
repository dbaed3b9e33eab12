/**
 * What jobs produce: item results (reportItems, itemResults), steps
 * (reportStep, BatchJob.steps), log lines for every job (appendLogs), metric
 * summaries (BatchJob.metrics, successRate) and metric history (metricSeries);
 * and what ProgressEvent carries of them (ITEM_RESULTS, STAGE, LOG).
 */
import { ITEM_LIMITS, type ItemResult } from '../domain/items.js';
import { LOG_LINE_LIMITS, type JobEvent, type JobView, type LogLine } from '../domain/job.js';
import { DEFAULT_LOG_LIMITS } from '../domain/log-limit.js';
import { HISTORY_LIMITS } from '../domain/metric-history.js';
import { STEP_LIMITS, STEP_STATUSES, type StepView } from '../domain/steps.js';
import { BatchJobRef, PageInfoRef } from './jobs.js';
import { MetricInput, MetricPointRef, MetricSummaryRef, NamedMetricRef } from './metrics.js';
import { ProgressEventRef } from './progress.js';
import { LogLevelEnum } from './training.js';
import { builder } from './builder.js';

export const StepStatusEnum = builder.enumType('StepStatus', {
  description: 'Where a step is: PENDING → RUNNING → COMPLETED | FAILED | CANCELLED. A finished step reported RUNNING again restarts.',
  values: {
    PENDING: { description: 'Known, not started.' },
    RUNNING: { description: 'Started; `durationSeconds` grows.' },
    COMPLETED: { description: 'Finished successfully.' },
    FAILED: { description: 'Finished with an error (`error`).' },
    CANCELLED: { description: 'Stopped because its job was cancelled.' },
  } satisfies Record<(typeof STEP_STATUSES)[number], unknown>,
});

export const JobStepRef = builder.objectRef<StepView>('JobStep').implement({
  description:
    "One step of a job: a pipeline's stage or tool, with its times. A new `stage` in reportProgress starts a step and completes the previous stage's; reportStep reports any step (several may run at once). When the job finishes, its RUNNING steps finish with it (COMPLETED, FAILED with the job's error, or CANCELLED).",
  fields: (t) => ({
    name: t.exposeString('name'),
    status: t.expose('status', { type: StepStatusEnum }),
    startedAt: t.expose('startedAt', { type: 'DateTime', nullable: true, description: 'When it started RUNNING; null while PENDING.' }),
    finishedAt: t.expose('finishedAt', { type: 'DateTime', nullable: true }),
    durationSeconds: t.exposeFloat('durationSeconds', { nullable: true, description: 'Seconds from start to finish, or to now while RUNNING; null while PENDING.' }),
    completed: t.exposeInt('completed', { nullable: true, description: 'Units of the step done (e.g. pages), as reported.' }),
    total: t.exposeInt('total', { nullable: true, description: 'Units in the step, as reported.' }),
    error: t.exposeString('error', { nullable: true, description: 'Why it failed (FAILED only).' }),
  }),
});

export const ItemResultRef = builder.objectRef<ItemResult>('ItemResult').implement({
  description: 'The result of one item of a job (reportItems).',
  fields: (t) => ({
    seq: t.exposeInt('seq', { description: "The item's place among the job's reported results: 1, 2, ... in the order they were reported." }),
    itemId: t.exposeString('itemId', { description: "The worker's id of the item." }),
    ok: t.exposeBoolean('ok', { description: 'True: it succeeded (counted in `completed`); false: it failed (counted in `failed`).' }),
    latencySeconds: t.exposeFloat('latencySeconds', { nullable: true, description: 'Seconds it took.' }),
    metrics: t.field({ type: [NamedMetricRef], resolve: (r) => r.metrics }),
    error: t.exposeString('error', { nullable: true, description: 'Why it failed.' }),
    data: t.expose('data', { type: 'JSON', nullable: true, description: 'What it produced (free-form JSON, at most 4 KiB).' }),
    timestamp: t.expose('timestamp', { type: 'DateTime', description: 'When runwatch received it.' }),
  }),
});

export const LogLineRef = builder.objectRef<LogLine>('LogLine').implement({
  description: 'A log line of a job (appendLogs).',
  fields: (t) => ({
    level: t.expose('level', { type: LogLevelEnum }),
    message: t.exposeString('message'),
    source: t.exposeString('source', { nullable: true, description: 'Where it came from (a logger name, `stderr`).' }),
    timestamp: t.expose('timestamp', { type: 'DateTime', description: 'As given by the worker, else when runwatch received it.' }),
    droppedBefore: t.exposeInt('droppedBefore', { description: "Lines of this job the rate limit dropped just before this one." }),
  }),
});

builder.objectFields(BatchJobRef, (t) => ({
  metrics: t.field({
    type: [MetricSummaryRef],
    description: 'Summaries of every metric reported for the job (gauges from reportProgress, item metrics and `latencySeconds` from reportItems), in order of first report.',
    resolve: (job: JobView) => job.metrics,
  }),
  successRate: t.exposeFloat('successRate', {
    nullable: true,
    description: 'ok / (ok + failed) over the item results reported with reportItems, 0..1; null before the first.',
  }),
  steps: t.field({
    type: [JobStepRef],
    description: `The job's steps in order of first report (at most ${STEP_LIMITS.perJob}; a new stage beyond that replaces the oldest finished step).`,
    resolve: (job: JobView) => job.steps,
  }),
}));

builder.objectFields(ProgressEventRef, (t) => ({
  items: t.field({
    type: [ItemResultRef],
    nullable: true,
    description: 'ITEM_RESULTS: the batch of one reportItems call, in the order reported. Null on other events.',
    resolve: (e: JobEvent) => e.items ?? null,
  }),
  step: t.field({ type: JobStepRef, nullable: true, description: 'STAGE: the step that started or changed. Null on other events.', resolve: (e: JobEvent) => e.step ?? null }),
  logs: t.field({
    type: [LogLineRef],
    nullable: true,
    description: 'LOG: the lines of one appendLogs call that passed the rate limit. Null on other events.',
    resolve: (e: JobEvent) => e.logs ?? null,
  }),
}));

const ItemResultInput = builder.inputType('ItemResultInput', {
  description: 'The result of one item.',
  fields: (t) => ({
    itemId: t.string({ required: true, description: `The worker's id of the item, 1..${ITEM_LIMITS.itemIdLength} characters.` }),
    ok: t.boolean({ required: true, description: 'True: it succeeded (completed + 1); false: it failed (failed + 1).' }),
    latencySeconds: t.float({ description: 'Seconds it took; finite, ≥ 0. Summarized as the metric `latencySeconds`.' }),
    metrics: t.field({ type: [MetricInput], description: 'Its metrics (at most 50, names distinct), summarized per name in `BatchJob.metrics`.' }),
    error: t.string({ description: `Why it failed, at most ${ITEM_LIMITS.errorLength} characters.` }),
    data: t.field({ type: 'JSON', description: `What it produced, at most ${ITEM_LIMITS.dataJson} characters of JSON (and ${ITEM_LIMITS.dataJsonPerCall} for all items of one call).` }),
  }),
});

const LogLineInput = builder.inputType('LogLineInput', {
  description: 'A log line.',
  fields: (t) => ({
    level: t.field({ type: LogLevelEnum, required: true }),
    message: t.string({ required: true, description: `1..${LOG_LINE_LIMITS.message} characters.` }),
    source: t.string({ description: `Where it came from (a logger name, \`stderr\`), at most ${LOG_LINE_LIMITS.source} characters.` }),
    timestamp: t.field({ type: 'DateTime', description: 'When it was written; default: when runwatch receives it.' }),
  }),
});

const ItemResultEdge = builder.objectRef<{ cursor: string; node: ItemResult }>('ItemResultEdge').implement({
  description: 'An item result in a page, with its cursor.',
  fields: (t) => ({
    cursor: t.exposeString('cursor', { description: 'Pass as `after` to get the (older) results after this one.' }),
    node: t.field({ type: ItemResultRef, resolve: (e) => e.node }),
  }),
});

const ItemResultConnection = builder
  .objectRef<{ edges: { cursor: string; node: ItemResult }[]; hasNextPage: boolean; after: string | null }>('ItemResultConnection')
  .implement({
    description: 'A page of item results, newest first (Relay connection, forward only).',
    fields: (t) => ({
      edges: t.field({ type: [ItemResultEdge], resolve: (c) => c.edges }),
      nodes: t.field({ type: [ItemResultRef], description: 'The results of `edges`, for convenience.', resolve: (c) => c.edges.map((e) => e.node) }),
      pageInfo: t.field({
        type: PageInfoRef,
        resolve: (c) => ({
          hasNextPage: c.hasNextPage,
          hasPreviousPage: c.after !== null,
          startCursor: c.edges[0]?.cursor ?? null,
          endCursor: c.edges[c.edges.length - 1]?.cursor ?? null,
        }),
      }),
    }),
  });

builder.queryFields((t) => ({
  itemResults: t.field({
    type: ItemResultConnection,
    authScopes: { 'jobs:read': true },
    description:
      "A job's newest item results, newest first. runwatch keeps the newest RUNWATCH_HISTORY (default 1000) results per job, removed with the job. `first` 0..100 (default 20); `ok` keeps only successes (true) or failures (false). Needs `jobs:read`. Raises NOT_FOUND (no such job in your tenant), BAD_USER_INPUT (bad `first` or `after`).",
    args: {
      jobId: t.arg.id({ required: true }),
      first: t.arg.int(),
      after: t.arg.string({ description: 'An edge `cursor` or `endCursor` of a previous page.' }),
      ok: t.arg.boolean({ description: 'Only successes (true) or only failures (false); omitted: both.' }),
    },
    resolve: async (_root, args, ctx) => ({
      ...(await ctx.services.results.itemResults(ctx.viewer, String(args.jobId), { first: args.first, after: args.after, ok: args.ok })),
      after: args.after ?? null,
    }),
  }),
  metricSeries: t.field({
    type: [MetricPointRef],
    authScopes: { 'jobs:read': true },
    description: [
      "The whole history of one of a job's series, downsampled to at most `maxPoints` points that span its first to its last value and keep its minimum and maximum",
      '(M4 buckets: first, min, max and last point of each; runwatch keeps at most',
      `${HISTORY_LIMITS.bucketsPerSeries * 4} points per series and 64 series per job, fed with every value before conflation).`,
      'Series: `loss`, `learningRate` (x: globalStep), `validationLoss` and `validation.<metric>` (x: the result\'s step) of training runs;',
      "each gauge and item metric by its name and `latencySeconds` (x: the item's seq, or the gauge's n-th value). An unknown name gives [].",
      `Needs \`jobs:read\`. Raises NOT_FOUND, BAD_USER_INPUT (maxPoints outside ${HISTORY_LIMITS.minReadPoints}..${HISTORY_LIMITS.maxReadPoints}).`,
    ].join(' '),
    args: {
      jobId: t.arg.id({ required: true }),
      name: t.arg.string({ required: true }),
      maxPoints: t.arg.int({ defaultValue: 500 }),
    },
    resolve: (_root, args, ctx) => ctx.services.results.metricSeries(ctx.viewer, String(args.jobId), args.name, args.maxPoints ?? 500),
  }),
}));

builder.mutationFields((t) => ({
  reportItems: t.field({
    type: BatchJobRef,
    authScopes: { 'jobs:write': true },
    description: `Reports item results as one atomic change: \`completed\` grows by the ok ones, \`failed\` by the others, their metrics join \`metrics\` and \`metricSeries\`, and one ITEM_RESULTS event carries the batch (never conflated). 1..${ITEM_LIMITS.perCall} items per call. Wakes a QUEUED or PAUSED job like reportProgress. Needs \`jobs:write\`. Raises NOT_FOUND, CONFLICT (job finished), BAD_USER_INPUT (a non-finite number, too many items or metrics, oversized data, completed + failed > total); nothing changes on error.`,
    args: { jobId: t.arg.id({ required: true }), items: t.arg({ type: [ItemResultInput], required: true }) },
    resolve: (_root, args, ctx) =>
      ctx.services.results.reportItems(
        ctx.viewer,
        String(args.jobId),
        args.items.map((i) => ({ itemId: i.itemId, ok: i.ok, latencySeconds: i.latencySeconds, metrics: i.metrics, error: i.error, data: i.data })),
      ),
  }),
  reportStep: t.field({
    type: BatchJobRef,
    authScopes: { 'jobs:write': true },
    description: `Reports one step (created when new; at most ${STEP_LIMITS.perJob} per job): RUNNING starts it, COMPLETED/FAILED/CANCELLED finish it; several may run at once. Omitted counts keep their value; \`error\` only with FAILED. One STAGE event carries the step; the job's \`stage\` is left alone. Wakes a QUEUED or PAUSED job. Needs \`jobs:write\`. Raises NOT_FOUND, CONFLICT (job finished), BAD_USER_INPUT; nothing changes on error.`,
    args: {
      jobId: t.arg.id({ required: true }),
      name: t.arg.string({ required: true, description: `1..${STEP_LIMITS.nameLength} characters.` }),
      status: t.arg({ type: StepStatusEnum, required: true }),
      completed: t.arg.int({ description: 'Units of the step done.' }),
      total: t.arg.int({ description: 'Units in the step.' }),
      error: t.arg.string({ description: `Why it failed (FAILED only), at most ${STEP_LIMITS.errorLength} characters.` }),
    },
    resolve: (_root, args, ctx) =>
      ctx.services.results.reportStep(ctx.viewer, String(args.jobId), {
        name: args.name,
        status: args.status,
        completed: args.completed,
        total: args.total,
        error: args.error,
      }),
  }),
  appendLogs: t.field({
    type: 'Int',
    authScopes: { 'jobs:write': true },
    description: `Appends log lines (1..${LOG_LINE_LIMITS.perCall}) to any job's stream: the lines that pass the per-job rate limit (${DEFAULT_LOG_LIMITS.logBurst} at once, ${DEFAULT_LOG_LIMITS.logRatePerSecond} per second sustained, across every instance) go out in one LOG event; dropped lines are counted in the next passing line's \`droppedBefore\`. Subscribe with \`runProgress(logs: true)\`. Returns the number of lines that passed. Needs \`jobs:write\`. Raises NOT_FOUND, CONFLICT (job finished), BAD_USER_INPUT.`,
    args: { jobId: t.arg.id({ required: true }), lines: t.arg({ type: [LogLineInput], required: true }) },
    resolve: (_root, args, ctx) =>
      ctx.services.results.appendLogs(
        ctx.viewer,
        String(args.jobId),
        args.lines.map((l) => ({ level: l.level, message: l.message, source: l.source, timestamp: l.timestamp ? (l.timestamp as Date).getTime() : null })),
      ),
  }),
}));
