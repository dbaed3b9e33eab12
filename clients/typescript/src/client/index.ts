/**
 * runwatch's typed SDK.
 *
 * ```ts
 * import { RunwatchClient, ProgressReporter } from 'runwatch';
 * const client = new RunwatchClient({ url: 'http://127.0.0.1:4000', token: process.env.RUNWATCH_TOKEN! });
 * for await (const event of client.watchJob(id)) console.log(event.type, event.job.completed);
 * ```
 */
export { RunwatchClient, type ActivityEvent, type ActivitySnapshot, type Job, type JobPage, type JobViewToken, type RunwatchClientOptions } from './client.js';
export { ProgressReporter, type ProgressReporterOptions, type StartOptions } from './reporter.js';
export { isFinalEvent, type ProgressEvent, type RetryPolicy, type WatchOptions } from './watch.js';
export type { WaitOptions } from './wait.js';
export type { TokenSource } from './http.js';
export { JobCancelledError, JobFailedError, RunwatchError, WaitTimeoutError, type ClientErrorCode } from './errors.js';
export type { JobKind, JobStatus, ProgressEventType, CreateBatchJobInput } from './generated/graphql.js';
export * as documents from './generated/graphql.js';
