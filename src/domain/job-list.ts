/**
 * A tenant's live job list (`jobUpdates`): the topic log `joblist:<tenant>`
 * (domain/topics.ts), fed by the `joblist` projector from job changes, one
 * event per job created, per status change and per PROGRESS (which each job
 * already conflates to RUNWATCH_PROGRESS_HZ). Subscribers filter it
 * ({@link matchesJobFilter}) and resume from a cursor in it, like runProgress.
 */
import { encodeCursor } from './cursor.js';
import { isNewer, remember, type JobChangeRecord } from './changes.js';
import { viewJob, type JobKind, type JobStatus, type JobView, type ProgressEventType } from './job.js';

export const JOB_UPDATE_TYPES = ['SNAPSHOT', 'CREATED', 'STATUS', 'PROGRESS'] as const;
/** What a job update says. */
export type JobUpdateType = (typeof JOB_UPDATE_TYPES)[number];

/** One event of a tenant's job list. */
export interface JobUpdate {
  /** Position in the tenant's job list log; SNAPSHOT events carry the log's head offset. */
  offset: number;
  /** Opaque position; resume with `jobUpdates(after: cursor)`. */
  cursor: string;
  type: JobUpdateType;
  /** Epoch ms. */
  timestamp: number;
  /** The job right after the change. */
  job: JobView;
  /** The job's status before this update (STATUS: the status it left; otherwise its current one). */
  previousStatus: JobStatus | null;
}

/** Which jobs a list shows; empty or null fields match everything. */
export interface JobListFilter {
  status?: readonly JobStatus[] | null;
  kind?: readonly JobKind[] | null;
  /** Jobs carrying every one of these tags. */
  tags?: readonly string[] | null;
  parentId?: string | null;
}

/** Does a job match the filter? */
export function matchesJobFilter(job: { status: JobStatus; kind: JobKind; tags?: readonly string[] | null; parentId?: string | null }, filter: JobListFilter): boolean {
  if (filter.status?.length && !filter.status.includes(job.status)) return false;
  if (filter.kind?.length && !filter.kind.includes(job.kind)) return false;
  if (filter.tags?.length && !filter.tags.every((t) => (job.tags ?? []).includes(t))) return false;
  if (filter.parentId != null && (job.parentId ?? null) !== filter.parentId) return false;
  return true;
}

/**
 * Does an update concern a list with this filter? The job matches now, or matched before a status change
 * (so a list of RUNNING jobs sees the one that just COMPLETED leave).
 */
export function updateConcerns(update: JobUpdate, filter: JobListFilter): boolean {
  if (matchesJobFilter(update.job, filter)) return true;
  return update.previousStatus !== null && update.previousStatus !== update.job.status && matchesJobFilter({ ...update.job, status: update.previousStatus }, filter);
}

/** The state of a tenant's job list log: per job, the newest change applied and the status it left (bounded). */
export interface JobListState {
  jobs: Record<string, [offset: number, status: JobStatus]>;
}

/** Most jobs a tenant's job list state remembers (idempotency window; see domain/changes.ts `remember`). */
export const JOB_LIST_APPLIED_MAX = 1000;

/** Event types a list row must show at once (never conflated): status changes, and a job going stalled or recovering. */
const STATUS_EVENTS: ReadonlySet<ProgressEventType> = new Set(['STARTED', 'PAUSED', 'RESUMED', 'COMPLETED', 'FAILED', 'CANCELLED', 'STALLED', 'RECOVERED']);

/**
 * Event types whose change moves the job's numbers: PROGRESS (conflated per job), and STAGE, ITEM_FAILED, CHILD and
 * ITEM_RESULTS (which a report emits instead of a PROGRESS). LOG changes no number the list shows.
 */
const PROGRESS_EVENTS: ReadonlySet<ProgressEventType> = new Set(['PROGRESS', 'STAGE', 'ITEM_FAILED', 'CHILD', 'ITEM_RESULTS']);

/** The job-list update type of a change: CREATED, STATUS, PROGRESS, or null (nothing the list shows). */
export function updateTypeOf(change: JobChangeRecord): JobUpdateType | null {
  if (change.created) return 'CREATED';
  if (change.types.some((t) => STATUS_EVENTS.has(t))) return 'STATUS';
  if (change.types.some((t) => PROGRESS_EVENTS.has(t))) return 'PROGRESS';
  return null;
}

/**
 * The `joblist` projector's step on a tenant's job list log.
 * @param head the log's epoch and newest offset.
 * @returns the new state and the one event to append, or null when the change was applied already or the list
 *   shows nothing of it: applying the same change twice changes nothing the second time.
 */
export function projectJobList(
  state: JobListState | null,
  head: { epoch: string; offset: number },
  change: JobChangeRecord,
  nowMs: number,
): { state: JobListState; event: JobUpdate } | null {
  const seen = state?.jobs[change.jobId];
  if (!isNewer(change, seen?.[0])) return null;
  const type = updateTypeOf(change);
  if (!type) return null;
  const offset = head.offset + 1;
  const event: JobUpdate = {
    offset,
    cursor: encodeCursor(head.epoch, offset),
    type,
    timestamp: nowMs,
    job: viewJob(change.job, nowMs),
    previousStatus: seen?.[1] ?? null,
  };
  return { state: { jobs: remember(state?.jobs ?? {}, change.jobId, [change.offset, change.job.status], JOB_LIST_APPLIED_MAX) }, event };
}

/**
 * Did a subscriber's SNAPSHOT already show this update's state of the job? A fresh start reads the job list log's
 * head, then the jobs from the job store; the `joblist` projector may still be applying changes the store already
 * has (a job created just before the subscription), so they reach the log after the head and the subscriber after
 * its snapshot. Such an update is not newer than the snapshot's view of its job (by the job's own `lastCursor`:
 * same epoch, offset not past it) and is dropped: a row never goes back to an older state, and nothing is seen twice.
 * @param snapshotCursor the job's `lastCursor` in the snapshot (null: it had no event yet); undefined: the job was
 *   not in the snapshot (then nothing is dropped).
 */
export function shownBySnapshot(update: JobUpdate, snapshotCursor: string | null | undefined): boolean {
  if (snapshotCursor === undefined) return false;
  const seen = update.job.lastCursor;
  if (seen === null) return true; // the creation, or a change without event: the snapshot showed it or newer
  if (snapshotCursor === null) return false;
  const [shownEpoch, shownOffset] = splitCursor(snapshotCursor);
  const [epoch, offset] = splitCursor(seen);
  return epoch === shownEpoch && offset <= shownOffset;
}

const splitCursor = (cursor: string): [epoch: string, offset: number] => {
  const dot = cursor.lastIndexOf('.');
  return [cursor.slice(0, dot), Number(cursor.slice(dot + 1))];
};

/** A SNAPSHOT update of one job (a subscriber's fresh start), at the log's head offset. */
export function snapshotUpdate(job: JobView, head: { epoch: string; offset: number }, nowMs: number): JobUpdate {
  return { offset: head.offset, cursor: encodeCursor(head.epoch, head.offset), type: 'SNAPSHOT', timestamp: nowMs, job, previousStatus: job.status };
}
