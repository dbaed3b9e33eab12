/**
 * {@link WorkQueues} on Redis with BullMQ (https://docs.bullmq.io): delayed
 * retries with a custom backoff (domain/retry.ts, exponential with jitter),
 * one worker per piece of work at a time, and stalled-job recovery — work
 * whose worker stopped renewing its lock (the instance died) goes back to the
 * wait list after `lockMs` and another instance takes it, so nothing is lost.
 *
 * Keys: BullMQ's own, under the prefix `runwatch:{q:<name>}` — one hash tag
 * per queue, so on a Redis Cluster every key of a queue shares a slot (BullMQ's
 * scripts need that) and different queues can live on different nodes.
 * BullMQ needs connections of its own (`maxRetriesPerRequest: null`; the
 * worker blocks on one): two per queue (queue, worker) per instance, made by
 * the backend (one Redis, or a Redis Cluster client).
 */
import { Queue, Worker, type Job } from 'bullmq';
import type { Cluster, Redis } from 'ioredis';
import { retryDelayMs } from '../domain/retry.js';
import { KEY_PREFIX } from './redis-keys.js';
import type { WorkHandler, WorkQueue, WorkQueueOptions, WorkQueues } from './work-queue.js';

/** The BullMQ key prefix of a queue: `runwatch:{q:<name>}`. */
export const queuePrefix = (name: string) => `${KEY_PREFIX}{q:${name}}`;

/** Most ms a queue's close waits for BullMQ before cutting its connections. */
const CLOSE_GRACE_MS = 2000;

/** Finished work kept (for add-once by id, and inspection): a day, at most 10 000 per queue. */
const KEEP = { age: 24 * 3600, count: 10_000 };

/** BullMQ job ids may not contain `:` nor be integers; ours never are integers, and `:` becomes `_`. */
const bullId = (id: string) => id.replaceAll(':', '_');

export class BullWorkQueues implements WorkQueues {
  private readonly closers: (() => Promise<void>)[] = [];

  /** @param connect makes a new connection with `maxRetriesPerRequest: null` (BullMQ's requirement). */
  constructor(
    private readonly connect: () => Redis | Cluster,
    private readonly onError: (context: string, error: unknown) => void,
  ) {}

  private connection(): Redis | Cluster {
    const redis = this.connect();
    // Errors during an outage are reported by the backend's own connections; these only must not crash the process.
    redis.on('error', () => {});
    return redis;
  }

  open<T>(name: string, handler: WorkHandler<T>, opts: WorkQueueOptions): WorkQueue<T> {
    const prefix = queuePrefix(name);
    const queueConnection = this.connection();
    const workerConnection = this.connection();
    const queue = new Queue(name, { connection: queueConnection, prefix });
    const worker = new Worker(
      name,
      (job: Job) => handler(job.data as T, { attempt: job.attemptsMade + 1, last: job.attemptsMade + 1 >= opts.retry.attempts }),
      {
        connection: workerConnection,
        prefix,
        concurrency: opts.concurrency,
        lockDuration: opts.lockMs,
        stalledInterval: opts.lockMs,
        // A piece of work whose instance died is retried, not failed, even when that happens a few times.
        maxStalledCount: opts.retry.attempts,
        settings: { backoffStrategy: (attemptsMade: number) => retryDelayMs(opts.retry, attemptsMade) },
      },
    );
    queue.on('error', (error) => this.onError(`queue ${name}`, error));
    worker.on('error', (error) => this.onError(`queue ${name} worker`, error));
    worker.on('failed', (job, error) => {
      if (job && job.attemptsMade >= opts.retry.attempts) this.onError(`queue ${name}: gave up on ${job.id}`, error);
    });
    this.closers.push(async () => {
      // Work in hand is not waited for (force): its lock lapses and another instance takes it. With Redis
      // away BullMQ's close would wait for it forever, so it gets CLOSE_GRACE_MS and the connections are cut.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all([worker.close(true).catch(() => {}), queue.close().catch(() => {})]),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, CLOSE_GRACE_MS);
        }),
      ]);
      clearTimeout(timer);
      queueConnection.disconnect();
      workerConnection.disconnect();
    });
    return {
      async add(id: string, data: T): Promise<void> {
        await queue.add(name, data, {
          jobId: bullId(id),
          attempts: opts.retry.attempts,
          backoff: { type: 'custom' },
          removeOnComplete: KEEP,
          removeOnFail: KEEP,
        });
      },
    };
  }

  async close(): Promise<void> {
    await Promise.all(this.closers.splice(0).map((close) => close()));
  }
}
