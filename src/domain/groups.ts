/**
 * Job groups: a parent job and its children (at most {@link MAX_DEPTH} levels).
 * Pure: the parent aggregation projector (services/jobs.ts) applies
 * {@link applyChild} to the parent's record in the parent's own
 * compare-and-set commit, once per child change.
 *
 * A parent's numbers (total, completed, failed, resources, rate, ETA) are its
 * own plus its children's (job.ts `aggregateOf`); `childCounts` counts its
 * children per status. Its status follows its children unless a person or
 * program set it (finish, pause, resume: `statusExplicit`):
 * - RUNNING while any child runs (or once started, while some are still queued);
 * - PAUSED when none runs and some are paused;
 * - when every child is finished: FAILED if any failed, else COMPLETED if any
 *   completed, else (all cancelled) CANCELLED. A mix of completed and
 *   cancelled children is COMPLETED: the work that was kept was done.
 * Its stream gets a CHILD event (`childId` set, `message` "<child name>: <STATUS>")
 * whenever a child is added or changes status, the status events of its own
 * transitions, and otherwise its own PROGRESS, conflated like any job's, carrying the aggregate.
 */
import { isNewer, type JobChangeRecord } from './changes.js';
import { badInput, conflict, DomainError } from './errors.js';
import {
  aggregateOf,
  childCountsOf,
  isTerminal,
  MAX_DEPTH,
  seal,
  type ChildSummary,
  type Draft,
  type JobChange,
  type JobRecord,
  type JobStatus,
} from './job.js';
import { progressDue } from './conflation.js';
import { addRateSample } from './rate.js';

export { MAX_DEPTH } from './job.js';

/**
 * Checks that `parent` may take a new child and returns the child's depth.
 * `ancestors` reads a job's parent id (null: top level) for the cycle check.
 * @throws DomainError BAD_USER_INPUT (the child would be deeper than MAX_DEPTH, or the ancestry has a cycle),
 *   CONFLICT (the parent is finished).
 */
export function childDepth(parent: JobRecord, ancestry: readonly string[]): number {
  const depth = (parent.depth ?? 1) + 1;
  if (depth > MAX_DEPTH) throw badInput('parentId', `job groups are at most ${MAX_DEPTH} levels deep: ${parent.id} is at level ${parent.depth ?? 1}`);
  if (new Set(ancestry).size !== ancestry.length) throw badInput('parentId', `the ancestry of ${parent.id} has a cycle`);
  if (isTerminal(parent.status)) throw conflict(`job ${parent.id} is already ${parent.status}: it takes no new children`);
  return depth;
}

/** The status a parent's children give it (see the module comment); null: keep the current one. */
export function derivedStatus(parent: JobRecord): JobStatus | null {
  if (!parent.group || parent.statusExplicit || isTerminal(parent.status)) return null;
  const c = childCountsOf(parent.group);
  const n = c.queued + c.running + c.paused + c.completed + c.failed + c.cancelled;
  if (n === 0) return null;
  if (c.running > 0) return 'RUNNING';
  if (c.paused > 0) return 'PAUSED';
  if (c.queued > 0) return parent.status === 'QUEUED' ? 'QUEUED' : 'RUNNING';
  if (c.failed > 0) return 'FAILED';
  return c.completed > 0 ? 'COMPLETED' : 'CANCELLED';
}

/**
 * Applies one child change to its parent (the `groups` projector's step).
 * @param intervalMs 1000 / RUNWATCH_PROGRESS_HZ (conflation of the parent's PROGRESS).
 * @param createdChildren ids of the children created under the parent (read from the job index); while any of them
 *   has not reached the parent yet, it takes no terminal status (a lagging partition may still hold its creation).
 *   Ids, not a count: a child retention swept from the index is still among those the parent has seen, and would
 *   make a count hide an unseen sibling. Undefined: not checked (see {@link wouldEndParent}).
 * @returns the parent's change, or null when the change was applied already (the child's summary is at this
 *   offset or newer): applying the same change twice changes nothing the second time.
 */
export function applyChild(parent: JobRecord, change: JobChangeRecord, nowMs: number, intervalMs: number, createdChildren?: readonly string[]): JobChange | null {
  const child = change.job;
  const before = parent.group?.children[child.id];
  if (before && !isNewer(change, before.offset)) return null;
  const summary: ChildSummary = {
    offset: change.offset,
    status: child.status,
    ...aggregateOf(child),
  };
  const beforeAgg = aggregateOf(parent);
  const group = { children: { ...parent.group?.children, [child.id]: summary }, samples: parent.group?.samples ?? [] };
  let next: JobRecord = { ...parent, group };
  const agg = aggregateOf(next);
  const processed = agg.completed + agg.failed;
  const processedChanged = processed !== beforeAgg.completed + beforeAgg.failed;
  if (processedChanged || group.samples.length === 0) next.group = { ...group, samples: addRateSample(group.samples, nowMs, processed) };
  const finished = isTerminal(parent.status);
  // A finished parent keeps its children's numbers exact but says nothing more: its stream ended.
  if (finished) return { job: { ...next, updatedAt: nowMs }, events: [], flushAtMs: null };

  const drafts: Draft[] = [];
  if (!before || before.status !== summary.status) drafts.push({ type: 'CHILD', message: `${child.name}: ${summary.status}`, childId: child.id });
  let status = derivedStatus(next);
  // A child's creation reaches the parent through the child's own change-log partition, which may lag another
  // child's: no terminal status until every child created under the parent (`createdChildren`) has been seen.
  if (status && isTerminal(status) && createdChildren?.some((id) => !(id in group.children))) status = null;
  if (status && status !== next.status) {
    const from = next.status;
    next = { ...next, status };
    if (from === 'QUEUED' && (status === 'RUNNING' || status === 'PAUSED')) {
      next.startedAt = nowMs;
      drafts.push({ type: 'STARTED', message: null });
      if (status === 'PAUSED') drafts.push({ type: 'PAUSED', message: null });
    } else if (status === 'PAUSED') {
      drafts.push({ type: 'PAUSED', message: null });
    } else if (status === 'RUNNING') {
      drafts.push({ type: from === 'PAUSED' ? 'RESUMED' : 'STARTED', message: null });
    } else if (isTerminal(status)) {
      const counts = childCountsOf(next.group!);
      const n = Object.values(counts).reduce((a, b) => a + b, 0);
      next.startedAt ??= nowMs;
      next.finishedAt = nowMs;
      const message = status === 'FAILED' ? `${counts.failed} of ${n} children failed` : `${counts.completed} of ${n} children completed`;
      if (status === 'FAILED') next.errorMessage = message;
      else next.message = message;
      drafts.push({ type: status as 'COMPLETED' | 'FAILED' | 'CANCELLED', message });
    }
  }
  const numbersChanged = processedChanged || agg.total !== beforeAgg.total || JSON.stringify(agg.resources) !== JSON.stringify(beforeAgg.resources);
  let flushAtMs: number | null = null;
  if (drafts.length === 0 && (numbersChanged || next.progressPending)) {
    if (progressDue(next.lastProgressAt, nowMs, intervalMs)) drafts.push({ type: 'PROGRESS', message: null });
    else {
      next.progressPending = true;
      flushAtMs = (next.lastProgressAt ?? nowMs) + intervalMs;
    }
  }
  return seal(next, drafts, nowMs, flushAtMs);
}

/**
 * Whether `result` (applyChild's, made without `createdChildren`) gives `parent` a terminal status: only such a
 * change needs the children created under the parent read from the job index, so the projector reads it once per
 * parent ending, not once per child change.
 */
export function wouldEndParent(parent: JobRecord, result: JobChange | null): boolean {
  return result !== null && isTerminal(result.job.status) && !isTerminal(parent.status);
}

/** Is this error the parent being gone (removed by retention) or finished: nothing to aggregate into? */
export const isParentGone = (error: unknown) => error instanceof DomainError && error.code === 'NOT_FOUND';
