/**
 * `waitForCompletion`: a job's stream reduced to one outcome.
 */
import { JobCancelledError, JobFailedError, RunwatchError, WaitTimeoutError } from './errors.js';
import type { JobFieldsFragment } from './generated/graphql.js';
import type { ProgressEvent, WatchOptions } from './watch.js';

/** Options of `waitForCompletion`. */
export interface WaitOptions extends Omit<WatchOptions, 'signal'> {
  /** Called with the job after every event (the first is the current state). Errors it throws are ignored. */
  onProgress?: ((job: JobFieldsFragment, event: ProgressEvent) => void) | undefined;
  /** Give up after this many milliseconds with WaitTimeoutError; default: wait forever. */
  timeoutMs?: number | undefined;
  /** Aborting rejects with a RunwatchError ABORTED. */
  signal?: AbortSignal | undefined;
}

/**
 * Consumes a watch until the job is final.
 * @throws JobFailedError, JobCancelledError, WaitTimeoutError, RunwatchError (watch errors; ABORTED).
 */
export async function waitForJob(
  watch: (signal: AbortSignal) => AsyncIterable<ProgressEvent>,
  jobId: string,
  opts: WaitOptions,
): Promise<JobFieldsFragment> {
  const controller = new AbortController();
  let timedOut = false;
  const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => ((timedOut = true), controller.abort()), opts.timeoutMs);
  const onAbort = () => controller.abort();
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  let last: JobFieldsFragment | null = null;
  try {
    for await (const event of watch(controller.signal)) {
      last = event.job;
      try {
        opts.onProgress?.(event.job, event);
      } catch {
        // a callback's bug must not end the wait
      }
      if (event.type === 'PROGRESS') continue;
      if (event.job.status === 'COMPLETED') return event.job;
      if (event.job.status === 'FAILED') throw new JobFailedError(event.job);
      if (event.job.status === 'CANCELLED') throw new JobCancelledError(event.job);
    }
    if (timedOut) throw new WaitTimeoutError(jobId, opts.timeoutMs!, last);
    throw new RunwatchError(opts.signal?.aborted ? 'ABORTED' : 'UNAVAILABLE', `watching job ${jobId} ended before it finished`);
  } finally {
    clearTimeout(timer);
    opts.signal?.removeEventListener('abort', onAbort);
  }
}
