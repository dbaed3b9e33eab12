/**
 * The two backend interfaces. Each has an in-memory implementation (the
 * default: one instance, no Redis) and a Redis one (several instances share
 * state, history and pub/sub). A backend knows nothing of GraphQL; it stores
 * what the domain computed and delivers events.
 */
import type { TopicLogStore } from './topic-log.js';
import type { JobChange, JobEvent, JobKind, JobRecord, JobStatus, Tenant } from '../domain/job.js';

/** Filter of {@link JobStore.list}; empty arrays or undefined match everything. */
export interface JobFilter {
  status?: readonly JobStatus[] | null;
  kind?: readonly JobKind[] | null;
}

/** A position in a tenant's newest-first job list: the last job of the previous page. */
export interface ListPosition {
  createdAt: number;
  id: string;
}

/** Result of {@link JobStore.history}. */
export interface HistoryRead {
  /** Events with offset > `afterOffset`, in order. */
  events: JobEvent[];
  /** False when history no longer holds every event after `afterOffset` (trimmed or lost). */
  covered: boolean;
}

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
  history(id: string, afterOffset: number): Promise<HistoryRead>;
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
   * Sets the catch-up for topics starting with `topicPrefix` (e.g. `job:`),
   * run after the bus lost its connection and re-subscribed (Redis only; the
   * memory bus never loses one). It is called once per open topic with the
   * newest event seen there (null: none yet) and returns the events to deliver
   * to that topic's listeners, which drop what they already have.
   * `isReset` tells the fresh starts among those events (a SNAPSHOT made
   * because history no longer covered the gap): they are delivered even at an
   * offset already seen, and are not where the next catch-up starts. The bus
   * keeps events opaque; the service that makes them supplies the rule.
   * Default: no event is a reset.
   */
  onReconnect<E extends BusEvent>(topicPrefix: string, catchUp: CatchUp<E>, isReset?: (event: E) => boolean): void;
  close(): Promise<void>;
}

/** See {@link EventBus.onReconnect}. */
export type CatchUp<E extends BusEvent = JobEvent> = (topic: string, last: E | null) => Promise<E[]>;

/** A backend: the interfaces plus what it is. */
export interface Backend {
  kind: 'memory' | 'redis';
  store: JobStore;
  bus: EventBus;
  /** Generic per-topic event logs with state (training events, commands, activity, budgets); see topic-log.ts. */
  logs: TopicLogStore;
  close(): Promise<void>;
}

/** The topic of a job's events. */
export const jobTopic = (jobId: string) => `job:${jobId}`;
/** The topic log of a training run's events (TrainingService). */
export const trainingTopic = (runId: string) => `training:${runId}`;
/** The topic log of a training run's commands (CommandService). */
export const commandsTopic = (runId: string) => `commands:${runId}`;

/** The topic log of a job's newest item results, one event per item (ResultsService, itemResults). */
export const itemsTopic = (jobId: string) => `items:${jobId}`;
/** The topic log whose state is a job's downsampled metric history (ResultsService, metricSeries); it has no events. */
export const metricsTopic = (jobId: string) => `metrics:${jobId}`;

/** The topic logs that belong to one job: removed with it when retention ends. */
export const jobLogTopics = (jobId: string) => [trainingTopic(jobId), commandsTopic(jobId), itemsTopic(jobId), metricsTopic(jobId)];

/** The job a topic log belongs to (`training:<id>`, `commands:<id>`, `items:<id>`, `metrics:<id>`), or null for account-level logs (activity, budgets). */
export function ownerJobOf(topic: string): string | null {
  const match = /^(?:training|commands|items|metrics):(.+)$/s.exec(topic);
  return match ? match[1]! : null;
}

/**
 * Retention (RUNWATCH_RETENTION_DAYS): how long a finished job is kept.
 * When a job finishes, its record, history, tenant-index entry, idempotency
 * entry and job-owned topic logs ({@link jobLogTopics}) are kept
 * `retentionSeconds` more and then removed; unfinished jobs are never removed.
 */
export interface RetentionOptions {
  /** Seconds a finished job is kept after it finishes. */
  retentionSeconds: number;
}
