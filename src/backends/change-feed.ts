/**
 * What both change feeds (memory-changes.ts, redis-changes.ts) share: how a
 * batch of changes is handed to a projector.
 */
import type { JobChangeRecord } from '../domain/changes.js';

/**
 * Applies a batch of changes: the changes of one job one after another in
 * batch (commit) order, different jobs concurrently.
 * @returns per change (same order), whether its `apply` resolved; a change after a failed one of the same job is
 *   not attempted (false), so one job's changes are never applied out of order on this instance.
 */
export async function applyBatch(changes: readonly JobChangeRecord[], apply: (change: JobChangeRecord) => Promise<void>): Promise<boolean[]> {
  const done = changes.map(() => false);
  const byJob = new Map<string, number[]>();
  changes.forEach((change, i) => {
    const list = byJob.get(change.jobId);
    if (list) list.push(i);
    else byJob.set(change.jobId, [i]);
  });
  await Promise.all(
    [...byJob.values()].map(async (indexes) => {
      for (const i of indexes) {
        try {
          await apply(changes[i]!);
          done[i] = true;
        } catch {
          return;
        }
      }
    }),
  );
  return done;
}
