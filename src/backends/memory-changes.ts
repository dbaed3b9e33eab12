/**
 * The in-memory {@link ChangeFeed}: one instance, so a consumer group is a
 * position in an array. Changes are appended synchronously by the commit that
 * made them (memory-log.ts) and applied asynchronously, after the commit's
 * caller got its answer. A projector whose `apply` throws keeps its position
 * and retries the change after `retryMs` (it is idempotent by offset). The
 * array drops what every projector has applied.
 */
import { applyBatch } from './change-feed.js';
import type { JobChangeRecord } from '../domain/changes.js';
import type { ChangeFeed } from './types.js';

const BATCH = 256;

interface Group {
  name: string;
  apply: (change: JobChangeRecord) => Promise<void>;
  /** Index (in the feed's numbering) of the next change to apply. */
  next: number;
  running: boolean;
  timer: NodeJS.Timeout | null;
}

/** See the module comment. */
export class MemoryChangeFeed implements ChangeFeed {
  private changes: JobChangeRecord[] = [];
  /** Feed number of `changes[0]`. */
  private base = 0;
  private readonly groups = new Map<string, Group>();
  private closed = false;
  private idleWaiters: (() => void)[] = [];

  constructor(
    private readonly onError: (context: string, error: unknown) => void = () => {},
    private readonly retryMs = 100,
  ) {}

  /** Appends a committed change (called inside the commit, synchronously) and wakes the projectors. */
  append(change: JobChangeRecord): void {
    if (this.groups.size === 0) return; // nobody projects: nothing to keep
    this.changes.push(change);
    for (const group of this.groups.values()) this.wake(group);
  }

  project(name: string, apply: (change: JobChangeRecord) => Promise<void>): void {
    if (this.groups.has(name)) throw new Error(`projector ${name} is registered already`);
    this.groups.set(name, { name, apply, next: this.base + this.changes.length, running: false, timer: null });
  }

  async ready(): Promise<void> {}

  /** Resolves when every projector has applied every change appended so far (tests, benchmarks). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    const end = this.base + this.changes.length;
    return [...this.groups.values()].every((g) => g.next === end && !g.running);
  }

  private wake(group: Group): void {
    if (group.running || group.timer || this.closed) return;
    group.running = true;
    queueMicrotask(() => void this.drain(group));
  }

  private async drain(group: Group): Promise<void> {
    try {
      while (!this.closed && group.next < this.base + this.changes.length) {
        const from = group.next - this.base;
        const batch = this.changes.slice(from, from + BATCH);
        const done = await applyBatch(batch, (change) =>
          group.apply(change).catch((error: unknown) => {
            this.onError(`projector ${group.name}: change of job ${change.jobId} at offset ${change.offset}`, error);
            throw error;
          }),
        );
        const failed = done.indexOf(false);
        group.next += failed < 0 ? batch.length : failed;
        if (failed >= 0) {
          // Keep the position; retry later (the changes after it that did apply are applied again: idempotent).
          group.timer = setTimeout(() => {
            group.timer = null;
            this.wake(group);
          }, this.retryMs);
          group.timer.unref();
          return;
        }
        this.trim();
      }
    } finally {
      group.running = false;
      if (this.isIdle()) for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  /** Drops the changes every projector has applied. */
  private trim(): void {
    let min = this.base + this.changes.length;
    for (const g of this.groups.values()) min = Math.min(min, g.next);
    if (min > this.base) {
      this.changes = this.changes.slice(min - this.base);
      this.base = min;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const g of this.groups.values()) if (g.timer) clearTimeout(g.timer);
  }
}
