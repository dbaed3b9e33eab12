/**
 * Account activity: which jobs are active in a scope, what they hold, the
 * totals, and the throttling of hints. Pure.
 *
 * Scopes, all inside the caller's institute:
 * - USER: the caller's own jobs in the token's environment;
 * - ENVIRONMENT: every job of the token's environment;
 * - INSTITUTE: every job of every environment of the institute.
 * A job is active while RUNNING or PAUSED (a paused job may still hold its resources).
 */
import { isNewer, remember, type JobChangeRecord } from './changes.js';
import type { JobRecord, JobStatus, Resources } from './job.js';

export const ACTIVITY_SCOPES = ['USER', 'ENVIRONMENT', 'INSTITUTE'] as const;
/** How wide an activity view is. */
export type ActivityScope = (typeof ACTIVITY_SCOPES)[number];

/** One active job, as the institute's activity state keeps it. */
export interface ActiveJobEntry {
  jobId: string;
  environment: string;
  ownerId: string;
  status: JobStatus;
  resources: Resources | null;
}

/** The activity state of an institute: its active jobs by id. */
export interface ActivityState {
  jobs: Record<string, ActiveJobEntry>;
  /** Per job, the offset of the newest change applied (idempotency of {@link projectActivity}); bounded. */
  applied?: Record<string, number>;
}

/** Most jobs whose applied offset an institute's activity state remembers. */
export const ACTIVITY_APPLIED_MAX = 5000;

/** Sums over active jobs. Memory in GB. */
export interface ResourceTotals {
  jobs: number;
  containers: number;
  cpuCores: number;
  memoryGb: number;
  gpus: number;
}

export const HINT_KINDS = ['JOB_STARTED', 'JOB_FINISHED', 'JOB_FAILED', 'JOB_CANCELLED', 'NEAR_BUDGET', 'OVER_BUDGET'] as const;
/** What a hint is about. */
export type HintKind = (typeof HINT_KINDS)[number];

/** A short notice for people watching activity. */
export interface Hint {
  kind: HintKind;
  message: string;
  /** The job it is about, for job hints. */
  jobId: string | null;
  environment: string;
  /** For job hints: the job's owner (USER scope routing). */
  ownerId: string | null;
  /** Epoch ms. */
  timestamp: number;
}

export const isActive = (status: JobStatus) => status === 'RUNNING' || status === 'PAUSED';

const sameResources = (a: Resources | null, b: Resources | null) => JSON.stringify(a) === JSON.stringify(b);

/** Who the viewer is, for scope matching. */
export interface ScopeViewer {
  userId: string;
  environment: string;
}

/** Is the entry inside the scope of this viewer (same institute assumed)? */
export function inScope(entry: { environment: string; ownerId: string }, scope: ActivityScope, viewer: ScopeViewer): boolean {
  if (scope === 'INSTITUTE') return true;
  if (entry.environment !== viewer.environment) return false;
  return scope === 'ENVIRONMENT' || entry.ownerId === viewer.userId;
}

/** The state with one job's entry set (or removed when `entry` is null). */
export function withEntry(state: ActivityState | null, jobId: string, entry: ActiveJobEntry | null): ActivityState {
  const jobs = { ...(state?.jobs ?? {}) };
  if (entry) jobs[jobId] = entry;
  else delete jobs[jobId];
  return { ...state, jobs };
}

/**
 * The activity projection of one job change (the `activity` projector): the
 * institute's state compared with the job after the change — its entry set,
 * changed or removed — and the hint the change's events raise (STARTED,
 * COMPLETED, FAILED, CANCELLED).
 * @returns null when the change was applied already (offset not newer than the
 *   one remembered for the job) or changes nothing activity shows; otherwise the
 *   new state and the hint (null: none).
 */
export function projectActivity(state: ActivityState | null, change: JobChangeRecord, nowMs: number): { state: ActivityState; hint: Hint | null } | null {
  if (!isNewer(change, state?.applied?.[change.jobId])) return null;
  const job = change.job;
  const before = state?.jobs[change.jobId] ?? null;
  const entry = isActive(job.status)
    ? { jobId: job.id, environment: job.tenant.environment, ownerId: job.ownerId, status: job.status, resources: job.resources }
    : null;
  const make = (kind: HintKind, message: string): Hint => ({ kind, message, jobId: job.id, environment: job.tenant.environment, ownerId: job.ownerId, timestamp: nowMs });
  let hint: Hint | null = null;
  // Like the active set, hints are about jobs that were active (finished) or become active (started).
  if (before === null && entry === null) hint = null;
  else if (change.types.includes('COMPLETED')) hint = make('JOB_FINISHED', `${job.name} finished`);
  else if (change.types.includes('FAILED')) hint = make('JOB_FAILED', `${job.name} failed${job.errorMessage ? `: ${job.errorMessage}` : ''}`);
  else if (change.types.includes('CANCELLED')) hint = make('JOB_CANCELLED', `${job.name} was cancelled`);
  else if (change.types.includes('STARTED')) hint = make('JOB_STARTED', `${job.name} started`);
  const same = before === null ? entry === null : entry !== null && before.status === entry.status && sameResources(before.resources, entry.resources);
  if (same && !hint) return null;
  const next = withEntry(state, job.id, entry);
  return { state: { ...next, applied: remember(state?.applied ?? {}, job.id, change.offset, ACTIVITY_APPLIED_MAX) }, hint };
}

/** The active entries in a scope, oldest job id first (ids sort by creation time). */
export function entriesInScope(state: ActivityState | null, scope: ActivityScope, viewer: ScopeViewer): ActiveJobEntry[] {
  return Object.values(state?.jobs ?? {})
    .filter((e) => inScope(e, scope, viewer))
    .sort((a, b) => (a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0));
}

/** Sums the resources of entries; a job without resources counts as holding nothing. */
export function totalsOf(entries: readonly { resources: Resources | null }[]): ResourceTotals {
  const t: ResourceTotals = { jobs: entries.length, containers: 0, cpuCores: 0, memoryGb: 0, gpus: 0 };
  for (const { resources: r } of entries) {
    if (!r) continue;
    t.containers += r.containers;
    t.cpuCores += r.cpuCores;
    t.memoryGb += r.memoryGb;
    t.gpus += r.gpus;
  }
  return t;
}

/** Throttle of one scope topic's hints: at most one per `intervalMs`; up to `maxQueued` wait, older ones beyond are dropped and counted. */
export interface HintThrottleState {
  lastSentMs: number | null;
  queue: Hint[];
  /** Hints dropped since the last one sent. */
  dropped: number;
}

/** A hint as sent, with how many were dropped just before it. */
export type ThrottledHint = Hint & { droppedBefore: number };

export const emptyHintThrottle = (): HintThrottleState => ({ lastSentMs: null, queue: [], dropped: 0 });

/** Default: one hint a second, ten waiting at most. */
export const HINT_THROTTLE = { intervalMs: 1000, maxQueued: 10 } as const;

/**
 * Offers a hint (or none, for a timer tick) at `nowMs`.
 * @returns the hint to send now (if any) and when to call again (if hints wait).
 */
export function throttleHint(
  s: HintThrottleState,
  hint: Hint | null,
  nowMs: number,
  opts: { intervalMs: number; maxQueued: number } = HINT_THROTTLE,
): { state: HintThrottleState; send: ThrottledHint | null; nextAtMs: number | null } {
  const queue = hint ? [...s.queue, hint] : [...s.queue];
  let dropped = s.dropped;
  while (queue.length > opts.maxQueued) {
    queue.shift();
    dropped++;
  }
  let lastSentMs = s.lastSentMs;
  let send: ThrottledHint | null = null;
  if (queue.length > 0 && (lastSentMs === null || nowMs - lastSentMs >= opts.intervalMs)) {
    send = { ...queue.shift()!, droppedBefore: dropped };
    dropped = 0;
    lastSentMs = nowMs;
  }
  return { state: { lastSentMs, queue, dropped }, send, nextAtMs: queue.length > 0 ? lastSentMs! + opts.intervalMs : null };
}
