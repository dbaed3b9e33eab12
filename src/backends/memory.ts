/**
 * In-memory backend: the default, for one instance with no Redis. Job state
 * in a Map, history in a ring buffer per job, pub/sub through local fan-out.
 * Updates are synchronous between awaits, so they are atomic by construction.
 *
 * Bounded: a finished job is removed with everything about it (history,
 * tenant index and idempotency entries, training and command logs)
 * `retentionSeconds` after it finishes; and the store keeps at most `maxJobs`
 * jobs: creating one more first removes the oldest finished job. Unfinished
 * jobs are never removed: when all `maxJobs` are unfinished, creating is
 * refused with SERVICE_UNAVAILABLE until some finish.
 */
import { DomainError, notFound } from '../domain/errors.js';
import type { JobChange, JobEvent, JobRecord, Tenant } from '../domain/job.js';
import { TopicFanout } from './topic-fanout.js';
import { MemoryTopicLogStore } from './memory-log.js';
import {
  jobLogTopics,
  jobTopic,
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

/** A fixed-size ring of a job's newest events. */
class EventRing {
  private readonly buffer: (JobEvent | undefined)[];
  private count = 0;
  constructor(private readonly capacity: number) {
    this.buffer = new Array(capacity);
  }
  push(event: JobEvent): void {
    this.buffer[this.count % this.capacity] = event;
    this.count++;
  }
  /** Events with offset > afterOffset; `covered` false when older ones were overwritten. */
  after(afterOffset: number, newestOffset: number): HistoryRead {
    const held = Math.min(this.count, this.capacity);
    const events: JobEvent[] = [];
    for (let i = this.count - held; i < this.count; i++) {
      const e = this.buffer[i % this.capacity]!;
      if (e.offset > afterOffset) events.push(e);
    }
    const wanted = newestOffset - afterOffset;
    return { events, covered: events.length >= wanted };
  }
}

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
  onReconnect(): void {
    // An in-process bus never loses its connection.
  }
  async close(): Promise<void> {}
}

/** Settings of {@link MemoryJobStore}. */
export interface MemoryStoreOptions extends RetentionOptions {
  /** Events kept per job (RUNWATCH_HISTORY). */
  historySize: number;
  /** Most jobs kept; creating one more removes the oldest finished job first. */
  maxJobs: number;
  /** Epoch ms now (the server's clock). */
  clock: () => number;
  /** Called with each job removed (the backend drops the job's topic logs). */
  onRemoved?: (jobId: string) => void;
}

/** In-memory {@link JobStore}; keeps `historySize` events per job, and finished jobs for the retention (see the header). */
export class MemoryJobStore implements JobStore {
  private readonly jobs = new Map<string, JobRecord>();
  private readonly rings = new Map<string, EventRing>();
  /** Per tenant, job ids in creation order (oldest first). */
  private readonly byTenant = new Map<string, string[]>();
  private readonly idempotency = new Map<string, { id: string; fingerprint: string }>();
  /** Job id → its idempotency entry's key, removed with the job. */
  private readonly idempotencyOf = new Map<string, string>();
  /** Finished jobs → removal time (epoch ms), in the order they finished (so also in removal order). */
  private readonly finished = new Map<string, number>();

  constructor(
    private readonly bus: MemoryEventBus,
    private readonly opts: MemoryStoreOptions,
  ) {}

  private get historySize() {
    return this.opts.historySize;
  }

  /** Jobs held now (diagnostics, tests). */
  get size(): number {
    return this.jobs.size;
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

  /** Removes jobs with everything about them. */
  private remove(ids: readonly string[]): void {
    if (ids.length === 0) return;
    const tenants = new Set<string>();
    for (const id of ids) {
      const job = this.jobs.get(id);
      if (!job) continue;
      tenants.add(tenantKey(job.tenant));
      this.jobs.delete(id);
      this.rings.delete(id);
      this.finished.delete(id);
      const idem = this.idempotencyOf.get(id);
      if (idem !== undefined) this.idempotency.delete(idem);
      this.idempotencyOf.delete(id);
      this.opts.onRemoved?.(id);
    }
    for (const key of tenants) {
      const kept = (this.byTenant.get(key) ?? []).filter((id) => this.jobs.has(id));
      if (kept.length > 0) this.byTenant.set(key, kept);
      else this.byTenant.delete(key);
    }
  }

  /** Makes room for one more job: removes expired jobs, then the oldest finished ones. @throws DomainError SERVICE_UNAVAILABLE when every kept job is unfinished. */
  private makeRoom(): void {
    this.sweep();
    if (this.jobs.size < this.opts.maxJobs) return;
    const oldest: string[] = [];
    for (const id of this.finished.keys()) {
      if (this.jobs.size - oldest.length < this.opts.maxJobs) break;
      oldest.push(id);
    }
    this.remove(oldest);
    if (this.jobs.size >= this.opts.maxJobs)
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
      if (seen) return { job: this.jobs.get(seen.id)!, created: false, fingerprint: seen.fingerprint };
    }
    this.makeRoom();
    if (idemKey !== undefined && idem) {
      this.idempotency.set(idemKey, { id: job.id, fingerprint: idem.fingerprint });
      this.idempotencyOf.set(job.id, idemKey);
    }
    this.jobs.set(job.id, job);
    const key = tenantKey(job.tenant);
    const list = this.byTenant.get(key) ?? [];
    list.push(job.id);
    this.byTenant.set(key, list);
    if (job.finishedAt !== null) this.finished.set(job.id, this.opts.clock() + this.opts.retentionSeconds * 1000);
    return { job, created: true };
  }

  async get(id: string) {
    this.sweep();
    return this.jobs.get(id) ?? null;
  }

  async list(tenant: Tenant, filter: JobFilter, first: number, after: ListPosition | null) {
    this.sweep();
    const ids = this.byTenant.get(tenantKey(tenant)) ?? [];
    const jobs: JobRecord[] = [];
    let started = after === null;
    let hasNextPage = false;
    for (let i = ids.length - 1; i >= 0; i--) {
      const job = this.jobs.get(ids[i]!)!;
      if (!started) {
        started = job.id === after!.id;
        continue;
      }
      if (filter.status?.length && !filter.status.includes(job.status)) continue;
      if (filter.kind?.length && !filter.kind.includes(job.kind)) continue;
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
    const current = this.jobs.get(id);
    if (!current) throw notFound(id);
    const result = change(current);
    if (!result) return null;
    this.jobs.set(id, result.job);
    if (result.job.finishedAt !== null && !this.finished.has(id)) this.finished.set(id, this.opts.clock() + this.opts.retentionSeconds * 1000);
    if (result.events.length > 0) {
      let ring = this.rings.get(id);
      if (!ring) this.rings.set(id, (ring = new EventRing(this.historySize)));
      const topic = jobTopic(id);
      for (const event of result.events) {
        ring.push(event);
        this.bus.publish(topic, event);
      }
    }
    return result;
  }

  /** Does the store hold this job now? */
  has(id: string): boolean {
    return this.jobs.has(id);
  }

  async restore(job: JobRecord): Promise<boolean> {
    if (this.jobs.has(job.id)) return false;
    await this.create(job);
    return true;
  }

  async history(id: string, afterOffset: number): Promise<HistoryRead> {
    this.sweep();
    const job = this.jobs.get(id);
    if (!job) return { events: [], covered: false };
    if (afterOffset >= job.offset) return { events: [], covered: true };
    const ring = this.rings.get(id);
    return ring ? ring.after(afterOffset, job.offset) : { events: [], covered: false };
  }

  async ping() {}
  async close() {}
}

/** Options of {@link createMemoryBackend}. */
export interface MemoryBackendOptions {
  /** Events kept per job (RUNWATCH_HISTORY). */
  historySize: number;
  onError?: (topic: string, error: unknown) => void;
  /** Seconds a finished job is kept (RUNWATCH_RETENTION_DAYS); default 30 days. */
  retentionSeconds?: number;
  /** Most jobs kept (default {@link DEFAULT_MEMORY_MAX_JOBS}); past it the oldest finished job goes first. */
  maxJobs?: number;
  /** Epoch ms now; default Date.now. */
  clock?: () => number;
}

/** Default cap of the in-memory backend: 1 000 jobs (about 450 KB each with a full 1 000-event history). */
export const DEFAULT_MEMORY_MAX_JOBS = 1_000;

/** Milliseconds between retention sweeps: half the retention, from 0.25 s to 60 s. */
const sweepIntervalMs = (retentionSeconds: number) => Math.min(60_000, Math.max(250, (retentionSeconds * 1000) / 2));

/** Creates the in-memory backend (see the header for what it keeps). */
export function createMemoryBackend(opts: MemoryBackendOptions): Backend {
  const bus = new MemoryEventBus(opts.onError);
  const logs = new MemoryTopicLogStore(bus, opts.historySize);
  const retentionSeconds = opts.retentionSeconds ?? 30 * 24 * 3600;
  const store = new MemoryJobStore(bus, {
    historySize: opts.historySize,
    retentionSeconds,
    maxJobs: opts.maxJobs ?? DEFAULT_MEMORY_MAX_JOBS,
    clock: opts.clock ?? Date.now,
    onRemoved: (jobId) => {
      for (const topic of jobLogTopics(jobId)) logs.remove(topic);
    },
  });
  logs.ownerExists = (jobId) => store.has(jobId);
  // Frees memory even when nobody calls the store; every read also sweeps first.
  const sweeper = setInterval(() => store.sweep(), sweepIntervalMs(retentionSeconds));
  sweeper.unref();
  return {
    kind: 'memory',
    store,
    bus,
    logs,
    close: async () => {
      clearInterval(sweeper);
    },
  };
}
