/**
 * In-memory backend: the default, for one instance with no Redis. A job is a
 * topic log (memory-log.ts) `job:<id>` whose state is the job record: its
 * history and publication are the log store's, like every other topic log's.
 * The job store keeps what a log does not: the tenant index, the idempotency
 * table and the retention/cap bookkeeping. Pub/sub is local fan-out. Updates
 * are synchronous between awaits, so they are atomic by construction.
 *
 * Bounded: a finished job is removed with everything about it (history,
 * tenant index and idempotency entries, training and command logs)
 * `retentionSeconds` after it finishes; and the store keeps at most `maxJobs`
 * jobs: creating one more first removes the oldest finished job. Unfinished
 * jobs are never removed: when all `maxJobs` are unfinished, creating is
 * refused with SERVICE_UNAVAILABLE until some finish.
 *
 * Job changes go to an in-process change feed (memory-changes.ts) in the same
 * synchronous step as the commit; projectors apply them right after.
 */
import { DomainError, notFound } from '../domain/errors.js';
import type { JobChange, JobEvent, JobRecord, Tenant } from '../domain/job.js';
import { TopicFanout } from './topic-fanout.js';
import { MemoryTopicLogStore } from './memory-log.js';
import { MemoryDeadlineIndex } from './memory-deadlines.js';
import { MemoryWorkQueues } from './memory-queue.js';
import { MemoryChangeFeed } from './memory-changes.js';
import { creationChange, updateChange } from '../domain/changes.js';
import { JOB_OWNED, jobTopic, type JobOwnedTopics } from '../domain/topics.js';
import {
  matchesFilter,
  type Backend,
  type BusEvent,
  type EventBus,
  type HistoryRead,
  type JobFilter,
  type JobStore,
  type ListPosition,
  type RetentionOptions,
} from './types.js';

const tenantKey = (t: Tenant) => `${t.institute}\u0000${t.environment}`;

/** The in-process event bus. `publish` delivers synchronously to the topic's listeners. */
export class MemoryEventBus implements EventBus {
  private readonly deliverers = new Map<string, (event: BusEvent) => void>();
  private readonly fanout = new TopicFanout<string>(
    async (topic, deliver) => {
      this.deliverers.set(topic, deliver);
      return topic;
    },
    (topic) => {
      this.deliverers.delete(topic);
    },
    (topic, error) => this.onError(topic, error),
  );

  constructor(private readonly onError: (topic: string, error: unknown) => void = () => {}) {}

  publish(topic: string, event: BusEvent): void {
    this.deliverers.get(topic)?.(event);
  }
  subscribe<E extends BusEvent = JobEvent>(topic: string, listener: (event: E) => void): Promise<() => void> {
    return this.fanout.subscribe(topic, listener);
  }
  topicCount(): number {
    return this.fanout.size;
  }
  onGap(): void {
    // An in-process bus never loses its connection: there is never a gap.
  }
  async close(): Promise<void> {}
}

/** Settings of {@link MemoryJobStore}. */
export interface MemoryStoreOptions extends RetentionOptions {
  /** The topic logs removed with a job (default: domain/topics.ts JOB_OWNED). */
  owned?: JobOwnedTopics;
  /** Where job creations are appended for projectors (updates go through the log store's commit). */
  feed?: MemoryChangeFeed;
  /** Most jobs kept; creating one more removes the oldest finished job first. */
  maxJobs: number;
  /** Epoch ms now (the server's clock). */
  clock: () => number;
}

/**
 * In-memory {@link JobStore}. Each job is the topic log `job:<id>` of `logs`
 * (head: the record's epoch and offset, state: the record; history: its
 * newest RUNWATCH_HISTORY events); this store adds the tenant index, the
 * idempotency table and keeps finished jobs for the retention (see the header).
 */
export class MemoryJobStore implements JobStore {
  /** Per tenant, job ids in creation order (oldest first). */
  private readonly byTenant = new Map<string, string[]>();
  private readonly idempotency = new Map<string, { id: string; fingerprint: string }>();
  /** Job id → its idempotency entry's key, removed with the job. */
  private readonly idempotencyOf = new Map<string, string>();
  /** Finished jobs → removal time (epoch ms), in the order they finished (so also in removal order). */
  private readonly finished = new Map<string, number>();
  private count = 0;

  constructor(
    private readonly logs: MemoryTopicLogStore,
    private readonly opts: MemoryStoreOptions,
  ) {}

  /** Jobs held now (diagnostics, tests). */
  get size(): number {
    return this.count;
  }

  /** The job's record, read synchronously from its log; null when there is none. */
  private record(id: string): JobRecord | null {
    return this.logs.peek<JobRecord>(jobTopic(id))?.state ?? null;
  }

  /** Starts the retention of a job that just finished (once). */
  private noteFinished(job: JobRecord): void {
    if (job.finishedAt !== null && !this.finished.has(job.id)) this.finished.set(job.id, this.opts.clock() + this.opts.retentionSeconds * 1000);
  }

  /**
   * Removes every finished job whose retention ended. Cheap when nothing is
   * due: it stops at the first job still kept. @returns how many were removed.
   */
  sweep(): number {
    const now = this.opts.clock();
    const due: string[] = [];
    for (const [id, removeAt] of this.finished) {
      if (removeAt > now) break;
      due.push(id);
    }
    this.remove(due);
    return due.length;
  }

  /** Removes jobs with everything about them: their logs (`job:<id>` and the job-owned ones), index and idempotency entries. */
  private remove(ids: readonly string[]): void {
    if (ids.length === 0) return;
    const tenants = new Set<string>();
    for (const id of ids) {
      const job = this.record(id);
      if (!job) continue;
      tenants.add(tenantKey(job.tenant));
      for (const topic of [jobTopic(id), ...(this.opts.owned ?? JOB_OWNED).of(id)]) this.logs.remove(topic);
      this.count--;
      this.finished.delete(id);
      const idem = this.idempotencyOf.get(id);
      if (idem !== undefined) this.idempotency.delete(idem);
      this.idempotencyOf.delete(id);
    }
    for (const key of tenants) {
      const kept = (this.byTenant.get(key) ?? []).filter((id) => this.has(id));
      if (kept.length > 0) this.byTenant.set(key, kept);
      else this.byTenant.delete(key);
    }
  }

  /** Makes room for one more job: removes expired jobs, then the oldest finished ones. @throws DomainError SERVICE_UNAVAILABLE when every kept job is unfinished. */
  private makeRoom(): void {
    this.sweep();
    if (this.count < this.opts.maxJobs) return;
    const oldest: string[] = [];
    for (const id of this.finished.keys()) {
      if (this.count - oldest.length < this.opts.maxJobs) break;
      oldest.push(id);
    }
    this.remove(oldest);
    if (this.count >= this.opts.maxJobs)
      throw new DomainError(
        'SERVICE_UNAVAILABLE',
        `the in-memory backend holds its maximum of ${this.opts.maxJobs} jobs and none of them is finished; finish some, or run with Redis (REDIS_URL)`,
      );
  }

  async create(job: JobRecord, idem?: { key: string; fingerprint: string }) {
    this.sweep();
    let idemKey: string | undefined;
    if (idem) {
      idemKey = `${tenantKey(job.tenant)}\u0000${idem.key}`;
      const seen = this.idempotency.get(idemKey);
      if (seen) return { job: this.record(seen.id)!, created: false, fingerprint: seen.fingerprint };
    }
    if (this.has(job.id)) throw new Error(`job ${job.id} exists already`);
    this.makeRoom();
    if (idemKey !== undefined && idem) {
      this.idempotency.set(idemKey, { id: job.id, fingerprint: idem.fingerprint });
      this.idempotencyOf.set(job.id, idemKey);
    }
    // The job's log starts at the record's own epoch and offset (a restored job's continue from the newest event seen).
    const key = tenantKey(job.tenant);
    const list = this.byTenant.get(key) ?? [];
    list.push(job.id);
    this.byTenant.set(key, list);
    this.logs.create<JobRecord>(jobTopic(job.id), { epoch: job.epoch, offset: job.offset, state: job }, { change: creationChange(job) });
    this.count++;
    this.noteFinished(job);
    return { job, created: true };
  }

  async get(id: string) {
    this.sweep();
    return this.record(id);
  }

  async list(tenant: Tenant, filter: JobFilter, first: number, after: ListPosition | null) {
    this.sweep();
    const ids = this.byTenant.get(tenantKey(tenant)) ?? [];
    const jobs: JobRecord[] = [];
    let started = after === null;
    let hasNextPage = false;
    for (let i = ids.length - 1; i >= 0; i--) {
      const job = this.record(ids[i]!)!;
      if (!started) {
        started = job.id === after!.id;
        continue;
      }
      if (!matchesFilter(job, filter)) continue;
      if (jobs.length === first) {
        hasNextPage = true;
        break;
      }
      jobs.push(job);
    }
    return { jobs, hasNextPage };
  }

  async update(id: string, change: (job: JobRecord) => JobChange | null) {
    this.sweep();
    if (!this.has(id)) throw notFound(id);
    // The log stores the record, appends the events to history and publishes them on the job's topic.
    const committed =
      this.logs.commit<JobRecord, JobEvent, JobChange>(jobTopic(id), (head) => {
        const result = change(head.state!);
        return (
          result && {
            state: result.job,
            events: result.events,
            epoch: result.job.epoch,
            change: updateChange(result.job, result.events.map((e) => e.type)) ?? undefined,
            value: result,
          }
        );
      })?.value ?? null;
    if (committed) this.noteFinished(committed.job);
    return committed;
  }

  /** Does the store hold this job now? */
  has(id: string): boolean {
    return this.logs.peek(jobTopic(id)) !== null;
  }

  async restore(job: JobRecord): Promise<boolean> {
    if (this.has(job.id)) return false;
    await this.create(job);
    return true;
  }

  async history(id: string, afterOffset: number): Promise<HistoryRead<JobEvent>> {
    this.sweep();
    return this.logs.history<JobEvent>(jobTopic(id), afterOffset);
  }

  async ping() {}
  async close() {}
}

/** Options of {@link createMemoryBackend}. */
export interface MemoryBackendOptions {
  /** Events kept per topic log: per job, per training run's events and commands... (RUNWATCH_HISTORY). */
  historySize: number;
  onError?: (topic: string, error: unknown) => void;
  /** Seconds a finished job is kept (RUNWATCH_RETENTION_DAYS); default 30 days. */
  retentionSeconds?: number;
  /** Most jobs kept (default {@link DEFAULT_MEMORY_MAX_JOBS}); past it the oldest finished job goes first. */
  maxJobs?: number;
  /** Epoch ms now; default Date.now. */
  clock?: () => number;
  /** The topic logs removed with a job (default: domain/topics.ts JOB_OWNED). */
  owned?: JobOwnedTopics;
}

/** Default cap of the in-memory backend: 1 000 jobs (about 450 KB each with a full 1 000-event history). */
export const DEFAULT_MEMORY_MAX_JOBS = 1_000;

/** Milliseconds between retention sweeps: half the retention, from 0.25 s to 60 s. */
const sweepIntervalMs = (retentionSeconds: number) => Math.min(60_000, Math.max(250, (retentionSeconds * 1000) / 2));

/** Creates the in-memory backend (see the header for what it keeps). */
export function createMemoryBackend(opts: MemoryBackendOptions): Backend {
  const bus = new MemoryEventBus(opts.onError);
  const feed = new MemoryChangeFeed(opts.onError);
  const owned = opts.owned ?? JOB_OWNED;
  const logs = new MemoryTopicLogStore(bus, opts.historySize, feed, owned);
  const retentionSeconds = opts.retentionSeconds ?? 30 * 24 * 3600;
  const store = new MemoryJobStore(logs, {
    retentionSeconds,
    maxJobs: opts.maxJobs ?? DEFAULT_MEMORY_MAX_JOBS,
    clock: opts.clock ?? Date.now,
    owned,
    feed,
  });
  // Frees memory even when nobody calls the store; every read also sweeps first.
  const sweeper = setInterval(() => store.sweep(), sweepIntervalMs(retentionSeconds));
  sweeper.unref();
  const queues = new MemoryWorkQueues(opts.clock ?? Date.now, opts.onError);
  return {
    kind: 'memory',
    store,
    bus,
    logs,
    deadlines: new MemoryDeadlineIndex(),
    queues,
    changes: feed,
    close: async () => {
      clearInterval(sweeper);
      await queues.close();
      await feed.close();
    },
  };
}
