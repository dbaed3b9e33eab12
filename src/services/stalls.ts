/**
 * Stall detection (RUNWATCH_STALL_SECONDS; `heartbeatSeconds` per job): a
 * RUNNING job with no report for its heartbeat gets `stalled: true` and one
 * STALLED event; its next report clears it with RECOVERED (domain/job.ts
 * `stallCheck`, `applyProgress`).
 *
 * Cost and correctness with several instances:
 * - One sweep timer per instance (every `sweepIntervalMs`), never a timer per
 *   job: each open job with a heartbeat has one check time in the backend's
 *   {@link DeadlineIndex} (memory: a heap; Redis: sharded sorted sets). It is
 *   written when the job is created (JobService.create, domain `firstStallCheckAt`) and moved by
 *   the sweep; reports never touch it (the record decides, the index only
 *   says when to look).
 * - A sweep claims the due entries (atomically, with a lease, so instances
 *   split the work and an instance that dies mid-sweep hands its claims on
 *   after the lease) and commits each STALLED through the job's
 *   compare-and-set update: should two instances check one job, only one
 *   STALLED commits. Exactly one STALLED per stall across the deployment.
 */
import type { Backend } from '../backends/types.js';
import { DomainError, isUnavailable } from '../domain/errors.js';
import { stallCheck } from '../domain/job.js';
import type { Clock } from './clock.js';

/** Settings of {@link StallService}. */
export interface StallServiceOptions {
  /** Ms between sweeps on this instance (default 1000): a stall is seen at most this late. */
  sweepIntervalMs?: number;
  /** Ms a claimed entry stays with this instance before another may claim it (default 30 000). */
  leaseMs?: number;
  /** Most jobs checked per sweep (default 500); the rest wait for the next sweep. */
  batch?: number;
  onError?: (message: string, error: unknown) => void;
}

export class StallService {
  private timer: NodeJS.Timeout | null = null;
  private sweeping: Promise<number> | null = null;
  private readonly intervalMs: number;

  constructor(
    private readonly backend: Backend,
    private readonly clock: Clock,
    private readonly opts: StallServiceOptions = {},
  ) {
    this.intervalMs = opts.sweepIntervalMs ?? 1000;
  }

  /** Starts this instance's sweep timer (one per instance; unref'd). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.sweep(), this.intervalMs);
    this.timer.unref();
  }

  /**
   * One sweep: claims the due jobs and checks each (STALLED when due,
   * otherwise its next check time). Sweeps on one instance never overlap.
   * @returns the number of STALLED events this sweep committed.
   */
  sweep(): Promise<number> {
    this.sweeping ??= this.sweepOnce()
      .catch((error: unknown) => {
        if (!isUnavailable(error)) this.opts.onError?.('stall sweep failed', error);
        return 0;
      })
      .finally(() => {
        this.sweeping = null;
      });
    return this.sweeping;
  }

  private async sweepOnce(): Promise<number> {
    const now = this.clock();
    const due = await this.backend.deadlines.claimDue(now, this.opts.leaseMs ?? 30_000, this.opts.batch ?? 500);
    let stalled = 0;
    await Promise.all(
      due.map(async (jobId) => {
        try {
          if (await this.check(jobId)) stalled++;
        } catch (error) {
          // The claim's lease brings the job back; nothing is lost.
          if (!isUnavailable(error)) this.opts.onError?.(`stall check of job ${jobId} failed`, error);
        }
      }),
    );
    return stalled;
  }

  private async check(jobId: string): Promise<boolean> {
    let next: number | null = null;
    let committed;
    try {
      committed = await this.backend.store.update(jobId, (job) => {
        const result = stallCheck(job, this.clock());
        next = result.nextCheckAtMs;
        return result.change;
      });
    } catch (error) {
      // Removed (retention): forget it.
      if (error instanceof DomainError && error.code === 'NOT_FOUND') {
        await this.backend.deadlines.remove(jobId);
        return false;
      }
      throw error;
    }
    if (next === null) await this.backend.deadlines.remove(jobId);
    else await this.backend.deadlines.schedule(jobId, next);
    // The STALLED commit is in the job's change log: activity hints and webhooks follow as projectors.
    return committed !== null;
  }

  /** Stops the sweep timer. */
  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
