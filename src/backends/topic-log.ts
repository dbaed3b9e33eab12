/**
 * Topic logs: a generic per-topic event log with a small state document,
 * used by training events, training commands, activity and budgets.
 *
 * A topic log holds, under one topic name (e.g. `training:<runId>`):
 * - a head: the `epoch` of its history, the `offset` of its newest event,
 *   and a JSON `state` the caller owns (conflation clocks, budget numbers...);
 * - a history of its newest events (RUNWATCH_HISTORY of them; Redis trims
 *   approximately and may keep a few more), each with a consecutive `offset`;
 * - its events are published on the topic (EventBus) as they are committed.
 *
 * {@link TopicLogStore.append} is compare-and-set, like JobStore.update: the
 * caller computes the new state and events from the head with a pure
 * function, and the backend commits state, history and publication in one
 * atomic step, retrying the function when another writer (any instance) got
 * there first. Offsets are therefore gap-free and in one order everywhere.
 */
import type { JobChangeRecord } from '../domain/changes.js';
import type { BusEvent } from './types.js';

/** The head of a topic log, as `append`'s change function sees it. */
export interface LogHead<S> {
  /** Epoch of this history (see domain/cursor.ts); a new one when the log is created or was lost. */
  epoch: string;
  /** Offset of the newest event; 0 before the first. */
  offset: number;
  /** The caller's state; null while the log does not exist yet. */
  state: S | null;
}

/** What a change commits; `V` is the type of the caller's own result ({@link LogCommit.value}). */
export interface LogCommit<S, E extends BusEvent, V = undefined> {
  /** The new state (replaces the old one). */
  state: S;
  /** New events; their offsets must be head.offset + 1, + 2, ... in order. Stored in history and published on the topic. */
  events: E[];
  /** Messages published (not stored) on other topics after the events, in the same atomic step. */
  notify?: { topic: string; message: BusEvent }[];
  /**
   * A job change appended to the change log (backends' ChangeFeed) in the same atomic step: set by the job
   * store for commits of `job:<id>` logs that produced events. Other logs leave it unset.
   */
  change?: JobChangeRecord;
  /**
   * Seconds until the whole log (head and history) expires (Redis only); unset or 0: no expiry of its own,
   * and an expiry already set (the retention of the job that owns the log) stays.
   */
  ttlSeconds?: number;
  /**
   * The caller's own result of the change (e.g. the command record it added), handed back by `append` with the
   * commit: the change may run more than once, and this is the value of the run that was committed. Not stored.
   */
  value?: V;
}

/** Result of {@link TopicLogStore.append}: what was committed (its `value` included), with the epoch it was committed in. */
export type LogCommitted<S, E extends BusEvent, V = undefined> = LogCommit<S, E, V> & { epoch: string };

/**
 * What a history read returns — {@link TopicLogStore.history}, JobStore.history (`E` = JobEvent) and the
 * resumable streams of src/delivery: the events after an offset, and whether history still has all of them.
 */
export interface HistoryRead<E> {
  /** Events with offset > afterOffset, in order. */
  events: E[];
  /** False when history no longer holds every event after afterOffset (trimmed, or the log is gone). */
  covered: boolean;
}

/** Per-topic event logs with state; a job is one too (`job:<id>`, state: its record). Backends: memory-log.ts and redis-log.ts. */
export interface TopicLogStore {
  /** The head of the topic's log, or null when it does not exist. */
  head<S>(topic: string): Promise<LogHead<S> | null>;
  /**
   * Atomically applies `change` to the topic's log. A log owned by a job
   * (`training:<jobId>`, `commands:<jobId>`; see domain/topics.ts `JobOwnedTopics`) shares
   * its job's retention: it expires with the job, and appending to it once
   * the job is gone is refused.
   * @throws DomainError NOT_FOUND when the log's owning job no longer exists. `change` sees the current
   * head (a fresh epoch, offset 0 and null state when the log does not exist),
   * may throw (nothing changes), may run more than once, and must be pure.
   * Returning null commits nothing.
   * @returns the committed change with its epoch (and the committed run's `value`), or null when `change` returned null.
   */
  append<S, E extends BusEvent, V = undefined>(topic: string, change: (head: LogHead<S>) => LogCommit<S, E, V> | null): Promise<LogCommitted<S, E, V> | null>;
  /** Events of the topic with offset > afterOffset, from history. */
  history<E extends BusEvent>(topic: string, afterOffset: number): Promise<HistoryRead<E>>;
}

/** Checks that a commit's events carry the offsets that follow the head. @throws Error otherwise (a programming error). */
export function assertConsecutive(topic: string, headOffset: number, events: readonly BusEvent[]): void {
  events.forEach((event, i) => {
    if (event.offset !== headOffset + i + 1) throw new Error(`topic ${topic}: event offset ${event.offset}, expected ${headOffset + i + 1}`);
  });
}

/**
 * The completeness rule of history reads: the events read after `afterOffset` (those with offset > afterOffset
 * still held, in offset order) cover the gap up to the head iff history holds every event after afterOffset —
 * afterOffset >= headOffset (there is none), or the first one read has offset afterOffset + 1 (none before it was
 * trimmed; offsets are consecutive, see {@link assertConsecutive}). `covered` of {@link HistoryRead}.
 */
export function historyCovers(afterOffset: number, headOffset: number, events: readonly BusEvent[]): boolean {
  return afterOffset >= headOffset || events[0]?.offset === afterOffset + 1;
}
