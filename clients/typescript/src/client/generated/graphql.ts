/* eslint-disable */
/** Internal type. DO NOT USE DIRECTLY. */
type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
/** Internal type. DO NOT USE DIRECTLY. */
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
import type { DocumentTypeDecoration } from '@graphql-typed-document-node/core';
/** What an ActivityHint is about. */
export type ActivityHintKind =
  /** A job was cancelled. */
  | 'JOB_CANCELLED'
  /** A job failed. */
  | 'JOB_FAILED'
  /** A job completed. */
  | 'JOB_FINISHED'
  /** A stalled job reported again. */
  | 'JOB_RECOVERED'
  /** A RUNNING job sent no report for its `heartbeatSeconds` (it may be stuck or gone). */
  | 'JOB_STALLED'
  /** A job started (its first progress). */
  | 'JOB_STARTED'
  /** Usage reached 90% of the budget. */
  | 'NEAR_BUDGET'
  /** Usage passed the budget (usage is still recorded; nothing is stopped). */
  | 'OVER_BUDGET';

/** How wide an activity view is; always inside the token's institute. */
export type ActivityScope =
  /** Every job of the token's environment (institute + environment). */
  | 'ENVIRONMENT'
  /** Every job of every environment of the institute. */
  | 'INSTITUTE'
  /** Your own jobs in the token's environment. */
  | 'USER';

/** A new job. */
export type CreateBatchJobInput = {
  /** Seconds without a report after which a RUNNING job counts as stalled (a STALLED event, `stalled: true`, an activity hint, STALLED webhooks); 0 turns stall detection off. Default RUNWATCH_STALL_SECONDS (300). Whole seconds, 0..2592000; negative is BAD_USER_INPUT. */
  heartbeatSeconds?: number | null | undefined;
  /** A retried create with the same key and input returns the first job; the same key with other input is CONFLICT. Kept 7 days, or until the job is removed (RUNWATCH_RETENTION_DAYS after it finishes) if that is sooner. */
  idempotencyKey?: string | null | undefined;
  /** Default BATCH. */
  kind?: JobKind | null | undefined;
  /** Free-form JSON, at most 16 KiB serialized. */
  metadata?: unknown;
  /** Human-readable name, 1..200 characters. */
  name: string;
  /** Makes the job a child of this one (same tenant): the parent then shows its children's aggregate. Groups are at most 3 levels deep. An unknown parent (or another tenant's) is NOT_FOUND; too deep is BAD_USER_INPUT; a finished parent is CONFLICT. */
  parentId?: string | null | undefined;
  /** Tags to filter by (batchJobs, jobUpdates): at most 20, each 1..64 characters after trimming; duplicates are dropped. */
  tags?: Array<string> | null | undefined;
  /** Items in the job, if known. */
  total?: number | null | undefined;
};

/** The result of one item. */
export type ItemResultInput = {
  /** What it produced, at most 4096 characters of JSON (and 262144 for all items of one call). */
  data?: unknown;
  /** Why it failed, at most 2000 characters. */
  error?: string | null | undefined;
  /** The worker's id of the item, 1..200 characters. */
  itemId: string;
  /** Seconds it took; finite, ≥ 0. Summarized as the metric `latencySeconds`. */
  latencySeconds?: number | null | undefined;
  /** Its metrics (at most 50, names distinct), summarized per name in `BatchJob.metrics`. */
  metrics?: Array<MetricInput> | null | undefined;
  /** True: it succeeded (completed + 1); false: it failed (failed + 1). */
  ok: boolean;
};

/** What a command asks a job's worker to do. */
export type JobCommandKind =
  /** Stop the work; the worker acknowledges once it has stopped, which cancels the job. */
  | 'CANCEL'
  /** Anything else the worker understands; `name` says what (e.g. SAVE_CHECKPOINT). */
  | 'CUSTOM'
  /** Pause; an acknowledgement pauses a RUNNING job. */
  | 'PAUSE'
  /** Resume; an acknowledgement resumes a PAUSED job. */
  | 'RESUME';

/** Where a command is: PENDING until the worker answers (ACKNOWLEDGED or REJECTED) or its time to live passes (EXPIRED). */
export type JobCommandState =
  /** The worker accepted it. */
  | 'ACKNOWLEDGED'
  /** No answer before `expiresAt`; no longer delivered, and too late to answer. */
  | 'EXPIRED'
  /** Sent; delivered to every worker subscription of the job until answered or expired. */
  | 'PENDING'
  /** The worker refused it; `message` says why. */
  | 'REJECTED';

/** Which jobs a job list shows; every field optional (all jobs of the tenant). */
export type JobFilter = {
  /** Jobs of one of these kinds. */
  kind?: Array<JobKind> | null | undefined;
  /** Children of this job only. */
  parentId?: string | null | undefined;
  /** Jobs in one of these statuses (a job leaving them is still shown once, with `previousStatus`). */
  status?: Array<JobStatus> | null | undefined;
  /** Jobs carrying every one of these tags. */
  tags?: Array<string> | null | undefined;
};

/** What sort of work a job is. */
export type JobKind =
  /** A batch of items: embeddings, inference, transformations. */
  | 'BATCH'
  /** An evaluation run over a data set; failed items count as `failed`. */
  | 'EVALUATION'
  /** A multi-stage pipeline; `stage` names the current stage. */
  | 'PIPELINE'
  /** A training run; its progress is steps (completed = globalStep, total = maxStep). */
  | 'TRAINING';

/** Where a job is in its life: QUEUED → RUNNING ⇄ PAUSED → COMPLETED | FAILED | CANCELLED (final). */
export type JobStatus =
  /** Cancelled by a person or program with `jobs:control` (final). */
  | 'CANCELLED'
  /** Finished successfully (final). */
  | 'COMPLETED'
  /** Finished with an error; see `errorMessage` (final). */
  | 'FAILED'
  /** Paused by its worker; the next report resumes it. */
  | 'PAUSED'
  /** Created, no progress reported yet. */
  | 'QUEUED'
  /** Progress has been reported. */
  | 'RUNNING';

/** What a JobUpdate says. */
export type JobUpdateType =
  /** A matching job was created. */
  | 'CREATED'
  /** A job's numbers moved: its PROGRESS (conflated per job to RUNWATCH_PROGRESS_HZ, like runProgress), a stage change, failed items, or a child's change for a parent. */
  | 'PROGRESS'
  /** A matching job as it is now: the first events of a stream (its first page, newest first). */
  | 'SNAPSHOT'
  /** A job changed status (started, paused, resumed, finished); `previousStatus` is the one it left. */
  | 'STATUS';

/** Severity of a TrainingLog, lowest first. */
export type LogLevel =
  | 'CRITICAL'
  | 'DEBUG'
  | 'ERROR'
  | 'INFO'
  | 'WARNING';

/** A log line. */
export type LogLineInput = {
  level: LogLevel;
  /** 1..8000 characters. */
  message: string;
  /** Where it came from (a logger name, `stderr`), at most 200 characters. */
  source?: string | null | undefined;
  /** When it was written; default: when runwatch receives it. */
  timestamp?: string | null | undefined;
};

/** A named value: a gauge (tokens per second, cost so far), an item's metric or a validation metric (accuracy); names unique within one list. Name: 1..100 characters; value: a finite number (NaN and ±Infinity are refused). */
export type MetricInput = {
  /** 1..100 characters. */
  name: string;
  /** Finite. */
  value: number;
};

/** Kinds of event on a job stream. PROGRESS is conflated (at most RUNWATCH_PROGRESS_HZ per second per job); the others never are. */
export type ProgressEventType =
  /** Cancelled (terminal); `message` is the reason. */
  | 'CANCELLED'
  /** A child of this job (a job group) was added or changed status; `childId` names it, `message` is "<child name>: <STATUS>". The parent's aggregate travels in `job` (its own PROGRESS is conflated). */
  | 'CHILD'
  /** Finished successfully (terminal). */
  | 'COMPLETED'
  /** Finished with an error (terminal); `message` is the error. */
  | 'FAILED'
  /** Items failed (failedDelta > 0); `message` is the report message. */
  | 'ITEM_FAILED'
  /** A batch of item results (`items`), one per reportItems call; never conflated. Only with `runProgress(items: true)`. */
  | 'ITEM_RESULTS'
  /** Log lines of one appendLogs call that passed the rate limit (`logs`). Only with `runProgress(logs: true)`. */
  | 'LOG'
  /** The job was paused. */
  | 'PAUSED'
  /** Counts, total, message or resources changed (conflated). */
  | 'PROGRESS'
  /** A stalled job reported again; `job.stalled` is false. */
  | 'RECOVERED'
  /** The job was resumed: back from PAUSED. */
  | 'RESUMED'
  /** The current state: first event of a stream (not stored in history). */
  | 'SNAPSHOT'
  /** A step started or changed (`step`); `message` is its name. A new `stage` from reportProgress is one, and so is every reportStep. */
  | 'STAGE'
  /** A RUNNING job sent no report for `heartbeatSeconds`; `job.stalled` is true until its next report. `message` says how long. One per stall. */
  | 'STALLED'
  /** The first progress report arrived: QUEUED → RUNNING. */
  | 'STARTED';

/** A progress report from a worker. Give `completed` (absolute) or `completedDelta`, not both. */
export type ReportProgressInput = {
  /** Items completed so far (absolute); may not go down. */
  completed?: number | null | undefined;
  /** Items completed since the last report; non-negative. */
  completedDelta?: number | null | undefined;
  /** Items that failed since the last report; non-negative. Emits ITEM_FAILED. */
  failedDelta?: number | null | undefined;
  jobId: string;
  /** Status message, at most 2000 characters. */
  message?: string | null | undefined;
  /** Gauges to set (tokens per second, cost so far): each value joins `BatchJob.metrics` and `metricSeries`. At most 50 per report, names distinct, at most 50 names per job. */
  metrics?: Array<MetricInput> | null | undefined;
  /** What the job holds now. */
  resources?: ResourcesInput | null | undefined;
  /** Current stage; a change emits STAGE. */
  stage?: string | null | undefined;
  /** Set or correct the total; completed + failed may not exceed it. */
  total?: number | null | undefined;
};

/** What a job holds now; every number is non-negative. */
export type ResourcesInput = {
  /** Containers (or processes). */
  containers: number;
  /** CPU cores. */
  cpuCores: number;
  /** GPUs. */
  gpus: number;
  /** Memory in GB. */
  memoryGb: number;
};

/** Where a step is: PENDING → RUNNING → COMPLETED | FAILED | CANCELLED. A finished step reported RUNNING again restarts. */
export type StepStatus =
  /** Stopped because its job was cancelled. */
  | 'CANCELLED'
  /** Finished successfully. */
  | 'COMPLETED'
  /** Finished with an error (`error`). */
  | 'FAILED'
  /** Known, not started. */
  | 'PENDING'
  /** Started; `durationSeconds` grows. */
  | 'RUNNING';

export type ActiveJobFieldsFragment = { job: { id: string, name: string, kind: JobKind, status: JobStatus, completed: number, total: number | null, percent: number | null }, resources: { containers: number, cpuCores: number, memoryGb: number, gpus: number } };

export type TotalsFieldsFragment = { jobs: number, containers: number, cpuCores: number, memoryGb: number, gpus: number };

export type ActivityNowQueryVariables = Exact<{
  scope?: ActivityScope | null | undefined;
}>;


export type ActivityNowQuery = { activity: { scope: ActivityScope, timestamp: string, totals: { jobs: number, containers: number, cpuCores: number, memoryGb: number, gpus: number }, activeJobs: Array<{ job: { id: string, name: string, kind: JobKind, status: JobStatus, completed: number, total: number | null, percent: number | null }, resources: { containers: number, cpuCores: number, memoryGb: number, gpus: number } }>, budget: { budgetTotal: number | null, budgetUsed: number, budgetRemaining: number | null, currency: string | null, percentUsed: number | null } } };

export type WatchActivitySubscriptionVariables = Exact<{
  scope?: ActivityScope | null | undefined;
  environmentId?: string | null | undefined;
}>;


export type WatchActivitySubscription = { activity:
    | { __typename: 'ActivityHint', kind: ActivityHintKind, message: string, jobId: string | null, timestamp: string }
    | { __typename: 'ActivityUpdate', scope: ActivityScope, timestamp: string, totals: { jobs: number, containers: number, cpuCores: number, memoryGb: number, gpus: number }, activeJobs: Array<{ job: { id: string, name: string, kind: JobKind, status: JobStatus, completed: number, total: number | null, percent: number | null }, resources: { containers: number, cpuCores: number, memoryGb: number, gpus: number } }> }
    | { __typename: 'BillingUpdate', budgetTotal: number | null, budgetUsed: number, budgetRemaining: number | null, currency: string | null, timestamp: string }
    | { __typename: 'ContextMismatch', message: string }
   };

export type JobCommandFieldsFragment = { id: string, jobId: string, command: JobCommandKind, name: string | null, args: unknown, state: JobCommandState, message: string | null, senderId: string, createdAt: string, expiresAt: string, respondedAt: string | null };

export type SendJobCommandMutationVariables = Exact<{
  jobId: string;
  command: JobCommandKind;
  name?: string | null | undefined;
  args?: unknown;
  ttlSeconds?: number | null | undefined;
}>;


export type SendJobCommandMutation = { sendJobCommand: { id: string, jobId: string, command: JobCommandKind, name: string | null, args: unknown, state: JobCommandState, message: string | null, senderId: string, createdAt: string, expiresAt: string, respondedAt: string | null } };

export type AcknowledgeJobCommandMutationVariables = Exact<{
  id: string;
  accepted: boolean;
  message?: string | null | undefined;
}>;


export type AcknowledgeJobCommandMutation = { acknowledgeJobCommand: { id: string, jobId: string, command: JobCommandKind, name: string | null, args: unknown, state: JobCommandState, message: string | null, senderId: string, createdAt: string, expiresAt: string, respondedAt: string | null } };

export type RecentJobCommandsQueryVariables = Exact<{
  jobId: string;
}>;


export type RecentJobCommandsQuery = { jobCommands: Array<{ id: string, jobId: string, command: JobCommandKind, name: string | null, args: unknown, state: JobCommandState, message: string | null, senderId: string, createdAt: string, expiresAt: string, respondedAt: string | null }> };

export type JobCommandsSubscriptionVariables = Exact<{
  jobId: string;
}>;


export type JobCommandsSubscription = { jobCommands: { id: string, jobId: string, command: JobCommandKind, name: string | null, args: unknown, state: JobCommandState, message: string | null, senderId: string, createdAt: string, expiresAt: string, respondedAt: string | null } };

export type JobFieldsFragment = { id: string, kind: JobKind, name: string, status: JobStatus, total: number | null, completed: number, failed: number, percent: number | null, rate: number | null, etaSeconds: number | null, stage: string | null, message: string | null, errorMessage: string | null, metadata: unknown, createdAt: string, startedAt: string | null, finishedAt: string | null, updatedAt: string, lastCursor: string | null, parentId: string | null, tags: Array<string>, stalled: boolean, heartbeatSeconds: number, successRate: number | null, childCounts: { queued: number, running: number, paused: number, completed: number, failed: number, cancelled: number } | null };

export type GetJobQueryVariables = Exact<{
  id: string;
}>;


export type GetJobQuery = { batchJob: { id: string, kind: JobKind, name: string, status: JobStatus, total: number | null, completed: number, failed: number, percent: number | null, rate: number | null, etaSeconds: number | null, stage: string | null, message: string | null, errorMessage: string | null, metadata: unknown, createdAt: string, startedAt: string | null, finishedAt: string | null, updatedAt: string, lastCursor: string | null, parentId: string | null, tags: Array<string>, stalled: boolean, heartbeatSeconds: number, successRate: number | null, childCounts: { queued: number, running: number, paused: number, completed: number, failed: number, cancelled: number } | null } | null };

export type ListJobsQueryVariables = Exact<{
  first?: number | null | undefined;
  after?: string | null | undefined;
  status?: Array<JobStatus> | JobStatus | null | undefined;
  kind?: Array<JobKind> | JobKind | null | undefined;
  tags?: Array<string> | string | null | undefined;
  parentId?: string | null | undefined;
}>;


export type ListJobsQuery = { batchJobs: { nodes: Array<{ id: string, kind: JobKind, name: string, status: JobStatus, total: number | null, completed: number, failed: number, percent: number | null, rate: number | null, etaSeconds: number | null, stage: string | null, message: string | null, errorMessage: string | null, metadata: unknown, createdAt: string, startedAt: string | null, finishedAt: string | null, updatedAt: string, lastCursor: string | null, parentId: string | null, tags: Array<string>, stalled: boolean, heartbeatSeconds: number, successRate: number | null, childCounts: { queued: number, running: number, paused: number, completed: number, failed: number, cancelled: number } | null }>, pageInfo: { hasNextPage: boolean, endCursor: string | null } } };

export type GetJobOutputsQueryVariables = Exact<{
  id: string;
}>;


export type GetJobOutputsQuery = { batchJob: { id: string, kind: JobKind, name: string, status: JobStatus, total: number | null, completed: number, failed: number, percent: number | null, rate: number | null, etaSeconds: number | null, stage: string | null, message: string | null, errorMessage: string | null, metadata: unknown, createdAt: string, startedAt: string | null, finishedAt: string | null, updatedAt: string, lastCursor: string | null, parentId: string | null, tags: Array<string>, stalled: boolean, heartbeatSeconds: number, successRate: number | null, metrics: Array<{ name: string, last: number, count: number, mean: number, min: number, max: number, updatedAt: string }>, steps: Array<{ name: string, status: StepStatus, startedAt: string | null, finishedAt: string | null, durationSeconds: number | null, completed: number | null, total: number | null, error: string | null }>, childCounts: { queued: number, running: number, paused: number, completed: number, failed: number, cancelled: number } | null } | null };

export type MetricSeriesQueryVariables = Exact<{
  jobId: string;
  name: string;
  maxPoints?: number | null | undefined;
}>;


export type MetricSeriesQuery = { metricSeries: Array<{ step: number, value: number, timestamp: string }> };

export type JobUpdatesSubscriptionVariables = Exact<{
  filter?: JobFilter | null | undefined;
  after?: string | null | undefined;
}>;


export type JobUpdatesSubscription = { jobUpdates: { cursor: string, type: JobUpdateType, timestamp: string, previousStatus: JobStatus | null, job: { id: string, kind: JobKind, name: string, status: JobStatus, total: number | null, completed: number, failed: number, percent: number | null, rate: number | null, etaSeconds: number | null, stage: string | null, message: string | null, errorMessage: string | null, metadata: unknown, createdAt: string, startedAt: string | null, finishedAt: string | null, updatedAt: string, lastCursor: string | null, parentId: string | null, tags: Array<string>, stalled: boolean, heartbeatSeconds: number, successRate: number | null, childCounts: { queued: number, running: number, paused: number, completed: number, failed: number, cancelled: number } | null } } };

export type CreateJobViewTokenMutationVariables = Exact<{
  jobId: string;
  ttlSeconds?: number | null | undefined;
}>;


export type CreateJobViewTokenMutation = { createJobViewToken: { token: string, jobId: string, expiresAt: string, dashboardPath: string } };

export type StepFieldsFragment = { name: string, status: StepStatus, startedAt: string | null, finishedAt: string | null, durationSeconds: number | null, completed: number | null, total: number | null, error: string | null };

export type WatchJobSubscriptionVariables = Exact<{
  runId: string;
  after?: string | null | undefined;
  items?: boolean | null | undefined;
  logs?: boolean | null | undefined;
}>;


export type WatchJobSubscription = { runProgress: { cursor: string, runId: string, type: ProgressEventType, timestamp: string, message: string | null, childId: string | null, step: { name: string, status: StepStatus, startedAt: string | null, finishedAt: string | null, durationSeconds: number | null, completed: number | null, total: number | null, error: string | null } | null, items: Array<{ seq: number, itemId: string, ok: boolean, latencySeconds: number | null, error: string | null, data: unknown, timestamp: string, metrics: Array<{ name: string, value: number }> }> | null, logs: Array<{ level: LogLevel, message: string, source: string | null, timestamp: string, droppedBefore: number }> | null, job: { id: string, kind: JobKind, name: string, status: JobStatus, total: number | null, completed: number, failed: number, percent: number | null, rate: number | null, etaSeconds: number | null, stage: string | null, message: string | null, errorMessage: string | null, metadata: unknown, createdAt: string, startedAt: string | null, finishedAt: string | null, updatedAt: string, lastCursor: string | null, parentId: string | null, tags: Array<string>, stalled: boolean, heartbeatSeconds: number, successRate: number | null, childCounts: { queued: number, running: number, paused: number, completed: number, failed: number, cancelled: number } | null } } };

export type CreateJobMutationVariables = Exact<{
  input: CreateBatchJobInput;
}>;


export type CreateJobMutation = { createBatchJob: { id: string, kind: JobKind, name: string, status: JobStatus, total: number | null, completed: number, failed: number, percent: number | null, rate: number | null, etaSeconds: number | null, stage: string | null, message: string | null, errorMessage: string | null, metadata: unknown, createdAt: string, startedAt: string | null, finishedAt: string | null, updatedAt: string, lastCursor: string | null, parentId: string | null, tags: Array<string>, stalled: boolean, heartbeatSeconds: number, successRate: number | null, childCounts: { queued: number, running: number, paused: number, completed: number, failed: number, cancelled: number } | null } };

export type ReportProgressMutationVariables = Exact<{
  input: ReportProgressInput;
}>;


export type ReportProgressMutation = { reportProgress: { id: string, status: JobStatus, completed: number, failed: number, total: number | null } };

export type CompleteJobMutationVariables = Exact<{
  id: string;
  message?: string | null | undefined;
}>;


export type CompleteJobMutation = { completeBatchJob: { id: string, kind: JobKind, name: string, status: JobStatus, total: number | null, completed: number, failed: number, percent: number | null, rate: number | null, etaSeconds: number | null, stage: string | null, message: string | null, errorMessage: string | null, metadata: unknown, createdAt: string, startedAt: string | null, finishedAt: string | null, updatedAt: string, lastCursor: string | null, parentId: string | null, tags: Array<string>, stalled: boolean, heartbeatSeconds: number, successRate: number | null, childCounts: { queued: number, running: number, paused: number, completed: number, failed: number, cancelled: number } | null } };

export type FailJobMutationVariables = Exact<{
  id: string;
  error: string;
}>;


export type FailJobMutation = { failBatchJob: { id: string, kind: JobKind, name: string, status: JobStatus, total: number | null, completed: number, failed: number, percent: number | null, rate: number | null, etaSeconds: number | null, stage: string | null, message: string | null, errorMessage: string | null, metadata: unknown, createdAt: string, startedAt: string | null, finishedAt: string | null, updatedAt: string, lastCursor: string | null, parentId: string | null, tags: Array<string>, stalled: boolean, heartbeatSeconds: number, successRate: number | null, childCounts: { queued: number, running: number, paused: number, completed: number, failed: number, cancelled: number } | null } };

export type CancelJobMutationVariables = Exact<{
  id: string;
  reason?: string | null | undefined;
}>;


export type CancelJobMutation = { cancelBatchJob: { id: string, kind: JobKind, name: string, status: JobStatus, total: number | null, completed: number, failed: number, percent: number | null, rate: number | null, etaSeconds: number | null, stage: string | null, message: string | null, errorMessage: string | null, metadata: unknown, createdAt: string, startedAt: string | null, finishedAt: string | null, updatedAt: string, lastCursor: string | null, parentId: string | null, tags: Array<string>, stalled: boolean, heartbeatSeconds: number, successRate: number | null, childCounts: { queued: number, running: number, paused: number, completed: number, failed: number, cancelled: number } | null } };

export type ReportItemsMutationVariables = Exact<{
  jobId: string;
  items: Array<ItemResultInput> | ItemResultInput;
}>;


export type ReportItemsMutation = { reportItems: { id: string, status: JobStatus, completed: number, failed: number, total: number | null } };

export type ReportStepMutationVariables = Exact<{
  jobId: string;
  name: string;
  status: StepStatus;
  completed?: number | null | undefined;
  total?: number | null | undefined;
  error?: string | null | undefined;
}>;


export type ReportStepMutation = { reportStep: { id: string, status: JobStatus } };

export type AppendLogsMutationVariables = Exact<{
  jobId: string;
  lines: Array<LogLineInput> | LogLineInput;
}>;


export type AppendLogsMutation = { appendLogs: number };

export class TypedDocumentString<TResult, TVariables>
  extends String
  implements DocumentTypeDecoration<TResult, TVariables>
{
  __apiType?: NonNullable<DocumentTypeDecoration<TResult, TVariables>['__apiType']>;
  private value: string;
  public __meta__?: Record<string, any> | undefined;

  constructor(value: string, __meta__?: Record<string, any> | undefined) {
    super(value);
    this.value = value;
    this.__meta__ = __meta__;
  }

  override toString(): string & DocumentTypeDecoration<TResult, TVariables> {
    return this.value;
  }
}
export const ActiveJobFieldsFragmentDoc = new TypedDocumentString(`
    fragment ActiveJobFields on ActiveJob {
  job {
    id
    name
    kind
    status
    completed
    total
    percent
  }
  resources {
    containers
    cpuCores
    memoryGb
    gpus
  }
}
    `, {"fragmentName":"ActiveJobFields"}) as unknown as TypedDocumentString<ActiveJobFieldsFragment, unknown>;
export const TotalsFieldsFragmentDoc = new TypedDocumentString(`
    fragment TotalsFields on ResourceTotals {
  jobs
  containers
  cpuCores
  memoryGb
  gpus
}
    `, {"fragmentName":"TotalsFields"}) as unknown as TypedDocumentString<TotalsFieldsFragment, unknown>;
export const JobCommandFieldsFragmentDoc = new TypedDocumentString(`
    fragment JobCommandFields on JobCommand {
  id
  jobId
  command
  name
  args
  state
  message
  senderId
  createdAt
  expiresAt
  respondedAt
}
    `, {"fragmentName":"JobCommandFields"}) as unknown as TypedDocumentString<JobCommandFieldsFragment, unknown>;
export const JobFieldsFragmentDoc = new TypedDocumentString(`
    fragment JobFields on BatchJob {
  id
  kind
  name
  status
  total
  completed
  failed
  percent
  rate
  etaSeconds
  stage
  message
  errorMessage
  metadata
  createdAt
  startedAt
  finishedAt
  updatedAt
  lastCursor
  parentId
  tags
  stalled
  heartbeatSeconds
  successRate
  childCounts {
    queued
    running
    paused
    completed
    failed
    cancelled
  }
}
    `, {"fragmentName":"JobFields"}) as unknown as TypedDocumentString<JobFieldsFragment, unknown>;
export const StepFieldsFragmentDoc = new TypedDocumentString(`
    fragment StepFields on JobStep {
  name
  status
  startedAt
  finishedAt
  durationSeconds
  completed
  total
  error
}
    `, {"fragmentName":"StepFields"}) as unknown as TypedDocumentString<StepFieldsFragment, unknown>;
export const ActivityNowDocument = new TypedDocumentString(`
    query ActivityNow($scope: ActivityScope) {
  activity(scope: $scope) {
    scope
    timestamp
    totals {
      ...TotalsFields
    }
    activeJobs {
      ...ActiveJobFields
    }
    budget {
      budgetTotal
      budgetUsed
      budgetRemaining
      currency
      percentUsed
    }
  }
}
    fragment ActiveJobFields on ActiveJob {
  job {
    id
    name
    kind
    status
    completed
    total
    percent
  }
  resources {
    containers
    cpuCores
    memoryGb
    gpus
  }
}
fragment TotalsFields on ResourceTotals {
  jobs
  containers
  cpuCores
  memoryGb
  gpus
}`) as unknown as TypedDocumentString<ActivityNowQuery, ActivityNowQueryVariables>;
export const WatchActivityDocument = new TypedDocumentString(`
    subscription WatchActivity($scope: ActivityScope, $environmentId: ID) {
  activity(scope: $scope, environmentId: $environmentId) {
    __typename
    ... on ActivityUpdate {
      scope
      timestamp
      totals {
        ...TotalsFields
      }
      activeJobs {
        ...ActiveJobFields
      }
    }
    ... on BillingUpdate {
      budgetTotal
      budgetUsed
      budgetRemaining
      currency
      timestamp
    }
    ... on ActivityHint {
      kind
      message
      jobId
      timestamp
    }
    ... on ContextMismatch {
      message
    }
  }
}
    fragment ActiveJobFields on ActiveJob {
  job {
    id
    name
    kind
    status
    completed
    total
    percent
  }
  resources {
    containers
    cpuCores
    memoryGb
    gpus
  }
}
fragment TotalsFields on ResourceTotals {
  jobs
  containers
  cpuCores
  memoryGb
  gpus
}`) as unknown as TypedDocumentString<WatchActivitySubscription, WatchActivitySubscriptionVariables>;
export const SendJobCommandDocument = new TypedDocumentString(`
    mutation SendJobCommand($jobId: ID!, $command: JobCommandKind!, $name: String, $args: JSON, $ttlSeconds: Int) {
  sendJobCommand(
    jobId: $jobId
    command: $command
    name: $name
    args: $args
    ttlSeconds: $ttlSeconds
  ) {
    ...JobCommandFields
  }
}
    fragment JobCommandFields on JobCommand {
  id
  jobId
  command
  name
  args
  state
  message
  senderId
  createdAt
  expiresAt
  respondedAt
}`) as unknown as TypedDocumentString<SendJobCommandMutation, SendJobCommandMutationVariables>;
export const AcknowledgeJobCommandDocument = new TypedDocumentString(`
    mutation AcknowledgeJobCommand($id: ID!, $accepted: Boolean!, $message: String) {
  acknowledgeJobCommand(id: $id, accepted: $accepted, message: $message) {
    ...JobCommandFields
  }
}
    fragment JobCommandFields on JobCommand {
  id
  jobId
  command
  name
  args
  state
  message
  senderId
  createdAt
  expiresAt
  respondedAt
}`) as unknown as TypedDocumentString<AcknowledgeJobCommandMutation, AcknowledgeJobCommandMutationVariables>;
export const RecentJobCommandsDocument = new TypedDocumentString(`
    query RecentJobCommands($jobId: ID!) {
  jobCommands(jobId: $jobId) {
    ...JobCommandFields
  }
}
    fragment JobCommandFields on JobCommand {
  id
  jobId
  command
  name
  args
  state
  message
  senderId
  createdAt
  expiresAt
  respondedAt
}`) as unknown as TypedDocumentString<RecentJobCommandsQuery, RecentJobCommandsQueryVariables>;
export const JobCommandsDocument = new TypedDocumentString(`
    subscription JobCommands($jobId: ID!) {
  jobCommands(jobId: $jobId) {
    ...JobCommandFields
  }
}
    fragment JobCommandFields on JobCommand {
  id
  jobId
  command
  name
  args
  state
  message
  senderId
  createdAt
  expiresAt
  respondedAt
}`) as unknown as TypedDocumentString<JobCommandsSubscription, JobCommandsSubscriptionVariables>;
export const GetJobDocument = new TypedDocumentString(`
    query GetJob($id: ID!) {
  batchJob(id: $id) {
    ...JobFields
  }
}
    fragment JobFields on BatchJob {
  id
  kind
  name
  status
  total
  completed
  failed
  percent
  rate
  etaSeconds
  stage
  message
  errorMessage
  metadata
  createdAt
  startedAt
  finishedAt
  updatedAt
  lastCursor
  parentId
  tags
  stalled
  heartbeatSeconds
  successRate
  childCounts {
    queued
    running
    paused
    completed
    failed
    cancelled
  }
}`) as unknown as TypedDocumentString<GetJobQuery, GetJobQueryVariables>;
export const ListJobsDocument = new TypedDocumentString(`
    query ListJobs($first: Int, $after: String, $status: [JobStatus!], $kind: [JobKind!], $tags: [String!], $parentId: ID) {
  batchJobs(
    first: $first
    after: $after
    status: $status
    kind: $kind
    tags: $tags
    parentId: $parentId
  ) {
    nodes {
      ...JobFields
    }
    pageInfo {
      hasNextPage
      endCursor
    }
  }
}
    fragment JobFields on BatchJob {
  id
  kind
  name
  status
  total
  completed
  failed
  percent
  rate
  etaSeconds
  stage
  message
  errorMessage
  metadata
  createdAt
  startedAt
  finishedAt
  updatedAt
  lastCursor
  parentId
  tags
  stalled
  heartbeatSeconds
  successRate
  childCounts {
    queued
    running
    paused
    completed
    failed
    cancelled
  }
}`) as unknown as TypedDocumentString<ListJobsQuery, ListJobsQueryVariables>;
export const GetJobOutputsDocument = new TypedDocumentString(`
    query GetJobOutputs($id: ID!) {
  batchJob(id: $id) {
    ...JobFields
    metrics {
      name
      last
      count
      mean
      min
      max
      updatedAt
    }
    steps {
      ...StepFields
    }
  }
}
    fragment JobFields on BatchJob {
  id
  kind
  name
  status
  total
  completed
  failed
  percent
  rate
  etaSeconds
  stage
  message
  errorMessage
  metadata
  createdAt
  startedAt
  finishedAt
  updatedAt
  lastCursor
  parentId
  tags
  stalled
  heartbeatSeconds
  successRate
  childCounts {
    queued
    running
    paused
    completed
    failed
    cancelled
  }
}
fragment StepFields on JobStep {
  name
  status
  startedAt
  finishedAt
  durationSeconds
  completed
  total
  error
}`) as unknown as TypedDocumentString<GetJobOutputsQuery, GetJobOutputsQueryVariables>;
export const MetricSeriesDocument = new TypedDocumentString(`
    query MetricSeries($jobId: ID!, $name: String!, $maxPoints: Int) {
  metricSeries(jobId: $jobId, name: $name, maxPoints: $maxPoints) {
    step
    value
    timestamp
  }
}
    `) as unknown as TypedDocumentString<MetricSeriesQuery, MetricSeriesQueryVariables>;
export const JobUpdatesDocument = new TypedDocumentString(`
    subscription JobUpdates($filter: JobFilter, $after: String) {
  jobUpdates(filter: $filter, after: $after) {
    cursor
    type
    timestamp
    previousStatus
    job {
      ...JobFields
    }
  }
}
    fragment JobFields on BatchJob {
  id
  kind
  name
  status
  total
  completed
  failed
  percent
  rate
  etaSeconds
  stage
  message
  errorMessage
  metadata
  createdAt
  startedAt
  finishedAt
  updatedAt
  lastCursor
  parentId
  tags
  stalled
  heartbeatSeconds
  successRate
  childCounts {
    queued
    running
    paused
    completed
    failed
    cancelled
  }
}`) as unknown as TypedDocumentString<JobUpdatesSubscription, JobUpdatesSubscriptionVariables>;
export const CreateJobViewTokenDocument = new TypedDocumentString(`
    mutation CreateJobViewToken($jobId: ID!, $ttlSeconds: Int) {
  createJobViewToken(jobId: $jobId, ttlSeconds: $ttlSeconds) {
    token
    jobId
    expiresAt
    dashboardPath
  }
}
    `) as unknown as TypedDocumentString<CreateJobViewTokenMutation, CreateJobViewTokenMutationVariables>;
export const WatchJobDocument = new TypedDocumentString(`
    subscription WatchJob($runId: ID!, $after: String, $items: Boolean = false, $logs: Boolean = false) {
  runProgress(runId: $runId, after: $after, items: $items, logs: $logs) {
    cursor
    runId
    type
    timestamp
    message
    childId
    step {
      ...StepFields
    }
    items {
      seq
      itemId
      ok
      latencySeconds
      error
      data
      timestamp
      metrics {
        name
        value
      }
    }
    logs {
      level
      message
      source
      timestamp
      droppedBefore
    }
    job {
      ...JobFields
    }
  }
}
    fragment JobFields on BatchJob {
  id
  kind
  name
  status
  total
  completed
  failed
  percent
  rate
  etaSeconds
  stage
  message
  errorMessage
  metadata
  createdAt
  startedAt
  finishedAt
  updatedAt
  lastCursor
  parentId
  tags
  stalled
  heartbeatSeconds
  successRate
  childCounts {
    queued
    running
    paused
    completed
    failed
    cancelled
  }
}
fragment StepFields on JobStep {
  name
  status
  startedAt
  finishedAt
  durationSeconds
  completed
  total
  error
}`) as unknown as TypedDocumentString<WatchJobSubscription, WatchJobSubscriptionVariables>;
export const CreateJobDocument = new TypedDocumentString(`
    mutation CreateJob($input: CreateBatchJobInput!) {
  createBatchJob(input: $input) {
    ...JobFields
  }
}
    fragment JobFields on BatchJob {
  id
  kind
  name
  status
  total
  completed
  failed
  percent
  rate
  etaSeconds
  stage
  message
  errorMessage
  metadata
  createdAt
  startedAt
  finishedAt
  updatedAt
  lastCursor
  parentId
  tags
  stalled
  heartbeatSeconds
  successRate
  childCounts {
    queued
    running
    paused
    completed
    failed
    cancelled
  }
}`) as unknown as TypedDocumentString<CreateJobMutation, CreateJobMutationVariables>;
export const ReportProgressDocument = new TypedDocumentString(`
    mutation ReportProgress($input: ReportProgressInput!) {
  reportProgress(input: $input) {
    id
    status
    completed
    failed
    total
  }
}
    `) as unknown as TypedDocumentString<ReportProgressMutation, ReportProgressMutationVariables>;
export const CompleteJobDocument = new TypedDocumentString(`
    mutation CompleteJob($id: ID!, $message: String) {
  completeBatchJob(id: $id, message: $message) {
    ...JobFields
  }
}
    fragment JobFields on BatchJob {
  id
  kind
  name
  status
  total
  completed
  failed
  percent
  rate
  etaSeconds
  stage
  message
  errorMessage
  metadata
  createdAt
  startedAt
  finishedAt
  updatedAt
  lastCursor
  parentId
  tags
  stalled
  heartbeatSeconds
  successRate
  childCounts {
    queued
    running
    paused
    completed
    failed
    cancelled
  }
}`) as unknown as TypedDocumentString<CompleteJobMutation, CompleteJobMutationVariables>;
export const FailJobDocument = new TypedDocumentString(`
    mutation FailJob($id: ID!, $error: String!) {
  failBatchJob(id: $id, error: $error) {
    ...JobFields
  }
}
    fragment JobFields on BatchJob {
  id
  kind
  name
  status
  total
  completed
  failed
  percent
  rate
  etaSeconds
  stage
  message
  errorMessage
  metadata
  createdAt
  startedAt
  finishedAt
  updatedAt
  lastCursor
  parentId
  tags
  stalled
  heartbeatSeconds
  successRate
  childCounts {
    queued
    running
    paused
    completed
    failed
    cancelled
  }
}`) as unknown as TypedDocumentString<FailJobMutation, FailJobMutationVariables>;
export const CancelJobDocument = new TypedDocumentString(`
    mutation CancelJob($id: ID!, $reason: String) {
  cancelBatchJob(id: $id, reason: $reason) {
    ...JobFields
  }
}
    fragment JobFields on BatchJob {
  id
  kind
  name
  status
  total
  completed
  failed
  percent
  rate
  etaSeconds
  stage
  message
  errorMessage
  metadata
  createdAt
  startedAt
  finishedAt
  updatedAt
  lastCursor
  parentId
  tags
  stalled
  heartbeatSeconds
  successRate
  childCounts {
    queued
    running
    paused
    completed
    failed
    cancelled
  }
}`) as unknown as TypedDocumentString<CancelJobMutation, CancelJobMutationVariables>;
export const ReportItemsDocument = new TypedDocumentString(`
    mutation ReportItems($jobId: ID!, $items: [ItemResultInput!]!) {
  reportItems(jobId: $jobId, items: $items) {
    id
    status
    completed
    failed
    total
  }
}
    `) as unknown as TypedDocumentString<ReportItemsMutation, ReportItemsMutationVariables>;
export const ReportStepDocument = new TypedDocumentString(`
    mutation ReportStep($jobId: ID!, $name: String!, $status: StepStatus!, $completed: Int, $total: Int, $error: String) {
  reportStep(
    jobId: $jobId
    name: $name
    status: $status
    completed: $completed
    total: $total
    error: $error
  ) {
    id
    status
  }
}
    `) as unknown as TypedDocumentString<ReportStepMutation, ReportStepMutationVariables>;
export const AppendLogsDocument = new TypedDocumentString(`
    mutation AppendLogs($jobId: ID!, $lines: [LogLineInput!]!) {
  appendLogs(jobId: $jobId, lines: $lines)
}
    `) as unknown as TypedDocumentString<AppendLogsMutation, AppendLogsMutationVariables>;