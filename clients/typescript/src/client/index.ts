/**
 * runwatch's typed SDK.
 *
 * ```ts
 * import { RunwatchClient, ProgressReporter } from 'runwatch';
 * const client = new RunwatchClient({ url: 'http://127.0.0.1:4000', token: process.env.RUNWATCH_TOKEN! });
 * for await (const event of client.watchJob(id)) console.log(event.type, event.job.completed);
 * ```
 */
export {
  RunwatchClient,
  type ActivityEvent,
  type ActivitySnapshot,
  type Job,
  type JobCommand,
  type JobOutputs,
  type JobPage,
  type JobUpdate,
  type JobViewToken,
  type MetricPoint,
  type RunwatchClientOptions,
  type SendJobCommandOptions,
} from './client.js';
export { ProgressReporter, type ProgressReporterOptions, type StartOptions } from './reporter.js';
export type { CommandHandler, CommandListener } from './commands.js';
export type { ItemResult, LogLevelName } from './outputs.js';
export { isFinalEvent, type ProgressEvent, type RetryPolicy, type StreamOptions, type WatchOptions } from './watch.js';
export type { WaitOptions } from './wait.js';
export type { TokenSource } from './http.js';
export { JobCancelledError, JobFailedError, RunwatchError, WaitTimeoutError, type ClientErrorCode } from './errors.js';
export type { CreateBatchJobInput, JobCommandKind, JobCommandState, JobFilter, JobKind, JobStatus, JobUpdateType, LogLevel, ProgressEventType, StepStatus } from './generated/graphql.js';
export * as documents from './generated/graphql.js';
