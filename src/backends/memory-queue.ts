/**
 * In-process {@link WorkQueues} for the memory backend: the same add-once,
 * retry-with-backoff semantics as the BullMQ queues, with one timer per queue
 * (armed for the earliest due piece of work), not one per piece.
 */
import { retryDelayMs } from '../domain/retry.js';
import type { WorkHandler, WorkQueue, WorkQueueOptions, WorkQueues } from './work-queue.js';

/** Ids of finished work remembered for add-once, per queue. */
const REMEMBERED_DONE = 10_000;

type Item<T> = { id: string; data: T; attemptsMade: number; dueAtMs: number };

class MemoryWorkQueue<T> implements WorkQueue<T> {
  private readonly pending = new Map<string, Item<T>>();
  private readonly done = new Set<string>();
  private running = 0;
  private timer: NodeJS.Timeout | null = null;
  private timerAtMs = Infinity;
  private closed = false;

  constructor(
    private readonly handler: WorkHandler<T>,
    private readonly opts: WorkQueueOptions,
    private readonly clock: () => number,
    private readonly onError: (error: unknown) => void,
  ) {}

  async add(id: string, data: T): Promise<void> {
    if (this.closed || this.pending.has(id) || this.done.has(id)) return;
    this.pending.set(id, { id, data, attemptsMade: 0, dueAtMs: this.clock() });
    this.pump();
  }

  /** Starts what is due, up to the concurrency; arms the timer for the rest. */
  private pump(): void {
    if (this.closed) return;
    const now = this.clock();
    let next = Infinity;
    for (const item of this.pending.values()) {
      if (item.dueAtMs === -1) continue; // in hand
      if (item.dueAtMs > now) {
        next = Math.min(next, item.dueAtMs);
        continue;
      }
      if (this.running >= this.opts.concurrency) break;
      void this.attempt(item);
    }
    if (next < this.timerAtMs || (this.timer === null && next !== Infinity)) {
      if (this.timer) clearTimeout(this.timer);
      this.timerAtMs = next;
      this.timer = setTimeout(() => {
        this.timer = null;
        this.timerAtMs = Infinity;
        this.pump();
      }, Math.max(0, next - now));
      this.timer.unref();
    }
  }

  private async attempt(item: Item<T>): Promise<void> {
    this.running++;
    item.dueAtMs = -1;
    item.attemptsMade++;
    const last = item.attemptsMade >= this.opts.retry.attempts;
    try {
      await this.handler(item.data, { attempt: item.attemptsMade, last });
      this.finish(item.id);
    } catch (error) {
      if (last) {
        this.finish(item.id);
        this.onError(error);
      } else item.dueAtMs = this.clock() + retryDelayMs(this.opts.retry, item.attemptsMade);
    } finally {
      this.running--;
      this.pump();
    }
  }

  private finish(id: string): void {
    this.pending.delete(id);
    this.done.add(id);
    if (this.done.size > REMEMBERED_DONE) this.done.delete(this.done.values().next().value!);
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
  }
}

/** In-process queues; `onError` hears of work whose last attempt failed. */
export class MemoryWorkQueues implements WorkQueues {
  private readonly queues: MemoryWorkQueue<any>[] = [];

  constructor(
    private readonly clock: () => number = Date.now,
    private readonly onError: (context: string, error: unknown) => void = () => {},
  ) {}

  open<T>(name: string, handler: WorkHandler<T>, opts: WorkQueueOptions): WorkQueue<T> {
    const queue = new MemoryWorkQueue<T>(handler, opts, this.clock, (error) => this.onError(`queue ${name}: gave up`, error));
    this.queues.push(queue);
    return queue;
  }

  async close(): Promise<void> {
    for (const q of this.queues.splice(0)) q.close();
  }
}
