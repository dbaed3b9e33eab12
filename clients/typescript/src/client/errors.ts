/**
 * Errors the SDK raises. Every one is a {@link RunwatchError} with a `code`:
 * the server's `extensions.code` (UNAUTHENTICATED, FORBIDDEN, NOT_FOUND,
 * BAD_USER_INPUT, CONFLICT, RATE_LIMITED, SERVICE_UNAVAILABLE, ...) or one of
 * the SDK's own (NETWORK, UNAVAILABLE, JOB_FAILED, JOB_CANCELLED, TIMEOUT, ABORTED).
 */
import type { JobFieldsFragment } from './generated/graphql.js';

/** Codes the SDK itself adds to the server's `extensions.code` values. */
export type ClientErrorCode = 'NETWORK' | 'UNAVAILABLE' | 'JOB_FAILED' | 'JOB_CANCELLED' | 'TIMEOUT' | 'ABORTED' | 'INTERNAL_SERVER_ERROR';

/** A failed runwatch call. `code` says what happened; `transient` says whether retrying may help. */
export class RunwatchError extends Error {
  constructor(
    /** The server's `extensions.code`, or a {@link ClientErrorCode}. */
    readonly code: string,
    message: string,
    /** True for failures a retry may cure (network, 5xx, SERVICE_UNAVAILABLE, RATE_LIMITED). */
    readonly transient = false,
    /** HTTP status when the failure came from an HTTP response. */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'RunwatchError';
  }
}

/** `waitForCompletion`: the job ended FAILED. `job.errorMessage` says why. */
export class JobFailedError extends RunwatchError {
  constructor(readonly job: JobFieldsFragment) {
    super('JOB_FAILED', `job ${job.id} (${job.name}) failed: ${job.errorMessage ?? 'no error message'}`);
    this.name = 'JobFailedError';
  }
}

/** `waitForCompletion`: the job was CANCELLED. `job.message` holds the reason when one was given. */
export class JobCancelledError extends RunwatchError {
  constructor(readonly job: JobFieldsFragment) {
    super('JOB_CANCELLED', `job ${job.id} (${job.name}) was cancelled${job.message ? `: ${job.message}` : ''}`);
    this.name = 'JobCancelledError';
  }
}

/** `waitForCompletion`: the job did not finish within `timeoutMs`. `job` is the last state seen (null if none arrived). */
export class WaitTimeoutError extends RunwatchError {
  constructor(
    readonly jobId: string,
    readonly timeoutMs: number,
    readonly job: JobFieldsFragment | null,
  ) {
    super('TIMEOUT', `job ${jobId} did not finish within ${timeoutMs} ms${job ? ` (last seen ${job.status} ${job.completed}/${job.total ?? '?'})` : ''}`);
    this.name = 'WaitTimeoutError';
  }
}

/** Codes of server errors a retry may cure. */
const TRANSIENT_CODES = new Set(['SERVICE_UNAVAILABLE', 'RATE_LIMITED', 'INTERNAL_SERVER_ERROR']);

/** Builds a RunwatchError from GraphQL `errors` (first error wins). */
export function fromGraphQLErrors(errors: readonly { message: string; extensions?: Record<string, unknown> }[], status?: number): RunwatchError {
  const first = errors[0];
  const code = typeof first?.extensions?.code === 'string' ? first.extensions.code : 'INTERNAL_SERVER_ERROR';
  return new RunwatchError(code, first?.message ?? 'unknown GraphQL error', TRANSIENT_CODES.has(code), status);
}
