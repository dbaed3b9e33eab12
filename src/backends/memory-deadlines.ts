/**
 * The in-memory {@link DeadlineIndex}: a binary min-heap of (check time, job id)
 * with lazy deletion — a map holds each job's current time, and heap entries
 * that disagree with it are stale and skipped. O(log n) per schedule and claim.
 */
import type { DeadlineIndex } from './types.js';

type Entry = { atMs: number; jobId: string };

export class MemoryDeadlineIndex implements DeadlineIndex {
  private readonly heap: Entry[] = [];
  private readonly current = new Map<string, number>();

  /** Entries held (diagnostics, tests). */
  get size(): number {
    return this.current.size;
  }

  async schedule(jobId: string, atMs: number): Promise<void> {
    this.current.set(jobId, atMs);
    this.push({ atMs, jobId });
    // Stale entries pile up when jobs are rescheduled often: rebuild once they outnumber live ones.
    if (this.heap.length > 64 && this.heap.length > 4 * this.current.size) this.rebuild();
  }

  async claimDue(nowMs: number, leaseMs: number, limit: number): Promise<string[]> {
    const claimed: string[] = [];
    while (claimed.length < limit && this.heap.length > 0 && this.heap[0]!.atMs <= nowMs) {
      const top = this.pop()!;
      if (this.current.get(top.jobId) !== top.atMs) continue; // stale
      claimed.push(top.jobId);
    }
    for (const jobId of claimed) await this.schedule(jobId, nowMs + leaseMs);
    return claimed;
  }

  async remove(jobId: string): Promise<void> {
    this.current.delete(jobId);
  }

  private rebuild(): void {
    this.heap.length = 0;
    for (const [jobId, atMs] of this.current) this.push({ atMs, jobId });
  }

  private push(entry: Entry): void {
    const h = this.heap;
    h.push(entry);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent]!.atMs <= h[i]!.atMs) break;
      [h[parent], h[i]] = [h[i]!, h[parent]!];
      i = parent;
    }
  }

  private pop(): Entry | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && h[l]!.atMs < h[m]!.atMs) m = l;
        if (r < h.length && h[r]!.atMs < h[m]!.atMs) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    return top;
  }
}
