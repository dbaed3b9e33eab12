"""The GraphQL operations the Python client sends (private; mirrors src/client/documents/*.graphql)."""

JOB_FIELDS = """
fragment JobFields on BatchJob {
  id kind name status total completed failed percent rate etaSeconds stage message errorMessage
  metadata createdAt startedAt finishedAt updatedAt lastCursor
  resources { containers cpuCores memoryGb gpus }
  parentId tags stalled heartbeatSeconds successRate
  childCounts { queued running paused completed failed cancelled }
}
"""

GET_JOB = "query GetJob($id: ID!) { batchJob(id: $id) { ...JobFields } }" + JOB_FIELDS

LIST_JOBS = """
query ListJobs($first: Int, $after: String, $status: [JobStatus!], $kind: [JobKind!], $tags: [String!], $parentId: ID) {
  batchJobs(first: $first, after: $after, status: $status, kind: $kind, tags: $tags, parentId: $parentId) {
    nodes { ...JobFields }
    pageInfo { hasNextPage endCursor }
  }
}""" + JOB_FIELDS

CREATE_JOB = "mutation CreateJob($input: CreateBatchJobInput!) { createBatchJob(input: $input) { ...JobFields } }" + JOB_FIELDS

REPORT_PROGRESS = """
mutation ReportProgress($input: ReportProgressInput!) {
  reportProgress(input: $input) { id status completed failed total }
}"""

COMPLETE_JOB = "mutation CompleteJob($id: ID!, $message: String) { completeBatchJob(id: $id, message: $message) { ...JobFields } }" + JOB_FIELDS
FAIL_JOB = "mutation FailJob($id: ID!, $error: String!) { failBatchJob(id: $id, error: $error) { ...JobFields } }" + JOB_FIELDS
CANCEL_JOB = "mutation CancelJob($id: ID!, $reason: String) { cancelBatchJob(id: $id, reason: $reason) { ...JobFields } }" + JOB_FIELDS

WATCH_JOB = """
subscription WatchJob($runId: ID!, $after: String, $items: Boolean, $logs: Boolean) {
  runProgress(runId: $runId, after: $after, items: $items, logs: $logs) {
    cursor runId type timestamp message childId job { ...JobFields }
    items { seq itemId ok latencySeconds error data timestamp metrics { name value } }
    logs { level message source droppedBefore timestamp }
    step { name status startedAt finishedAt durationSeconds completed total error }
  }
}""" + JOB_FIELDS

JOB_UPDATES = """
subscription JobUpdates($filter: JobFilter, $after: String) {
  jobUpdates(filter: $filter, after: $after) { type cursor timestamp previousStatus job { ...JobFields } }
}""" + JOB_FIELDS

PUBLISH_TRAINING_EVENTS = """
mutation PublishTrainingEvents($runId: ID!, $events: [TrainingEventInput!]!) {
  publishTrainingEvents(runId: $runId, events: $events)
}"""

COMMAND_FIELDS = "id runId command args state message createdAt expiresAt senderId"

SEND_TRAINING_COMMAND = """
mutation SendTrainingCommand($runId: ID!, $command: TrainingCommandKind!, $args: JSON, $ttlSeconds: Int) {
  sendTrainingCommand(runId: $runId, command: $command, args: $args, ttlSeconds: $ttlSeconds) { %s }
}""" % COMMAND_FIELDS

ACK_TRAINING_COMMAND = """
mutation AcknowledgeTrainingCommand($id: ID!, $accepted: Boolean!, $message: String) {
  acknowledgeTrainingCommand(id: $id, accepted: $accepted, message: $message) { %s }
}""" % COMMAND_FIELDS

GET_TRAINING_COMMAND = "query TrainingCommand($id: ID!) { trainingCommand(id: $id) { %s } }" % COMMAND_FIELDS

TRAINING_COMMANDS = "subscription TrainingCommands($runId: ID!) { trainingCommands(runId: $runId) { %s } }" % COMMAND_FIELDS

JOB_COMMAND_FIELDS = "id jobId command name args state message createdAt expiresAt senderId"

SEND_JOB_COMMAND = """
mutation SendJobCommand($jobId: ID!, $command: JobCommandKind!, $name: String, $args: JSON, $ttlSeconds: Int) {
  sendJobCommand(jobId: $jobId, command: $command, name: $name, args: $args, ttlSeconds: $ttlSeconds) { %s }
}""" % JOB_COMMAND_FIELDS

ACK_JOB_COMMAND = """
mutation AcknowledgeJobCommand($id: ID!, $accepted: Boolean!, $message: String) {
  acknowledgeJobCommand(id: $id, accepted: $accepted, message: $message) { %s }
}""" % JOB_COMMAND_FIELDS

RECENT_JOB_COMMANDS = "query JobCommands($jobId: ID!) { jobCommands(jobId: $jobId) { %s } }" % JOB_COMMAND_FIELDS

JOB_COMMANDS = "subscription JobCommands($jobId: ID!) { jobCommands(jobId: $jobId) { %s } }" % JOB_COMMAND_FIELDS

TRAINING_EVENTS = """
subscription TrainingEvents($runId: ID!, $types: [TrainingEventType!], $after: String, $minLogLevel: LogLevel) {
  trainingEvents(runId: $runId, types: $types, after: $after, minLogLevel: $minLogLevel) {
    __typename
    ... on TrainingEventBase { cursor runId timestamp snapshot }
    ... on TrainingProgress { step epoch epochStep globalStep maxStep maxEpoch loss learningRate etaSeconds }
    ... on TrainingStatusChange { status message error }
    ... on SampleGenerated { sampleId sampleType path url prompt step epoch thumbnail }
    ... on TrainingLog { level message source droppedBefore }
    ... on SystemStats { cpuPercent ramUsedGb ramTotalGb gpuUtilizationPercent gpuMemoryUsedGb gpuMemoryTotalGb }
    ... on ValidationResult { validationLoss step epoch metrics { name value } }
  }
}"""

_ACTIVE = "activeJobs { job { id name kind status completed total percent rate etaSeconds stage } resources { containers cpuCores memoryGb gpus } }"
_TOTALS = "totals { jobs containers cpuCores memoryGb gpus }"

ACTIVITY_NOW = """
query ActivityNow($scope: ActivityScope) {
  activity(scope: $scope) {
    scope timestamp %s %s
    budget { budgetTotal budgetUsed budgetRemaining currency percentUsed }
  }
}""" % (_TOTALS, _ACTIVE)

WATCH_ACTIVITY = """
subscription WatchActivity($scope: ActivityScope, $environmentId: ID) {
  activity(scope: $scope, environmentId: $environmentId) {
    __typename
    ... on ActivityUpdate { scope timestamp snapshot %s %s }
    ... on BillingUpdate { environmentId budgetTotal budgetUsed budgetRemaining currency percentUsed timestamp }
    ... on ActivityHint { kind message jobId environmentId droppedBefore timestamp }
    ... on ContextMismatch { message requestedEnvironmentId tokenEnvironmentId timestamp }
  }
}""" % (_TOTALS, _ACTIVE)

REPORT_ITEMS = """
mutation ReportItems($jobId: ID!, $items: [ItemResultInput!]!) {
  reportItems(jobId: $jobId, items: $items) { id status completed failed total }
}"""

REPORT_STEP = """
mutation ReportStep($jobId: ID!, $name: String!, $status: StepStatus!, $completed: Int, $total: Int, $error: String) {
  reportStep(jobId: $jobId, name: $name, status: $status, completed: $completed, total: $total, error: $error) { id status }
}"""

APPEND_LOGS = """
mutation AppendLogs($jobId: ID!, $lines: [LogLineInput!]!) {
  appendLogs(jobId: $jobId, lines: $lines)
}"""

METRIC_SERIES = """
query MetricSeries($jobId: ID!, $name: String!, $maxPoints: Int) {
  metricSeries(jobId: $jobId, name: $name, maxPoints: $maxPoints) { step value timestamp }
}"""
