/**
 * The one write path of jobs, shared by every service that moves a job (jobs,
 * training, the parent aggregation): a domain change committed through the
 * store's atomic update, and the trailing-edge flush of conflated PROGRESS
 * (one timer per job with a pending flush, on the instance that deferred it —
 * never per subscriber). Services depend on it instead of on each other.
 *
 * What reacts to a committed change (training's final status, activity, a
 * parent's aggregate, the job list) does not run here: the commit appends the
 * change to the change log and projectors apply it (backends ChangeFeed).
 */
import type { Backend, ChangeFeed, EventBus } from '../backends/types.js';
import { DomainError, isUnavailable } from '../domain/errors.js';
import { flushProgress, type JobChange, type JobRecord } from '../domain/job.js';
import { StreamKinds } from './stream-kinds.js';

/** Settings of {@link JobWriter}. */
export interface JobWriterOptions {
  /** RUNWATCH_PROGRESS_HZ: most PROGRESS events per second per job. */
  progressHz: number;
  onError?: (message: string, error: unknown) => void;
}

/** See the module comment. */
export class JobWriter {
  /** 1000 / RUNWATCH_PROGRESS_HZ: milliseconds between PROGRESS events of one job. */
  readonly intervalMs: number;
  private readonly flushTimers = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly backend: Backend,
    private readonly clock: () => number,
    private readonly opts: JobWriterOptions,
  ) {
    this.intervalMs = 1000 / opts.progressHz;
  }

  /** Jobs with a conflation flush timer pending on this instance (at most one each; diagnostics, tests). */
  get pendingFlushes(): number {
    return this.flushTimers.size;
  }

  /**
   * Applies `apply` to the job atomically (see JobStore.update) and schedules the flush it asks for.
   * `apply` may run more than once, must be pure, and may throw a DomainError (nothing changes); returning null commits nothing.
   * @returns the committed change, or null.
   * @throws DomainError NOT_FOUND (no such job), whatever `apply` throws, SERVICE_UNAVAILABLE (Redis away).
   */
  async change(jobId: string, apply: (job: JobRecord, nowMs: number) => JobChange | null): Promise<JobChange | null> {
    const change = await this.backend.store.update(jobId, (job) => apply(job, this.clock()));
    if (change?.flushAtMs != null) this.scheduleFlush(jobId, change.flushAtMs);
    return change;
  }

  /** One timer per job: when it fires, the owed PROGRESS goes out if no newer event already carried the state. */
  scheduleFlush(jobId: string, atMs: number): void {
    if (this.flushTimers.has(jobId)) return;
    const timer = setTimeout(() => {
      this.flushTimers.delete(jobId);
      this.backend.store
        .update(jobId, (job) => flushProgress(job, this.clock(), this.intervalMs))
        .then((change) => {
          if (change?.flushAtMs != null) this.scheduleFlush(jobId, change.flushAtMs);
        })
        .catch((error) => {
          // The job is gone or finished: nothing is owed. Redis away: try again later.
          if (error instanceof DomainError && error.code !== 'SERVICE_UNAVAILABLE') return;
          if (!isUnavailable(error)) this.opts.onError?.(`conflation flush of job ${jobId} failed; retrying`, error);
          this.scheduleFlush(jobId, this.clock() + this.intervalMs);
        });
    }, Math.max(0, atMs - this.clock()));
    timer.unref();
    this.flushTimers.set(jobId, timer);
  }

  /** Shutdown: stops the flush timers. */
  close(): void {
    for (const timer of this.flushTimers.values()) clearTimeout(timer);
    this.flushTimers.clear();
  }
}

/**
 * What every service is made with: the backend, the stream kinds of its bus,
 * the job write path, and the clock. One per server (so one flush timer per
 * job and one gap handler per bus).
 */
export interface Infra {
  backend: Backend;
  bus: EventBus;
  changes: ChangeFeed;
  kinds: StreamKinds;
  writer: JobWriter;
  /** Epoch ms now. */
  clock: () => number;
}

/** Makes the {@link Infra} of one server. */
export function createInfra(backend: Backend, clock: () => number, opts: JobWriterOptions): Infra {
  return { backend, bus: backend.bus, changes: backend.changes, kinds: new StreamKinds(backend.bus), writer: new JobWriter(backend, clock, opts), clock };
}
