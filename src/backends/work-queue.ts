/**
 * Durable work queues with retries, for effects that leave runwatch (webhook
 * deliveries): each piece of work is added once (by id), handled by exactly
 * one instance at a time, retried with exponential backoff and jitter
 * (domain/retry.ts) until it succeeds or its attempts run out, and — on Redis
 * — never lost when the instance handling it dies (BullMQ's stalled-job
 * recovery hands it to another instance). Memory: one process, the same retry
 * semantics, gone with the process. Implementations: memory-queue.ts, bullmq-queue.ts.
 */
import type { RetryPolicy } from '../domain/retry.js';

/** What the handler knows about the attempt it makes. */
export interface AttemptInfo {
  /** 1 for the first attempt. */
  attempt: number;
  /** No retry follows if this attempt fails. */
  last: boolean;
}

/** Handles one piece of work; a throw (or rejection) schedules a retry unless the attempt was the last. */
export type WorkHandler<T> = (data: T, info: AttemptInfo) => Promise<void>;

/** Settings of one queue. */
export interface WorkQueueOptions {
  retry: RetryPolicy;
  /** Work handled at once per instance. */
  concurrency: number;
  /**
   * Redis: ms after which work held by an instance that stopped renewing its lock (it died) goes to
   * another instance; also how often instances look for such work. Should exceed a handler's own timeout.
   */
  lockMs: number;
}

/** One queue. */
export interface WorkQueue<T> {
  /** Adds work under `id`; adding an id that is already queued (or recently done) does nothing. */
  add(id: string, data: T): Promise<void>;
}

/** Opens queues on a backend; every instance that opens a name also works on it. */
export interface WorkQueues {
  open<T>(name: string, handler: WorkHandler<T>, opts: WorkQueueOptions): WorkQueue<T>;
  /** Stops working (work in hand finishes or, on Redis, goes to another instance) and closes every queue. */
  close(): Promise<void>;
}
