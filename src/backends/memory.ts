/**
 * In-memory backend: the default, for one instance with no Redis. Job state
 * in a Map, history in a ring buffer per job, pub/sub through local fan-out.
 * Updates are synchronous between awaits, so they are atomic by construction.
 */
import { notFound } from '../domain/errors.js';
import type { JobChange, JobEvent, JobRecord, Tenant } from '../domain/job.js';
import { TopicFanout } from './topic-fanout.js';
import { MemoryTopicLogStore } from './memory-log.js';
import { jobTopic, type Backend, type BusEvent, type EventBus, type HistoryRead, type JobFilter, type JobStore, type ListPosition } from './types.js';

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

/** In-memory {@link JobStore}; keeps `historySize` events per job. */
export class MemoryJobStore implements JobStore {
  private readonly jobs = new Map<string, JobRecord>();
  private readonly rings = new Map<string, EventRing>();
  /** Per tenant, job ids in creation order (oldest first). */
  private readonly byTenant = new Map<string, string[]>();
  private readonly idempotency = new Map<string, { id: string; fingerprint: string }>();

  constructor(
    private readonly bus: MemoryEventBus,
    private readonly historySize: number,
  ) {}

  async create(job: JobRecord, idem?: { key: string; fingerprint: string }) {
    if (idem) {
      const key = `${tenantKey(job.tenant)}\u0000${idem.key}`;
      const seen = this.idempotency.get(key);
      if (seen) return { job: this.jobs.get(seen.id)!, created: false, fingerprint: seen.fingerprint };
      this.idempotency.set(key, { id: job.id, fingerprint: idem.fingerprint });
    }
    this.jobs.set(job.id, job);
    const key = tenantKey(job.tenant);
    const list = this.byTenant.get(key) ?? [];
    list.push(job.id);
    this.byTenant.set(key, list);
    return { job, created: true };
  }

  async get(id: string) {
    return this.jobs.get(id) ?? null;
  }

  async list(tenant: Tenant, filter: JobFilter, first: number, after: ListPosition | null) {
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
    const current = this.jobs.get(id);
    if (!current) throw notFound(id);
    const result = change(current);
    if (!result) return null;
    this.jobs.set(id, result.job);
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

  async restore(job: JobRecord): Promise<boolean> {
    if (this.jobs.has(job.id)) return false;
    await this.create(job);
    return true;
  }

  async history(id: string, afterOffset: number): Promise<HistoryRead> {
    const job = this.jobs.get(id);
    if (!job) return { events: [], covered: false };
    if (afterOffset >= job.offset) return { events: [], covered: true };
    const ring = this.rings.get(id);
    return ring ? ring.after(afterOffset, job.offset) : { events: [], covered: false };
  }

  async ping() {}
  async close() {}
}

/** Creates the in-memory backend. */
export function createMemoryBackend(opts: { historySize: number; onError?: (topic: string, error: unknown) => void }): Backend {
  const bus = new MemoryEventBus(opts.onError);
  const store = new MemoryJobStore(bus, opts.historySize);
  const logs = new MemoryTopicLogStore(bus, opts.historySize);
  return { kind: 'memory', store, bus, logs, close: async () => {} };
}
