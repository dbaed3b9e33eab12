/* eslint-disable */
import * as types from './graphql.js';



/**
 * Map of all GraphQL operations in the project.
 *
 * This map has several performance disadvantages:
 * 1. It is not tree-shakeable, so it will include all operations in the project.
 * 2. It is not minifiable, so the string of a GraphQL query will be multiple times inside the bundle.
 * 3. It does not support dead code elimination, so it will add unused operations.
 *
 * Therefore it is highly recommended to use the babel or swc plugin for production.
 * Learn more about it here: https://the-guild.dev/graphql/codegen/plugins/presets/preset-client#reducing-bundle-size
 */
type Documents = {
    "fragment ActiveJobFields on ActiveJob {\n  job {\n    id\n    name\n    kind\n    status\n    completed\n    total\n    percent\n  }\n  resources {\n    containers\n    cpuCores\n    memoryGb\n    gpus\n  }\n}\n\nfragment TotalsFields on ResourceTotals {\n  jobs\n  containers\n  cpuCores\n  memoryGb\n  gpus\n}\n\nquery ActivityNow($scope: ActivityScope) {\n  activity(scope: $scope) {\n    scope\n    timestamp\n    totals {\n      ...TotalsFields\n    }\n    activeJobs {\n      ...ActiveJobFields\n    }\n    budget {\n      budgetTotal\n      budgetUsed\n      budgetRemaining\n      currency\n      percentUsed\n    }\n  }\n}\n\nsubscription WatchActivity($scope: ActivityScope, $environmentId: ID) {\n  activity(scope: $scope, environmentId: $environmentId) {\n    __typename\n    ... on ActivityUpdate {\n      scope\n      timestamp\n      totals {\n        ...TotalsFields\n      }\n      activeJobs {\n        ...ActiveJobFields\n      }\n    }\n    ... on BillingUpdate {\n      budgetTotal\n      budgetUsed\n      budgetRemaining\n      currency\n      timestamp\n    }\n    ... on ActivityHint {\n      kind\n      message\n      jobId\n      timestamp\n    }\n    ... on ContextMismatch {\n      message\n    }\n  }\n}": typeof types.ActiveJobFieldsFragmentDoc,
    "fragment JobFields on BatchJob {\n  id\n  kind\n  name\n  status\n  total\n  completed\n  failed\n  percent\n  rate\n  etaSeconds\n  stage\n  message\n  errorMessage\n  metadata\n  createdAt\n  startedAt\n  finishedAt\n  updatedAt\n  lastCursor\n}\n\nquery GetJob($id: ID!) {\n  batchJob(id: $id) {\n    ...JobFields\n  }\n}\n\nquery ListJobs($first: Int, $after: String, $status: [JobStatus!], $kind: [JobKind!]) {\n  batchJobs(first: $first, after: $after, status: $status, kind: $kind) {\n    nodes {\n      ...JobFields\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}": typeof types.JobFieldsFragmentDoc,
    "mutation CreateJobViewToken($jobId: ID!, $ttlSeconds: Int) {\n  createJobViewToken(jobId: $jobId, ttlSeconds: $ttlSeconds) {\n    token\n    jobId\n    expiresAt\n    dashboardPath\n  }\n}": typeof types.CreateJobViewTokenDocument,
    "subscription WatchJob($runId: ID!, $after: String) {\n  runProgress(runId: $runId, after: $after) {\n    cursor\n    runId\n    type\n    timestamp\n    message\n    job {\n      ...JobFields\n    }\n  }\n}": typeof types.WatchJobDocument,
    "mutation CreateJob($input: CreateBatchJobInput!) {\n  createBatchJob(input: $input) {\n    ...JobFields\n  }\n}\n\nmutation ReportProgress($input: ReportProgressInput!) {\n  reportProgress(input: $input) {\n    id\n    status\n    completed\n    failed\n    total\n  }\n}\n\nmutation CompleteJob($id: ID!, $message: String) {\n  completeBatchJob(id: $id, message: $message) {\n    ...JobFields\n  }\n}\n\nmutation FailJob($id: ID!, $error: String!) {\n  failBatchJob(id: $id, error: $error) {\n    ...JobFields\n  }\n}\n\nmutation CancelJob($id: ID!, $reason: String) {\n  cancelBatchJob(id: $id, reason: $reason) {\n    ...JobFields\n  }\n}": typeof types.CreateJobDocument,
};
const documents: Documents = {
    "fragment ActiveJobFields on ActiveJob {\n  job {\n    id\n    name\n    kind\n    status\n    completed\n    total\n    percent\n  }\n  resources {\n    containers\n    cpuCores\n    memoryGb\n    gpus\n  }\n}\n\nfragment TotalsFields on ResourceTotals {\n  jobs\n  containers\n  cpuCores\n  memoryGb\n  gpus\n}\n\nquery ActivityNow($scope: ActivityScope) {\n  activity(scope: $scope) {\n    scope\n    timestamp\n    totals {\n      ...TotalsFields\n    }\n    activeJobs {\n      ...ActiveJobFields\n    }\n    budget {\n      budgetTotal\n      budgetUsed\n      budgetRemaining\n      currency\n      percentUsed\n    }\n  }\n}\n\nsubscription WatchActivity($scope: ActivityScope, $environmentId: ID) {\n  activity(scope: $scope, environmentId: $environmentId) {\n    __typename\n    ... on ActivityUpdate {\n      scope\n      timestamp\n      totals {\n        ...TotalsFields\n      }\n      activeJobs {\n        ...ActiveJobFields\n      }\n    }\n    ... on BillingUpdate {\n      budgetTotal\n      budgetUsed\n      budgetRemaining\n      currency\n      timestamp\n    }\n    ... on ActivityHint {\n      kind\n      message\n      jobId\n      timestamp\n    }\n    ... on ContextMismatch {\n      message\n    }\n  }\n}": types.ActiveJobFieldsFragmentDoc,
    "fragment JobFields on BatchJob {\n  id\n  kind\n  name\n  status\n  total\n  completed\n  failed\n  percent\n  rate\n  etaSeconds\n  stage\n  message\n  errorMessage\n  metadata\n  createdAt\n  startedAt\n  finishedAt\n  updatedAt\n  lastCursor\n}\n\nquery GetJob($id: ID!) {\n  batchJob(id: $id) {\n    ...JobFields\n  }\n}\n\nquery ListJobs($first: Int, $after: String, $status: [JobStatus!], $kind: [JobKind!]) {\n  batchJobs(first: $first, after: $after, status: $status, kind: $kind) {\n    nodes {\n      ...JobFields\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}": types.JobFieldsFragmentDoc,
    "mutation CreateJobViewToken($jobId: ID!, $ttlSeconds: Int) {\n  createJobViewToken(jobId: $jobId, ttlSeconds: $ttlSeconds) {\n    token\n    jobId\n    expiresAt\n    dashboardPath\n  }\n}": types.CreateJobViewTokenDocument,
    "subscription WatchJob($runId: ID!, $after: String) {\n  runProgress(runId: $runId, after: $after) {\n    cursor\n    runId\n    type\n    timestamp\n    message\n    job {\n      ...JobFields\n    }\n  }\n}": types.WatchJobDocument,
    "mutation CreateJob($input: CreateBatchJobInput!) {\n  createBatchJob(input: $input) {\n    ...JobFields\n  }\n}\n\nmutation ReportProgress($input: ReportProgressInput!) {\n  reportProgress(input: $input) {\n    id\n    status\n    completed\n    failed\n    total\n  }\n}\n\nmutation CompleteJob($id: ID!, $message: String) {\n  completeBatchJob(id: $id, message: $message) {\n    ...JobFields\n  }\n}\n\nmutation FailJob($id: ID!, $error: String!) {\n  failBatchJob(id: $id, error: $error) {\n    ...JobFields\n  }\n}\n\nmutation CancelJob($id: ID!, $reason: String) {\n  cancelBatchJob(id: $id, reason: $reason) {\n    ...JobFields\n  }\n}": types.CreateJobDocument,
};

/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "fragment ActiveJobFields on ActiveJob {\n  job {\n    id\n    name\n    kind\n    status\n    completed\n    total\n    percent\n  }\n  resources {\n    containers\n    cpuCores\n    memoryGb\n    gpus\n  }\n}\n\nfragment TotalsFields on ResourceTotals {\n  jobs\n  containers\n  cpuCores\n  memoryGb\n  gpus\n}\n\nquery ActivityNow($scope: ActivityScope) {\n  activity(scope: $scope) {\n    scope\n    timestamp\n    totals {\n      ...TotalsFields\n    }\n    activeJobs {\n      ...ActiveJobFields\n    }\n    budget {\n      budgetTotal\n      budgetUsed\n      budgetRemaining\n      currency\n      percentUsed\n    }\n  }\n}\n\nsubscription WatchActivity($scope: ActivityScope, $environmentId: ID) {\n  activity(scope: $scope, environmentId: $environmentId) {\n    __typename\n    ... on ActivityUpdate {\n      scope\n      timestamp\n      totals {\n        ...TotalsFields\n      }\n      activeJobs {\n        ...ActiveJobFields\n      }\n    }\n    ... on BillingUpdate {\n      budgetTotal\n      budgetUsed\n      budgetRemaining\n      currency\n      timestamp\n    }\n    ... on ActivityHint {\n      kind\n      message\n      jobId\n      timestamp\n    }\n    ... on ContextMismatch {\n      message\n    }\n  }\n}"): typeof import('./graphql.js').ActiveJobFieldsFragmentDoc;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "fragment JobFields on BatchJob {\n  id\n  kind\n  name\n  status\n  total\n  completed\n  failed\n  percent\n  rate\n  etaSeconds\n  stage\n  message\n  errorMessage\n  metadata\n  createdAt\n  startedAt\n  finishedAt\n  updatedAt\n  lastCursor\n}\n\nquery GetJob($id: ID!) {\n  batchJob(id: $id) {\n    ...JobFields\n  }\n}\n\nquery ListJobs($first: Int, $after: String, $status: [JobStatus!], $kind: [JobKind!]) {\n  batchJobs(first: $first, after: $after, status: $status, kind: $kind) {\n    nodes {\n      ...JobFields\n    }\n    pageInfo {\n      hasNextPage\n      endCursor\n    }\n  }\n}"): typeof import('./graphql.js').JobFieldsFragmentDoc;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation CreateJobViewToken($jobId: ID!, $ttlSeconds: Int) {\n  createJobViewToken(jobId: $jobId, ttlSeconds: $ttlSeconds) {\n    token\n    jobId\n    expiresAt\n    dashboardPath\n  }\n}"): typeof import('./graphql.js').CreateJobViewTokenDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "subscription WatchJob($runId: ID!, $after: String) {\n  runProgress(runId: $runId, after: $after) {\n    cursor\n    runId\n    type\n    timestamp\n    message\n    job {\n      ...JobFields\n    }\n  }\n}"): typeof import('./graphql.js').WatchJobDocument;
/**
 * The graphql function is used to parse GraphQL queries into a document that can be used by GraphQL clients.
 */
export function graphql(source: "mutation CreateJob($input: CreateBatchJobInput!) {\n  createBatchJob(input: $input) {\n    ...JobFields\n  }\n}\n\nmutation ReportProgress($input: ReportProgressInput!) {\n  reportProgress(input: $input) {\n    id\n    status\n    completed\n    failed\n    total\n  }\n}\n\nmutation CompleteJob($id: ID!, $message: String) {\n  completeBatchJob(id: $id, message: $message) {\n    ...JobFields\n  }\n}\n\nmutation FailJob($id: ID!, $error: String!) {\n  failBatchJob(id: $id, error: $error) {\n    ...JobFields\n  }\n}\n\nmutation CancelJob($id: ID!, $reason: String) {\n  cancelBatchJob(id: $id, reason: $reason) {\n    ...JobFields\n  }\n}"): typeof import('./graphql.js').CreateJobDocument;


export function graphql(source: string) {
  return (documents as any)[source] ?? {};
}
