/**
 * Conflation: when a newer PROGRESS makes an older one pointless, only the
 * newer goes out. Two places use it:
 *
 * - publishing side, once per job: at most one PROGRESS per interval
 *   ({@link progressDue}); a suppressed change is flushed on the trailing edge,
 *   so the newest state always goes out;
 * - subscriber side, once per slow consumer: {@link ConflatingQueue} collapses
 *   queued PROGRESS events to the newest while the consumer lags.
 *
 * Events other than PROGRESS are never conflated or dropped, and since every
 * event carries the job's full state, a PROGRESS is never delivered after a
 * newer event (it would show older state).
 */

/** May a PROGRESS go out at `nowMs`, the last one having gone out at `lastMs` (null: never)? */
export function progressDue(lastMs: number | null, nowMs: number, intervalMs: number): boolean {
  return lastMs === null || nowMs - lastMs >= intervalMs;
}

/** Outcome of {@link ConflatingQueue.push}. */
export type PushResult = 'queued' | 'conflated' | 'overflow';

/**
 * A FIFO for one subscriber that stays bounded however slowly it is read.
 *
 * While it holds no more than `conflateAbove` items it is a plain FIFO (a
 * keeping-up consumer sees every event). Past that, a new conflatable event
 * replaces every queued conflatable one (all older, all carrying older state).
 * Non-conflatable events are kept; when more than `maxQueued` are waiting,
 * push returns 'overflow' and the caller must drop the subscriber (it can
 * resume from its cursor).
 */
export class ConflatingQueue<T> {
  private items: T[] = [];
  private head = 0;

  constructor(
    /** Queue length above which conflation starts. */
    readonly conflateAbove: number,
    /** Most items held; beyond it push reports overflow. */
    readonly maxQueued: number,
    /** True for items a newer one may replace (PROGRESS, SystemStats, ...). */
    private readonly isConflatable: (item: T) => boolean,
    /** Kind of a conflatable item: a newer item replaces only queued items of its kind (default: one kind). */
    private readonly conflationKey: (item: T) => string = () => '',
  ) {}

  /** Items waiting. */
  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): PushResult {
    if (this.length >= this.conflateAbove) {
      let dropped = false;
      if (this.isConflatable(item) || this.length >= this.maxQueued) {
        const key = this.isConflatable(item) ? this.conflationKey(item) : null;
        const kept = this.items
          .slice(this.head)
          .filter((queued) => !this.isConflatable(queued) || (key !== null && this.length < this.maxQueued && this.conflationKey(queued) !== key));
        dropped = kept.length !== this.length;
        this.items = kept;
        this.head = 0;
      }
      if (this.length >= this.maxQueued) return 'overflow';
      this.items.push(item);
      return dropped ? 'conflated' : 'queued';
    }
    this.items.push(item);
    return 'queued';
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head]!;
    this.items[this.head++] = undefined as unknown as T;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}
