/**
 * The two backend interfaces. Each has an in-memory implementation (the
 * default: one instance, no Redis) and a Redis one (several instances share
 * state, history and pub/sub). A backend knows nothing of GraphQL; it stores
 * what the domain computed and delivers events.
 */
import type { HistoryRead, TopicLogStore } from './topic-log.js';
import type { WorkQueues } from './work-queue.js';
import type { JobChangeRecord } from '../domain/changes.js';
import { matchesJobFilter } from '../domain/job-list.js';
import type { JobChange, JobEvent, JobKind, JobRecord, JobStatus, Tenant } from '../domain/job.js';

/** Filter of {@link JobStore.list}; empty arrays or undefined match everything. */
export interface JobFilter {
  status?: readonly JobStatus[] | null;
  kind?: readonly JobKind[] | null;
  /** Jobs carrying every one of these tags. */
  tags?: readonly string[] | null;
  /** Children of this job only. */
  parentId?: string | null;
}

/** Does `job` match `filter` (see {@link JobFilter})? */
export const matchesFilter = (job: JobRecord, filter: JobFilter): boolean => matchesJobFilter(job, filter);

/** A position in a tenant's newest-first job list: the last job of the previous page. */
export interface ListPosition {
  createdAt: number;
  id: string;
}

export type { HistoryRead } from './topic-log.js';

/** Job state and per-job event history. */
export interface JobStore {
  /**
   * Stores a new job. With `idempotency`, a second call with the same key in
   * the same tenant returns the first job and `created: false`; the caller
   * compares fingerprints.
   */
  create(job: JobRecord, idempotency?: { key: string; fingerprint: string }): Promise<{ job: JobRecord; created: boolean; fingerprint?: string }>;
  /** The job, or null when there is none (tenancy is the caller's check). */
  get(id: string): Promise<JobRecord | null>;
  /** A page of the tenant's jobs, newest first. */
  list(tenant: Tenant, filter: JobFilter, first: number, after: ListPosition | null): Promise<{ jobs: JobRecord[]; hasNextPage: boolean }>;
  /**
   * Atomically applies `change` to the job: reads it, calls `change` (which
   * may throw a DomainError: then nothing changes), and commits the new
   * record together with its events — appended to history and published on
   * the job's topic, in offset order, exactly once. Concurrent updates from
   * any number of instances never lose one another (compare-and-set, retried).
   * `change` may run more than once and must be pure. Returning null commits nothing.
   * @returns the committed change, or null when `change` returned null.
   * @throws DomainError NOT_FOUND when the job does not exist.
   */
  update(id: string, change: (job: JobRecord) => JobChange | null): Promise<JobChange | null>;
  /**
   * Puts back a job the backend lost (Redis restarted empty), unless it exists
   * again already. @returns true when this call restored it.
   */
  restore(job: JobRecord): Promise<boolean>;
  /** Events of the job with offset > `afterOffset`, from history. */
  history(id: string, afterOffset: number): Promise<HistoryRead<JobEvent>>;
  /** Resolves when the backend is reachable; rejects otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Anything the bus carries: every event has a numeric stream `offset` (job events, topic-log entries, activity notices). */
export interface BusEvent {
  offset: number;
}

/** Called once per event per subscription, in publish order. */
export type EventListener<E extends BusEvent = JobEvent> = (event: E) => void;

/**
 * Topic pub/sub. One underlying subscription per topic per instance, shared by
 * every local listener: per event, the work of receiving and decoding is done
 * once per topic, not once per subscriber.
 */
export interface EventBus {
  /**
   * Adds a listener to a topic. Resolves once the subscription is live (for
   * Redis: SUBSCRIBE confirmed), so nothing published after that is missed.
   * @returns a function that removes the listener; the last one removed releases the topic.
   */
  subscribe<E extends BusEvent = JobEvent>(topic: string, listener: EventListener<E>): Promise<() => void>;
  /** Number of topics this instance holds a subscription for (diagnostics, tests). */
  topicCount(): number;
  /**
   * Sets the gap handler: after the bus lost its connection and re-subscribed
   * (Redis only; the memory bus never loses one), it is called once per open
   * topic with the newest event seen there (null: none yet) and returns the
   * events to deliver to that topic's listeners (they drop what they already
   * have), and which of them are fresh starts (`isReset`: delivered even at an
   * offset already seen, and not where the next catch-up starts). Null: nothing
   * to deliver. The bus keeps events and topic names opaque: the handler (the
   * stream kinds, delivery/stream-kinds.ts) knows them. One handler per bus; a
   * second call replaces the first.
   */
  onGap(handler: GapHandler): void;
  close(): Promise<void>;
}

/** What a {@link GapHandler} delivers: the events, and which of them are fresh starts. */
export interface GapFill {
  events: BusEvent[];
  isReset?: (event: BusEvent) => boolean;
}

/** See {@link EventBus.onGap}. */
export type GapHandler = (topic: string, last: BusEvent | null) => Promise<GapFill | null>;

/**
 * The log of job changes (see domain/changes.ts), consumed by projectors.
 *
 * Each projector is a named consumer group: every change committed after the
 * projector was first registered anywhere in the deployment is handed to
 * exactly one instance's `apply` at a time, at least once, until `apply`
 * resolves (then it is acknowledged). A change whose `apply` threw, or whose
 * instance died before acknowledging, is handed over again (on Redis: claimed
 * by any instance after the claim timeout). Changes of one job are applied in
 * commit order on one instance, but after a hand-over an older change may come
 * after a newer one: projectors are idempotent by the change's offset
 * (domain/changes.ts `isNewer`). Different jobs' changes are applied concurrently.
 */
export interface ChangeFeed {
  /**
   * Registers projector `name` on this instance (once per name per instance).
   * @param apply the projection of one change; a throw leaves it unacknowledged (retried later).
   */
  project(name: string, apply: (change: JobChangeRecord) => Promise<void>): void;
  /** Resolves once every registered projector's group exists (Redis: XGROUP CREATE done), so no change committed from now on is missed. */
  ready(): Promise<void>;
  /** Stops consuming (changes in flight are handed over later, to this or another instance). */
  close(): Promise<void>;
}

/**
 * When to look at each job next: one check time (epoch ms) per job id, shared
 * by every instance, read by one sweep timer per instance (stall detection,
 * services/stalls.ts) — never a timer per job. Entries are hints: the job's
 * record decides, so an entry that is early only costs one extra look.
 * Memory: a binary heap. Redis: sorted sets sharded by job id (see redis-deadlines.ts).
 */
export interface DeadlineIndex {
  /** Sets (or moves) the job's check time, epoch ms. */
  schedule(jobId: string, atMs: number): Promise<void>;
  /**
   * Claims up to `limit` jobs whose check time is at or before `nowMs`: each
   * claimed entry moves to `nowMs + leaseMs`, so no other instance claims it
   * meanwhile and, should this one die before it reschedules, another claims
   * it after the lease. Atomic per entry across instances.
   * @returns the claimed job ids.
   * @throws DomainError SERVICE_UNAVAILABLE while the backend (Redis) is unreachable, as every method here.
   */
  claimDue(nowMs: number, leaseMs: number, limit: number): Promise<string[]>;
  /** Forgets the job (finished, removed, or no stall detection). */
  remove(jobId: string): Promise<void>;
}

/** A backend: the interfaces plus what it is. */
export interface Backend {
  /** Which backend: in memory, one Redis, or a Redis Cluster. */
  kind: 'memory' | 'redis' | 'redis-cluster';
  store: JobStore;
  bus: EventBus;
  /** Generic per-topic event logs with state (training events, commands, activity, budgets); see topic-log.ts. */
  logs: TopicLogStore;
  /** Next stall check of every open job with a heartbeat (services/stalls.ts). */
  deadlines: DeadlineIndex;
  /** Durable work queues with retries (webhook deliveries); see work-queue.ts. */
  queues: WorkQueues;
  /** Job changes for projectors (see {@link ChangeFeed}). */
  changes: ChangeFeed;
  close(): Promise<void>;
}

/**
 * Retention (RUNWATCH_RETENTION_DAYS): how long a finished job is kept.
 * When a job finishes, its record, history, tenant-index entry, idempotency
 * entry and job-owned topic logs (domain/topics.ts `JobOwnedTopics`, given to the backend) are kept
 * `retentionSeconds` more and then removed; unfinished jobs are never removed.
 */
export interface RetentionOptions {
  /** Seconds a finished job is kept after it finishes. */
  retentionSeconds: number;
}
