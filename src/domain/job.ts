/**
 * The job state machine and its progress rules (DESIGN.md "Semantics").
 *
 * Pure: every function takes the current record and the time (`nowMs`) and
 * returns a new record plus the events the change produces; nothing here
 * knows GraphQL, Redis or the wall clock. Backends persist the result
 * atomically; resolvers only translate arguments.
 *
 * States: QUEUED → RUNNING ⇄ PAUSED, and from any of those to one of the
 * terminal states COMPLETED | FAILED | CANCELLED, which never change again.
 */
import { encodeCursor } from './cursor.js';
import { badInput, conflict } from './errors.js';
import { addRateSample, etaSeconds, rateAt, type RateSample } from './rate.js';
import { progressDue } from './conflation.js';
import { toItemResults, validateItems, type ItemResult, type ItemResultInput } from './items.js';
import {
  admitLogLine,
  droppedLinesMessage,
  droppedReportDueMs,
  emptyLogBucket,
  refillInPlace,
  takeDroppedReport,
  type LogBucket,
  type LogLimits,
} from './log-limit.js';
import { LATENCY_METRIC, successRate, summarize, validateMetrics, viewSummary, type MetricInput, type MetricSummary, type MetricSummaryView } from './metrics.js';
import { applyStepReport, enterStage, finishSteps, viewStep, viewSteps, type StepRecord, type StepReport, type StepView } from './steps.js';
import { LOG_LEVELS, type LogLevel } from './training.js';

export const JOB_KINDS = ['BATCH', 'EVALUATION', 'TRAINING', 'PIPELINE'] as const;
/** What sort of work a job is. */
export type JobKind = (typeof JOB_KINDS)[number];

export const JOB_STATUSES = ['QUEUED', 'RUNNING', 'PAUSED', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;
/** Where a job is in its life. */
export type JobStatus = (typeof JOB_STATUSES)[number];

export const TERMINAL_STATUSES: ReadonlySet<JobStatus> = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);

export const PROGRESS_EVENT_TYPES = [
  'SNAPSHOT',
  'STARTED',
  'PROGRESS',
  'STAGE',
  'ITEM_FAILED',
  'PAUSED',
  'RESUMED',
  'COMPLETED',
  'FAILED',
  'CANCELLED',
  'STALLED',
  'RECOVERED',
  'CHILD',
  'ITEM_RESULTS',
  'LOG',
] as const;
/** The kinds of event on a job's stream. */
export type ProgressEventType = (typeof PROGRESS_EVENT_TYPES)[number];

/** Is this status final? */
export const isTerminal = (status: JobStatus) => TERMINAL_STATUSES.has(status);

/** Who owns a job: an institute and an environment inside it. */
export interface Tenant {
  institute: string;
  environment: string;
}

/** What a job holds now. Memory in GB. */
export interface Resources {
  containers: number;
  cpuCores: number;
  memoryGb: number;
  gpus: number;
}

/** The stored state of one job. Times are epoch milliseconds. */
export interface JobRecord {
  id: string;
  kind: JobKind;
  name: string;
  status: JobStatus;
  /** Items in the job; null while unknown. */
  total: number | null;
  completed: number;
  failed: number;
  stage: string | null;
  message: string | null;
  errorMessage: string | null;
  metadata: unknown;
  resources: Resources | null;
  tenant: Tenant;
  ownerId: string;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  updatedAt: number;
  /** Epoch of the job's event stream (see cursor.ts). */
  epoch: string;
  /** Offset of the newest event; 0 before the first. */
  offset: number;
  /** Rate samples of processed items (completed + failed). */
  samples: RateSample[];
  /** When the last PROGRESS event went out (ms), for conflation; null: never. */
  lastProgressAt: number | null;
  /** A state change has not been sent as an event yet (a PROGRESS is owed). */
  progressPending: boolean;
  /** Seconds without a report after which a RUNNING job is stalled; 0: never (see {@link stallCheck}). */
  heartbeatSeconds: number;
  /** No report for `heartbeatSeconds` while RUNNING; cleared by the next report (RECOVERED). */
  stalled: boolean;
  /** When the worker last reported (progress, pause or resume), epoch ms; the creation time before that. */
  lastReportAt: number;
  /** Metric summaries (gauges and item metrics), in order of first report; absent: none yet. */
  metrics?: MetricSummary[];
  /** Item results reported with ok true / false (reportItems); absent: 0. */
  okItems?: number;
  failedItems?: number;
  /** Steps in order of first report (stages and reportStep); absent: none. */
  steps?: StepRecord[];
  /** The job's log rate-limit bucket and the limits it was filled under (appendLogs); absent: full. */
  logs?: LogBucket & LogLimits;
  /** The job's parent (a job group), or null/absent for a top-level job. */
  parentId?: string | null;
  /** Depth in its group: 1 for a top-level job, 2 for a child, 3 for a grandchild (at most {@link MAX_DEPTH}); absent: 1. */
  depth?: number;
  /** Tags given at creation (see domain/groups.ts TAG_LIMITS); absent on jobs created before tags existed. */
  tags?: string[];
  /** A parent's summary of its children (domain/groups.ts); absent on jobs without children. */
  group?: GroupState;
  /** The status was set by a person or program (finish, pause, resume): a parent's children no longer decide it. */
  statusExplicit?: boolean;
}

/** Deepest level of a job group: a top-level job (1), its children (2), their children (3). */
export const MAX_DEPTH = 3;

/** What a parent keeps of one child: the child's state as of its change at `offset`. */
export interface ChildSummary {
  /** Offset of the child's newest change applied (idempotency of the parent aggregation). */
  offset: number;
  status: JobStatus;
  total: number | null;
  completed: number;
  failed: number;
  resources: Resources | null;
}

/** A parent's children (by id) and the rate samples of its aggregate (own + children's processed items). */
export interface GroupState {
  children: Record<string, ChildSummary>;
  samples: RateSample[];
}

/** How many of a parent's children are in each status. */
export interface ChildCounts {
  queued: number;
  running: number;
  paused: number;
  completed: number;
  failed: number;
  cancelled: number;
}

/** What clients see of a job: the record's public fields plus derived numbers. */
export interface JobView {
  id: string;
  kind: JobKind;
  name: string;
  status: JobStatus;
  total: number | null;
  completed: number;
  failed: number;
  /** 0..100 of total; null while total is unknown. */
  percent: number | null;
  /** Items (completed + failed) per second over the sliding window; null while unknown. */
  rate: number | null;
  /** Seconds until done at the current rate; null while unknown. */
  etaSeconds: number | null;
  stage: string | null;
  message: string | null;
  errorMessage: string | null;
  metadata: unknown;
  resources: Resources | null;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  updatedAt: number;
  lastCursor: string | null;
  /** Seconds without a report after which a RUNNING job is stalled; 0: never. */
  heartbeatSeconds: number;
  /** RUNNING with no report for `heartbeatSeconds`. */
  stalled: boolean;
  /** The job's parent, or null. */
  parentId: string | null;
  /** Tags given at creation. */
  tags: string[];
  /** Children per status; null for a job without children. */
  childCounts: ChildCounts | null;
  /** Metric summaries, in order of first report. */
  metrics: MetricSummaryView[];
  /** ok / (ok + failed) over the item results reported; null before the first. */
  successRate: number | null;
  /** Steps, in order of first report, with durations at the view's time. */
  steps: StepView[];
}

/** One log line on a job stream (a LOG event carries the lines of one appendLogs call that passed the rate limit). */
export interface LogLine {
  level: LogLevel;
  message: string;
  /** Where it came from (a logger name, `stderr`); null when not given. */
  source: string | null;
  /** Epoch ms: given by the worker, or when runwatch received it. */
  timestamp: number;
  /** Lines of this job dropped by the rate limit just before this one. */
  droppedBefore: number;
}

/** A log line as a worker sends it. */
export interface LogLineInput {
  level: LogLevel;
  message: string;
  source?: string | null;
  /** Epoch ms; default: when runwatch receives it. */
  timestamp?: number | null;
}

/** One event of a job's stream, as stored in history and published. */
export interface JobEvent {
  cursor: string;
  offset: number;
  runId: string;
  type: ProgressEventType;
  /** Epoch milliseconds. */
  timestamp: number;
  job: JobView;
  message: string | null;
  /** Owner of the job; internal (not in the GraphQL type), lets an instance restore a job Redis lost. */
  owner: { tenant: Tenant; userId: string };
  /** CHILD events: the child whose status changed. */
  childId?: string | null;
  /** ITEM_RESULTS: the batch of one reportItems call. */
  items?: ItemResult[];
  /** STAGE: the step that started or changed. */
  step?: StepView;
  /** LOG: the lines of one appendLogs call that passed the rate limit. */
  logs?: LogLine[];
}

/** The result of a state change: the new record, its events, and when a conflated PROGRESS is due. */
export interface JobChange {
  job: JobRecord;
  events: JobEvent[];
  /** When set, a PROGRESS is owed and should be flushed at this time (ms); see {@link flushProgress}. */
  flushAtMs: number | null;
}

/** Input of {@link createJob}. */
export interface NewJobInput {
  name: string;
  kind: JobKind;
  total?: number | null;
  metadata?: unknown;
  /** Seconds without a report after which a RUNNING job is stalled (0: never); default 0 here (the service fills RUNWATCH_STALL_SECONDS). */
  heartbeatSeconds?: number | null;
  /** Tags (see domain/groups.ts TAG_LIMITS). */
  tags?: readonly string[] | null;
}

/** Input of {@link applyProgress}; every field optional. */
export interface ProgressReport {
  /** Absolute completed count; may not go down. Exclusive with completedDelta. */
  completed?: number | null;
  completedDelta?: number | null;
  failedDelta?: number | null;
  total?: number | null;
  stage?: string | null;
  message?: string | null;
  resources?: Resources | null;
  /** Gauges to set (tokens per second, cost so far): each summarized per name; finite values, at most 50. */
  metrics?: readonly MetricInput[] | null;
}

/** Limits on free-text and metadata sizes, characters. */
export const LIMITS = { name: 200, text: 2000, metadataJson: 16_384, maxCount: 2_147_483_647, maxHeartbeatSeconds: 30 * 24 * 3600 } as const;

function checkText(field: string, value: string | null | undefined, max: number): void {
  if (value != null && value.length > max) throw badInput(field, `${field} is longer than ${max} characters`);
}

function checkCount(field: string, value: number | null | undefined): void {
  if (value == null) return;
  if (!Number.isInteger(value) || value < 0 || value > LIMITS.maxCount)
    throw badInput(field, `${field} must be a whole number from 0 to ${LIMITS.maxCount}, got ${value}`);
}

function checkResources(resources: Resources | null | undefined): void {
  if (!resources) return;
  for (const [key, value] of Object.entries(resources)) {
    if (!Number.isFinite(value) || value < 0) throw badInput(`resources.${key}`, `resources.${key} must be a non-negative number`);
  }
}

/**
 * Validates new-job input.
 * @throws DomainError BAD_USER_INPUT for an empty or long name, a bad total, or oversized metadata.
 */
export function validateNewJob(input: NewJobInput): void {
  if (input.name.trim().length === 0) throw badInput('name', 'name must not be empty');
  checkText('name', input.name, LIMITS.name);
  checkCount('total', input.total);
  const hb = input.heartbeatSeconds;
  if (hb != null && (!Number.isInteger(hb) || hb < 0 || hb > LIMITS.maxHeartbeatSeconds))
    throw badInput('heartbeatSeconds', `heartbeatSeconds must be a whole number from 0 (off) to ${LIMITS.maxHeartbeatSeconds}, got ${hb}`);
  if (input.metadata !== undefined && input.metadata !== null) {
    const size = JSON.stringify(input.metadata).length;
    if (size > LIMITS.metadataJson) throw badInput('metadata', `metadata is larger than ${LIMITS.metadataJson} characters of JSON`);
  }
}

/** Creates the record of a new, QUEUED job. @throws DomainError BAD_USER_INPUT (see {@link validateNewJob}). */
export function createJob(
  input: NewJobInput,
  ids: { id: string; epoch: string; tenant: Tenant; ownerId: string; parentId?: string | null; depth?: number },
  nowMs: number,
): JobRecord {
  validateNewJob(input);
  const tags = normalizeTags(input.tags);
  return {
    id: ids.id,
    kind: input.kind,
    name: input.name.trim(),
    status: 'QUEUED',
    total: input.total ?? null,
    completed: 0,
    failed: 0,
    stage: null,
    message: null,
    errorMessage: null,
    metadata: input.metadata ?? null,
    resources: null,
    tenant: ids.tenant,
    ownerId: ids.ownerId,
    createdAt: nowMs,
    startedAt: null,
    finishedAt: null,
    updatedAt: nowMs,
    epoch: ids.epoch,
    offset: 0,
    samples: [],
    lastProgressAt: null,
    progressPending: false,
    heartbeatSeconds: input.heartbeatSeconds ?? 0,
    stalled: false,
    lastReportAt: nowMs,
    ...(ids.parentId ? { parentId: ids.parentId, depth: ids.depth ?? 2 } : {}),
    ...(tags.length > 0 ? { tags } : {}),
  };
}

/** Bounds of a job's tags: how many, and characters per tag. */
export const TAG_LIMITS = { maxTags: 20, maxLength: 64 } as const;

/**
 * Validates and normalizes tags: trimmed, duplicates dropped, order kept.
 * @throws DomainError BAD_USER_INPUT for more than {@link TAG_LIMITS}.maxTags tags, an empty tag, or one longer than maxLength.
 */
export function normalizeTags(tags: readonly string[] | null | undefined): string[] {
  if (!tags) return [];
  const out: string[] = [];
  for (const raw of tags) {
    const tag = raw.trim();
    if (tag.length === 0) throw badInput('tags', 'a tag must not be empty');
    if (tag.length > TAG_LIMITS.maxLength) throw badInput('tags', `a tag is at most ${TAG_LIMITS.maxLength} characters, got ${tag.length}`);
    if (!out.includes(tag)) out.push(tag);
  }
  if (out.length > TAG_LIMITS.maxTags) throw badInput('tags', `a job has at most ${TAG_LIMITS.maxTags} tags, got ${out.length}`);
  return out;
}

/** The public view of a record at time `nowMs` (rate and ETA depend on it). */
export function viewJob(job: JobRecord, nowMs: number): JobView {
  const agg = aggregateOf(job);
  const processed = agg.completed + agg.failed;
  const finished = isTerminal(job.status);
  let rate: number | null;
  if (finished) {
    const seconds = job.startedAt !== null && job.finishedAt !== null ? (job.finishedAt - job.startedAt) / 1000 : 0;
    rate = seconds > 0 ? processed / seconds : null;
  } else {
    rate = job.status === 'RUNNING' ? rateAt(job.group ? job.group.samples : job.samples, nowMs) : job.status === 'PAUSED' ? 0 : null;
  }
  const total = agg.total;
  const remaining = total === null ? null : Math.max(0, total - processed);
  return {
    id: job.id,
    kind: job.kind,
    name: job.name,
    status: job.status,
    total,
    completed: agg.completed,
    failed: agg.failed,
    percent: total === null ? null : total === 0 ? 100 : Math.min(100, (processed / total) * 100),
    rate,
    etaSeconds: finished ? (job.status === 'COMPLETED' ? 0 : null) : etaSeconds(remaining, rate),
    stage: job.stage,
    message: job.message,
    errorMessage: job.errorMessage,
    metadata: job.metadata,
    resources: agg.resources,
    createdAt: job.createdAt,
    startedAt: job.startedAt,
    finishedAt: job.finishedAt,
    updatedAt: job.updatedAt,
    lastCursor: job.offset > 0 ? encodeCursor(job.epoch, job.offset) : null,
    // `?? 0` / `?? false`: records stored before stall detection existed have neither field.
    heartbeatSeconds: job.heartbeatSeconds ?? 0,
    stalled: job.stalled ?? false,
    parentId: job.parentId ?? null,
    tags: job.tags ?? [],
    childCounts: job.group ? childCountsOf(job.group) : null,
    metrics: (job.metrics ?? []).map(viewSummary),
    successRate: successRate(job.okItems ?? 0, job.failedItems ?? 0),
    steps: job.steps ? viewSteps(job.steps, nowMs) : [],
  };
}

/**
 * A job's numbers with its children's: its own total, completed, failed and resources plus every child's (as of
 * the newest child change applied). A total is known when the job's own or any child's is; unknown ones count 0.
 */
export function aggregateOf(job: JobRecord): { total: number | null; completed: number; failed: number; resources: Resources | null } {
  if (!job.group) return { total: job.total, completed: job.completed, failed: job.failed, resources: job.resources };
  let total = job.total;
  let completed = job.completed;
  let failed = job.failed;
  let resources = job.resources;
  for (const child of Object.values(job.group.children)) {
    if (child.total !== null) total = (total ?? 0) + child.total;
    completed += child.completed;
    failed += child.failed;
    if (child.resources) resources = addResources(resources, child.resources);
  }
  return { total, completed, failed, resources };
}

function addResources(a: Resources | null, b: Resources): Resources {
  if (!a) return { ...b };
  return { containers: a.containers + b.containers, cpuCores: a.cpuCores + b.cpuCores, memoryGb: a.memoryGb + b.memoryGb, gpus: a.gpus + b.gpus };
}

/** Children per status. */
export function childCountsOf(group: GroupState): ChildCounts {
  const counts: ChildCounts = { queued: 0, running: 0, paused: 0, completed: 0, failed: 0, cancelled: 0 };
  for (const child of Object.values(group.children)) counts[child.status.toLowerCase() as keyof ChildCounts]++;
  return counts;
}

/** A SNAPSHOT event of the job's current state, at the job's current offset (not stored in history). */
export function snapshotEvent(job: JobRecord, nowMs: number): JobEvent {
  return {
    cursor: encodeCursor(job.epoch, job.offset),
    offset: job.offset,
    runId: job.id,
    type: 'SNAPSHOT',
    timestamp: nowMs,
    job: viewJob(job, nowMs),
    message: null,
    owner: { tenant: job.tenant, userId: job.ownerId },
  };
}

/**
 * Rebuilds a job record from the newest event an instance saw of it, for when
 * the backend lost the job (Redis restarted empty). The history before it is
 * gone, so the record starts a new `epoch`: cursors of the old one resume with
 * a SNAPSHOT. Offsets continue from the event's, so live subscribers see no
 * offset go backwards. Rate samples restart.
 */
export function restoreJob(last: JobEvent, epoch: string): JobRecord {
  const v = last.job;
  return {
    id: v.id,
    kind: v.kind,
    name: v.name,
    status: v.status,
    total: v.total,
    completed: v.completed,
    failed: v.failed,
    stage: v.stage,
    message: v.message,
    errorMessage: v.errorMessage,
    metadata: v.metadata,
    resources: v.resources,
    tenant: last.owner.tenant,
    ownerId: last.owner.userId,
    createdAt: v.createdAt,
    startedAt: v.startedAt,
    finishedAt: v.finishedAt,
    updatedAt: last.timestamp,
    epoch,
    offset: last.offset,
    samples: [],
    lastProgressAt: null,
    progressPending: false,
    heartbeatSeconds: v.heartbeatSeconds,
    stalled: v.stalled,
    lastReportAt: last.timestamp,
    ...(v.parentId ? { parentId: v.parentId } : {}),
    ...(v.tags?.length ? { tags: [...v.tags] } : {}),
    // The view's mean times its count is the sum again (to the last bits).
    metrics: (v.metrics ?? []).map((m) => ({ name: m.name, last: m.last, count: m.count, sum: m.mean * m.count, min: m.min, max: m.max, updatedAt: m.updatedAt })),
    steps: (v.steps ?? []).map(({ durationSeconds: _d, ...step }) => step),
  };
}

/** The job with a new epoch (history was lost or rolled back); no event. */
export function rotateEpoch(job: JobRecord, epoch: string): JobChange {
  return { job: { ...job, epoch }, events: [], flushAtMs: null };
}

/** An event before {@link seal} gives it its offset and cursor. */
export type Draft = { type: ProgressEventType; message: string | null; childId?: string; items?: ItemResult[]; step?: StepRecord; logs?: LogLine[] };

/** Gives drafts their offsets and cursors; every event carries the job's state after the whole change. */
export function seal(job: JobRecord, drafts: Draft[], nowMs: number, flushAtMs: number | null): JobChange {
  const sealedJob: JobRecord = { ...job, offset: job.offset + drafts.length, updatedAt: nowMs };
  if (drafts.length > 0) sealedJob.progressPending = false;
  if (drafts.some((d) => d.type === 'PROGRESS')) sealedJob.lastProgressAt = nowMs;
  const view = viewJob(sealedJob, nowMs);
  const events = drafts.map((d, i) => {
    const offset = job.offset + i + 1;
    const owner = { tenant: job.tenant, userId: job.ownerId };
    const event: JobEvent = { cursor: encodeCursor(job.epoch, offset), offset, runId: job.id, type: d.type, timestamp: nowMs, job: view, message: d.message, owner };
    if (d.childId) event.childId = d.childId;
    if (d.items) event.items = d.items;
    if (d.step) event.step = viewStep(d.step, nowMs);
    if (d.logs) event.logs = d.logs;
    return event;
  });
  return { job: sealedJob, events, flushAtMs: sealedJob.progressPending ? flushAtMs : null };
}

function assertOpen(job: JobRecord): void {
  if (isTerminal(job.status)) throw conflict(`job ${job.id} is already ${job.status}`);
}

/**
 * Applies a progress report.
 *
 * Events: STARTED when a QUEUED job gets its first report, RESUMED when a
 * PAUSED one does, RECOVERED when a stalled one does (see {@link stallCheck}), STAGE when the stage changes, ITEM_FAILED when failedDelta > 0,
 * and otherwise PROGRESS — at most one per `progressIntervalMs` (conflation);
 * a report inside the interval only updates state and returns `flushAtMs`.
 *
 * @param progressIntervalMs 1000 / RUNWATCH_PROGRESS_HZ.
 * @throws DomainError CONFLICT when the job is finished; BAD_USER_INPUT when both
 *   `completed` and `completedDelta` are given, a count is negative or not whole,
 *   `completed` goes down, or completed + failed would exceed total. Nothing changes on error.
 */
export function applyProgress(job: JobRecord, report: ProgressReport, nowMs: number, progressIntervalMs: number): JobChange {
  assertOpen(job);
  if (report.completed != null && report.completedDelta != null)
    throw badInput('completed', 'give either completed (absolute) or completedDelta, not both');
  checkCount('completed', report.completed);
  checkCount('total', report.total);
  for (const field of ['completedDelta', 'failedDelta'] as const) {
    const value = report[field];
    if (value != null && (!Number.isInteger(value) || value < 0))
      throw badInput(field, `${field} must be a non-negative whole number, got ${value}`);
  }
  checkText('stage', report.stage, LIMITS.name);
  checkText('message', report.message, LIMITS.text);
  checkResources(report.resources);
  validateMetrics('metrics', report.metrics ?? []);
  const metrics = report.metrics?.length ? summarize(job.metrics ?? [], report.metrics, nowMs) : job.metrics;

  let completed = job.completed;
  if (report.completed != null) {
    if (report.completed < job.completed)
      throw badInput('completed', `completed may not go down (is ${job.completed}, got ${report.completed})`);
    completed = report.completed;
  } else if (report.completedDelta != null) {
    completed += report.completedDelta;
  }
  const failed = job.failed + (report.failedDelta ?? 0);
  const total = report.total ?? job.total;
  if (total !== null && completed + failed > total)
    throw badInput(
      report.total != null ? 'total' : 'completed',
      `completed + failed (${completed} + ${failed}) would exceed total (${total})`,
    );
  if (completed > LIMITS.maxCount || failed > LIMITS.maxCount) throw badInput('completed', 'count out of range');

  const { fields, drafts } = onWorkerReport(job, nowMs);
  const stage = report.stage !== undefined && report.stage !== null ? report.stage : job.stage;
  let steps = job.steps;
  if (stage !== job.stage && stage !== null) {
    const entered = enterStage(job.steps ?? [], job.stage, stage, nowMs);
    steps = entered.steps;
    drafts.push({ type: 'STAGE', message: stage, step: entered.step });
  }
  if ((report.failedDelta ?? 0) > 0) drafts.push({ type: 'ITEM_FAILED', message: report.message ?? null });

  const processedChanged = completed !== job.completed || failed !== job.failed;
  const next: JobRecord = {
    ...job,
    ...fields,
    completed,
    failed,
    total,
    stage,
    message: report.message ?? job.message,
    resources: report.resources ?? job.resources,
    metrics,
    steps,
    samples: processedChanged || job.samples.length === 0 ? addRateSample(job.samples, nowMs, completed + failed) : job.samples,
  };
  const changed =
    processedChanged ||
    total !== job.total ||
    next.message !== job.message ||
    metrics !== job.metrics ||
    (report.resources != null && JSON.stringify(report.resources) !== JSON.stringify(job.resources));

  let flushAtMs: number | null = null;
  if (drafts.length === 0 && (changed || job.progressPending)) {
    if (progressDue(job.lastProgressAt, nowMs, progressIntervalMs)) {
      drafts.push({ type: 'PROGRESS', message: null });
    } else {
      next.progressPending = true;
      flushAtMs = (job.lastProgressAt ?? nowMs) + progressIntervalMs;
    }
  }
  return seal(next, drafts, nowMs, flushAtMs);
}

/**
 * The trailing edge of a job (JobWriter's one timer per job): sends the PROGRESS owed by conflation, if it
 * is still owed and due, and reports log lines the rate limit dropped that no later line reported (a
 * runwatch WARNING line with `droppedBefore`, once the bucket has a token; its LOG event also carries
 * the state a PROGRESS would).
 * @returns a change with one event (PROGRESS or LOG), a change with no events and a later
 *   `flushAtMs` when not yet due, or null when nothing is owed (already sent, or finished).
 */
export function flushProgress(job: JobRecord, nowMs: number, progressIntervalMs: number): JobChange | null {
  if (isTerminal(job.status)) return null;
  const logsOwed = (job.logs?.droppedLogs ?? 0) > 0;
  if (!job.progressPending && !logsOwed) return null;
  const later: number[] = [];
  const drafts: Draft[] = [];
  let next = job;
  if (logsOwed) {
    // The trailing edge of appendLogs: lines dropped with no passing line after them are reported on a runwatch line.
    const bucket = { ...job.logs! };
    refillInPlace(bucket, nowMs, bucket);
    const n = takeDroppedReport(bucket);
    if (n === null) later.push(droppedReportDueMs(bucket, nowMs, bucket));
    else drafts.push({ type: 'LOG', message: null, logs: [{ level: 'WARNING', message: droppedLinesMessage(n), source: 'runwatch', timestamp: nowMs, droppedBefore: n }] });
    next = { ...job, logs: bucket };
  }
  // Any event carries the newest state, so a LOG also delivers a PROGRESS that conflation owes.
  if (job.progressPending && drafts.length === 0) {
    if (progressDue(job.lastProgressAt, nowMs, progressIntervalMs)) drafts.push({ type: 'PROGRESS', message: null });
    else later.push((job.lastProgressAt ?? nowMs) + progressIntervalMs);
  }
  const flushAtMs = later.length > 0 ? Math.min(...later) : null;
  if (drafts.length === 0) return { job: next, events: [], flushAtMs };
  return { ...seal(next, drafts, nowMs, null), flushAtMs };
}

/**
 * Finishes a job: COMPLETED, FAILED (with `errorMessage`) or CANCELLED. One terminal event.
 * @throws DomainError CONFLICT when it is already finished; BAD_USER_INPUT for an over-long message.
 */
export function finishJob(
  job: JobRecord,
  outcome: 'COMPLETED' | 'FAILED' | 'CANCELLED',
  message: string | null,
  nowMs: number,
): JobChange {
  assertOpen(job);
  checkText(outcome === 'FAILED' ? 'error' : 'message', message, LIMITS.text);
  if (outcome === 'FAILED' && (message === null || message.trim() === '')) throw badInput('error', 'error must not be empty');
  const next: JobRecord = {
    ...job,
    status: outcome,
    statusExplicit: true,
    startedAt: job.startedAt ?? nowMs,
    finishedAt: nowMs,
    message: outcome === 'FAILED' ? job.message : (message ?? job.message),
    errorMessage: outcome === 'FAILED' ? message : job.errorMessage,
    stalled: false,
  };
  if (job.steps?.length) next.steps = finishSteps(job.steps, outcome, outcome === 'FAILED' ? message : null, nowMs);
  return seal(next, [{ type: outcome, message }], nowMs, null);
}

/**
 * Pauses a RUNNING job (PAUSED event) or resumes a PAUSED one (RESUMED event).
 * Pausing a paused job or resuming a running one changes nothing and emits nothing.
 * @throws DomainError CONFLICT when the job is finished, or QUEUED and asked to pause.
 */
export function setPaused(job: JobRecord, paused: boolean, message: string | null, nowMs: number): JobChange {
  assertOpen(job);
  checkText('message', message, LIMITS.text);
  if (paused && job.status === 'QUEUED') throw conflict(`job ${job.id} has not started`);
  if (paused === (job.status === 'PAUSED') || (!paused && job.status === 'QUEUED')) return { job, events: [], flushAtMs: null };
  // A pause or resume is a report from the worker: it ends a stall (no RECOVERED: the PAUSED/RESUMED event says it).
  const next: JobRecord = { ...job, status: paused ? 'PAUSED' : 'RUNNING', message: message ?? job.message, statusExplicit: true, stalled: false, lastReportAt: nowMs };
  if (!paused) next.samples = addRateSample([], nowMs, job.completed + job.failed);
  return seal(next, [{ type: paused ? 'PAUSED' : 'RESUMED', message }], nowMs, null);
}

/** Default of RUNWATCH_STALL_SECONDS, a new job's `heartbeatSeconds`: 300 s. */
export const DEFAULT_STALL_SECONDS = 300;

/** When a new job is first looked at for a stall (a heartbeat after its creation), epoch ms; null: never (heartbeat 0). */
export const firstStallCheckAt = (job: Pick<JobRecord, 'heartbeatSeconds' | 'createdAt'>): number | null =>
  job.heartbeatSeconds > 0 ? job.createdAt + job.heartbeatSeconds * 1000 : null;

/**
 * Stall detection (RUNWATCH_STALL_SECONDS, `heartbeatSeconds` per job): a
 * RUNNING job with no report for `heartbeatSeconds` becomes stalled, with one
 * STALLED event; its next report clears it with RECOVERED (see
 * {@link applyProgress}). The idea is Temporal's activity heartbeat timeout and
 * BullMQ's `stalled` event.
 *
 * Called by a sweep that keeps one check time per job in a deadline index:
 * `change` is the STALLED commit when the job is due now (null otherwise —
 * committed through the store's compare-and-set update, so when several
 * instances check the same job only one STALLED commits), and `nextCheckAtMs`
 * when to look at the job again (null: never — finished, or heartbeat 0).
 * The next check is never later than the job's real deadline: a QUEUED,
 * PAUSED or stalled job cannot stall sooner than a heartbeat after it next
 * reports, so it is looked at again a heartbeat from now; a RUNNING one at its
 * deadline. Reports therefore never have to touch the index.
 */
export function stallCheck(job: JobRecord, nowMs: number): { change: JobChange | null; nextCheckAtMs: number | null } {
  const heartbeatMs = (job.heartbeatSeconds ?? 0) * 1000;
  if (heartbeatMs <= 0 || isTerminal(job.status)) return { change: null, nextCheckAtMs: null };
  if (job.status !== 'RUNNING' || job.stalled) return { change: null, nextCheckAtMs: nowMs + heartbeatMs };
  const deadline = (job.lastReportAt ?? job.updatedAt) + heartbeatMs;
  if (nowMs < deadline) return { change: null, nextCheckAtMs: deadline };
  const next: JobRecord = { ...job, stalled: true };
  return { change: seal(next, [{ type: 'STALLED', message: `no report for ${job.heartbeatSeconds} s` }], nowMs, null), nextCheckAtMs: nowMs + heartbeatMs };
}

/**
 * What every worker report (reportProgress, reportItems, reportStep) does to a job's life cycle: a QUEUED job
 * starts (STARTED), a PAUSED one resumes (RESUMED), a stalled one recovers (RECOVERED, see {@link stallCheck}),
 * and the report resets the stall deadline. @returns the fields to spread into the next record, and the drafts.
 */
function onWorkerReport(job: JobRecord, nowMs: number): { fields: Pick<JobRecord, 'status' | 'startedAt' | 'stalled' | 'lastReportAt'>; drafts: Draft[] } {
  const drafts: Draft[] = [];
  let status = job.status;
  let startedAt = job.startedAt;
  if (status === 'QUEUED') {
    status = 'RUNNING';
    startedAt = nowMs;
    drafts.push({ type: 'STARTED', message: null });
  } else if (status === 'PAUSED') {
    status = 'RUNNING';
    drafts.push({ type: 'RESUMED', message: null });
  }
  if (job.stalled) drafts.push({ type: 'RECOVERED', message: null });
  return { fields: { status, startedAt, stalled: false, lastReportAt: nowMs }, drafts };
}

/**
 * Applies a batch of item results (reportItems) as one change: `completed`
 * grows by the items with ok true, `failed` by the others; each item's
 * metrics and its `latencySeconds` (as the metric `latencySeconds`) join the
 * job's summaries, in item order; and one ITEM_RESULTS event carries the
 * whole batch (after STARTED or RESUMED when the report wakes the job up).
 * ITEM_RESULTS is never conflated; it also carries the job's newest state,
 * so no PROGRESS is owed after it.
 * @throws DomainError CONFLICT when the job is finished; BAD_USER_INPUT for an invalid batch
 *   (items.ts `validateItems`), completed + failed beyond total, or more than 50 metric names. Nothing changes on error.
 */
export function applyItems(job: JobRecord, items: readonly ItemResultInput[], nowMs: number): JobChange {
  assertOpen(job);
  validateItems(items);
  const okCount = items.filter((i) => i.ok).length;
  const completed = job.completed + okCount;
  const failed = job.failed + (items.length - okCount);
  if (job.total !== null && completed + failed > job.total)
    throw badInput('items', `completed + failed (${completed} + ${failed}) would exceed total (${job.total})`);
  if (completed > LIMITS.maxCount || failed > LIMITS.maxCount) throw badInput('items', 'count out of range');
  const values: MetricInput[] = [];
  for (const item of items) {
    if (item.latencySeconds != null) values.push({ name: LATENCY_METRIC, value: item.latencySeconds });
    for (const m of item.metrics ?? []) values.push(m);
  }
  const okItems = job.okItems ?? 0;
  const failedItems = job.failedItems ?? 0;
  const results = toItemResults(items, okItems + failedItems + 1, nowMs);
  const { fields, drafts } = onWorkerReport(job, nowMs);
  drafts.push({ type: 'ITEM_RESULTS', message: null, items: results });
  const next: JobRecord = {
    ...job,
    ...fields,
    completed,
    failed,
    metrics: values.length ? summarize(job.metrics ?? [], values, nowMs) : job.metrics,
    okItems: okItems + okCount,
    failedItems: failedItems + items.length - okCount,
    samples: addRateSample(job.samples, nowMs, completed + failed),
  };
  return seal(next, drafts, nowMs, null);
}

/**
 * Applies an explicit step report (reportStep; see steps.ts `applyStepReport`):
 * one STAGE event carrying the step, whose `message` is the step's name
 * (after STARTED or RESUMED when the report wakes the job up). The job's
 * `stage` is left as it is: parallel steps have no single current stage.
 * @throws DomainError CONFLICT when the job is finished; BAD_USER_INPUT (see steps.ts). Nothing changes on error.
 */
export function applyStep(job: JobRecord, report: StepReport, nowMs: number): JobChange {
  assertOpen(job);
  const { steps, step } = applyStepReport(job.steps ?? [], report, nowMs);
  const { fields, drafts } = onWorkerReport(job, nowMs);
  drafts.push({ type: 'STAGE', message: step.name, step });
  return seal({ ...job, ...fields, steps }, drafts, nowMs, null);
}

/** Bounds of appendLogs (characters unless noted). */
export const LOG_LINE_LIMITS = { perCall: 1000, message: 8000, source: 200 } as const;

/**
 * Appends log lines to a job's stream through its rate limit (log-limit.ts:
 * `logBurst` lines at once, `logRatePerSecond` sustained, per job across
 * every instance): the lines that pass go out in one LOG event, each with
 * the count of lines dropped just before it (`droppedBefore`). Logs do not
 * start or resume a job.
 * @returns the change (no event when every line was dropped) and the number of lines that passed.
 * @throws DomainError CONFLICT when the job is finished; BAD_USER_INPUT for an empty or over-long batch
 *   (1000 lines), an unknown level, an empty or long message (8000), a long source (200), a bad timestamp.
 */
export function applyLogs(job: JobRecord, lines: readonly LogLineInput[], nowMs: number, limits: LogLimits): { change: JobChange; accepted: number } {
  assertOpen(job);
  if (lines.length === 0) throw badInput('lines', 'lines must not be empty');
  if (lines.length > LOG_LINE_LIMITS.perCall) throw badInput('lines', `at most ${LOG_LINE_LIMITS.perCall} lines per call`);
  lines.forEach((line, i) => {
    if (!(LOG_LEVELS as readonly string[]).includes(line.level)) throw badInput(`lines[${i}].level`, `unknown level ${line.level}`);
    if (line.message.length === 0) throw badInput(`lines[${i}].message`, 'message must not be empty');
    checkText(`lines[${i}].message`, line.message, LOG_LINE_LIMITS.message);
    checkText(`lines[${i}].source`, line.source, LOG_LINE_LIMITS.source);
    if (line.timestamp != null && !Number.isFinite(line.timestamp)) throw badInput(`lines[${i}].timestamp`, 'timestamp is not a valid time');
  });
  const bucket: LogBucket & LogLimits = { ...(job.logs ?? emptyLogBucket(limits)), ...limits };
  refillInPlace(bucket, nowMs, limits);
  const passed: LogLine[] = [];
  for (const line of lines) {
    const droppedBefore = admitLogLine(bucket);
    if (droppedBefore !== null)
      passed.push({ level: line.level, message: line.message, source: line.source ?? null, timestamp: line.timestamp ?? nowMs, droppedBefore });
  }
  const drafts: Draft[] = passed.length ? [{ type: 'LOG', message: null, logs: passed }] : [];
  const next: JobRecord = { ...job, logs: bucket };
  // A LOG event carries the newest state too, so it also delivers a PROGRESS owed by conflation.
  const change = drafts.length ? seal(next, drafts, nowMs, null) : { job: next, events: [], flushAtMs: null };
  // Dropped lines no later line reports go out on the trailing edge (flushProgress), when a token is back.
  if (bucket.droppedLogs > 0) {
    const due = droppedReportDueMs(bucket, nowMs, limits);
    change.flushAtMs = change.flushAtMs === null ? due : Math.min(change.flushAtMs, due);
  }
  return { change, accepted: passed.length };
}
