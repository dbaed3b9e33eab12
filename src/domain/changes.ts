/**
 * Job changes as projectors see them. Every committed change of a job that
 * produced events (and every job creation) is appended, in the same atomic
 * step as the job's own commit, to the deployment's change log (backends:
 * ChangeFeed); projectors (parent aggregation, the tenant job list, training's
 * final status, account activity...) consume it from there instead of being
 * called inside the reporter's request.
 *
 * A change's position is the job's `offset` after it (the offset of its
 * newest event; 0 for the creation): per job it only grows, so a projector
 * that remembers the newest offset it applied per job applies every change
 * once, whatever the order or number of times the feed hands it over
 * ({@link isNewer}).
 */
import type { JobRecord, ProgressEventType } from './job.js';

/** One committed change of a job, as appended to the change log. */
export interface JobChangeRecord {
  /** The job's id. */
  jobId: string;
  /** The job's offset after the change: its position, for idempotency (0 for the creation). */
  offset: number;
  /** True for the job's creation (then `types` is empty). */
  created: boolean;
  /** The types of the events the change produced, in order (e.g. ['STARTED'], ['PROGRESS'], ['COMPLETED']). */
  types: ProgressEventType[];
  /** The job's record after the change. */
  job: JobRecord;
}

/** The change record of a job's creation. */
export const creationChange = (job: JobRecord): JobChangeRecord => ({ jobId: job.id, offset: job.offset, created: true, types: [], job });

/** The change record of a committed update, or null when it produced no event (a conflated report: its state travels with the next event). */
export function updateChange(job: JobRecord, types: readonly ProgressEventType[]): JobChangeRecord | null {
  return types.length === 0 ? null : { jobId: job.id, offset: job.offset, created: false, types: [...types], job };
}

/**
 * Is `change` newer than what a projector applied for its job? `applied` is the
 * offset of the newest change applied (undefined: none yet). A creation (offset
 * 0) is new only when nothing was applied.
 */
export function isNewer(change: JobChangeRecord, applied: number | undefined): boolean {
  return applied === undefined || change.offset > applied;
}

/**
 * The change-log partition of a job: FNV-1a of its id modulo `partitions`
 * (RUNWATCH_CHANGE_PARTITIONS). Every change of one job lands in one partition,
 * in commit order; partitions spread the writes so that no key is written by every commit.
 */
export function changePartition(jobId: string, partitions: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < jobId.length; i++) {
    h ^= jobId.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % Math.max(1, partitions);
}

/**
 * A bounded map of job id → newest applied offset, kept in a projection's
 * state for idempotency: at most `max` jobs, the least recently changed ones
 * forgotten first (a change of a forgotten job older than `max` changes of
 * other jobs is then applied again; projections choose `max` so that this
 * cannot happen in practice).
 */
export function remember(applied: Record<string, number>, jobId: string, offset: number, max: number): Record<string, number> {
  const next = { ...applied };
  delete next[jobId];
  next[jobId] = offset;
  const keys = Object.keys(next);
  for (let i = 0; i < keys.length - max; i++) delete next[keys[i]!];
  return next;
}
