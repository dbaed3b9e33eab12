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

export type JobFieldsFragment = { id: string, kind: JobKind, name: string, status: JobStatus, total: number | null, completed: number, failed: number, percent: number | null, rate: number | null, etaSeconds: number | null, stage: string | null, message: string | null, errorMessage: string | null, metadata: unknown, createdAt: string, startedAt: string | null, finishedAt: string | null, updatedAt: string, lastCursor: string | null };

export type GetJobQueryVariables = Exact<{
  id: string;
}>;


export type GetJobQuery = { batchJob: { id: string, kind: JobKind, name: string, status: JobStatus, total: number | null, completed: number, failed: number, percent: number | null, rate: number | null, etaSeconds: number | null, stage: string | null, message: string | null, errorMessage: string | null, metadata: unknown, createdAt: string, startedAt: string | null, finishedAt: string | null, updatedAt: string, lastCursor: string | null } | null };

export type ListJobsQueryVariables = Exact<{
  first?: number | null | undefined;
  after?: string | null | undefined;
  status?: Array<JobStatus> | JobStatus | null | undefined;
  kind?: Array<JobKind> | JobKind | null | undefined;
}>;


export type ListJobsQuery = { batchJobs: { nodes: Array<{ id: string, kind: JobKind, name: string, status: JobStatus, total: number | null, completed: number, failed: number, percent: number | null, rate: number | null, etaSeconds: number | null, stage: string | null, message: string | null, errorMessage: string | null, metadata: unknown, createdAt: string, startedAt: string | null, finishedAt: string | null, updatedAt: string, lastCursor: string | null }>, pageInfo: { hasNextPage: boolean, endCursor: string | null } } };

export type CreateJobViewTokenMutationVariables = Exact<{
  jobId: string;
  ttlSeconds?: number | null | undefined;
}>;


export type CreateJobViewTokenMutation = { createJobViewToken: { token: string, jobId: string, expiresAt: string, dashboardPath: string } };

export type WatchJobSubscriptionVariables = Exact<{
  runId: string;
  after?: string | null | undefined;
}>;


export type WatchJobSubscription = { runProgress: { cursor: string, runId: string, type: ProgressEventType, timestamp: string, message: string | null, job: { id: string, kind: JobKind, name: string, status: JobStatus, total: number | null, completed: number, failed: number, percent: number | null, rate: number | null, etaSeconds: number | null, stage: string | null, message: string | null, errorMessage: string | null, metadata: unknown, createdAt: string, startedAt: string | null, finishedAt: string | null, updatedAt: string, lastCursor: string | null } } };

export type CreateJobMutationVariables = Exact<{
  input: CreateBatchJobInput;
}>;


export type CreateJobMutation = { createBatchJob: { id: string, kind: JobKind, name: string, status: JobStatus, total: number | null, completed: number, failed: number, percent: number | null, rate: number | null, etaSeconds: number | null, stage: string | null, message: string | null, errorMessage: string | null, metadata: unknown, createdAt: string, startedAt: string | null, finishedAt: string | null, updatedAt: string, lastCursor: string | null } };

export type ReportProgressMutationVariables = Exact<{
  input: ReportProgressInput;
}>;


export type ReportProgressMutation = { reportProgress: { id: string, status: JobStatus, completed: number, failed: number, total: number | null } };

export type CompleteJobMutationVariables = Exact<{
  id: string;
  message?: string | null | undefined;
}>;


export type CompleteJobMutation = { completeBatchJob: { id: string, kind: JobKind, name: string, status: JobStatus, total: number | null, completed: number, failed: number, percent: number | null, rate: number | null, etaSeconds: number | null, stage: string | null, message: string | null, errorMessage: string | null, metadata: unknown, createdAt: string, startedAt: string | null, finishedAt: string | null, updatedAt: string, lastCursor: string | null } };

export type FailJobMutationVariables = Exact<{
  id: string;
  error: string;
}>;


export type FailJobMutation = { failBatchJob: { id: string, kind: JobKind, name: string, status: JobStatus, total: number | null, completed: number, failed: number, percent: number | null, rate: number | null, etaSeconds: number | null, stage: string | null, message: string | null, errorMessage: string | null, metadata: unknown, createdAt: string, startedAt: string | null, finishedAt: string | null, updatedAt: string, lastCursor: string | null } };

export type CancelJobMutationVariables = Exact<{
  id: string;
  reason?: string | null | undefined;
}>;


export type CancelJobMutation = { cancelBatchJob: { id: string, kind: JobKind, name: string, status: JobStatus, total: number | null, completed: number, failed: number, percent: number | null, rate: number | null, etaSeconds: number | null, stage: string | null, message: string | null, errorMessage: string | null, metadata: unknown, createdAt: string, startedAt: string | null, finishedAt: string | null, updatedAt: string, lastCursor: string | null } };

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
}
    `, {"fragmentName":"JobFields"}) as unknown as TypedDocumentString<JobFieldsFragment, unknown>;
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
}`) as unknown as TypedDocumentString<GetJobQuery, GetJobQueryVariables>;
export const ListJobsDocument = new TypedDocumentString(`
    query ListJobs($first: Int, $after: String, $status: [JobStatus!], $kind: [JobKind!]) {
  batchJobs(first: $first, after: $after, status: $status, kind: $kind) {
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
}`) as unknown as TypedDocumentString<ListJobsQuery, ListJobsQueryVariables>;
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
    subscription WatchJob($runId: ID!, $after: String) {
  runProgress(runId: $runId, after: $after) {
    cursor
    runId
    type
    timestamp
    message
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
}`) as unknown as TypedDocumentString<CancelJobMutation, CancelJobMutationVariables>;