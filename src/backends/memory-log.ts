/**
 * In-memory {@link TopicLogStore}: heads in a Map, history in a
 * {@link HistoryRing} per topic, publication through the in-process bus.
 * Commits run synchronously between awaits, so they are atomic by
 * construction. `ttlSeconds` is ignored: a job's logs are removed with the job
 * (memory.ts).
 *
 * It is the memory backend's only event store: a job is the topic log
 * `job:<id>` whose state is the JobRecord (MemoryJobStore creates it with
 * {@link MemoryTopicLogStore.create} and changes it with
 * {@link MemoryTopicLogStore.commit}), so jobs, training events, commands and
 * activity share one ring, one offset check and one publication path.
 */
import { notFound } from '../domain/errors.js';
import { newEpoch } from '../domain/ids.js';
import { HistoryRing } from './history-ring.js';
import type { MemoryEventBus } from './memory.js';
import { assertConsecutive, type LogCommit, type LogCommitted, type LogHead, type HistoryRead, type TopicLogStore } from './topic-log.js';
import type { BusEvent } from './types.js';
import { JOB_OWNED, jobTopic, type JobOwnedTopics } from '../domain/topics.js';
import type { MemoryChangeFeed } from './memory-changes.js';
import type { JobChangeRecord } from '../domain/changes.js';

interface Entry {
  head: LogHead<unknown>;
  ring: HistoryRing<BusEvent>;
}

/** What {@link MemoryTopicLogStore.commit} commits: a {@link LogCommit}, and optionally a new epoch for the log. */
export interface MemoryLogCommit<S, E extends BusEvent, V = undefined> extends LogCommit<S, E, V> {
  /** The log's epoch from now on (a job whose epoch was rotated); unset: unchanged. */
  epoch?: string;
}

export class MemoryTopicLogStore implements TopicLogStore {
  private readonly logs = new Map<string, Entry>();

  /**
   * @param historySize events kept per topic (RUNWATCH_HISTORY).
   * @param feed the change log that commits carrying a `change` append to (none: dropped).
   * @param owned which logs belong to a job (refused once it is gone).
   */
  constructor(
    private readonly bus: MemoryEventBus,
    private readonly historySize: number,
    private readonly feed: MemoryChangeFeed | null = null,
    private readonly owned: JobOwnedTopics = JOB_OWNED,
  ) {}

  /** Drops a topic's log (its job was removed). */
  remove(topic: string): void {
    this.logs.delete(topic);
  }

  /** Topic logs held now, jobs' included (diagnostics, tests). */
  get size(): number {
    return this.logs.size;
  }

  /** The topic's head as stored (not a copy: do not change it), or null when the log does not exist. Synchronous. */
  peek<S>(topic: string): LogHead<S> | null {
    return (this.logs.get(topic)?.head as LogHead<S> | undefined) ?? null;
  }

  /**
   * Creates a topic's log with a given head (a job's: its epoch, offset and
   * record) and an empty history, unless it exists; `change` (a job's
   * creation) goes to the change log in the same step, as on Redis
   * (RedisTopicLogStore.create).
   * @returns false (and changes nothing) when the log exists already.
   */
  create<S>(topic: string, head: LogHead<S>, opts: { change?: JobChangeRecord } = {}): boolean {
    if (this.logs.has(topic)) return false;
    this.logs.set(topic, { head: { ...head }, ring: new HistoryRing(this.historySize) });
    if (opts.change) this.feed?.append(opts.change);
    return true;
  }

  /**
   * The synchronous step of {@link append}, without its owner check:
   * applies `change` to the head (a fresh epoch, offset 0 and null state
   * when the log does not exist; then the log is created), stores the new
   * state and epoch, pushes the events into history and publishes them,
   * then the notices, and appends its job change (if any) to the change log.
   * @throws Error when the events' offsets do not follow the head's (a programming error); whatever `change` throws. Nothing changes then.
   * @returns the committed change with its epoch, or null when `change` returned null.
   */
  commit<S, E extends BusEvent, V = undefined>(topic: string, change: (head: LogHead<S>) => MemoryLogCommit<S, E, V> | null): LogCommitted<S, E, V> | null {
    const existing = this.logs.get(topic);
    const head = (existing?.head ?? { epoch: newEpoch(), offset: 0, state: null }) as LogHead<S>;
    const commit = change({ ...head });
    if (!commit) return null;
    assertConsecutive(topic, head.offset, commit.events);
    const entry = existing ?? { head, ring: new HistoryRing(this.historySize) };
    const epoch = commit.epoch ?? head.epoch;
    entry.head = { epoch, offset: head.offset + commit.events.length, state: commit.state };
    this.logs.set(topic, entry);
    for (const event of commit.events) entry.ring.push(event);
    for (const event of commit.events) this.bus.publish(topic, event);
    for (const { topic: other, message } of commit.notify ?? []) this.bus.publish(other, message);
    if (commit.change) this.feed?.append(commit.change);
    return { ...commit, epoch };
  }

  async head<S>(topic: string): Promise<LogHead<S> | null> {
    const head = this.peek<S>(topic);
    return head && { ...head };
  }

  /** See {@link TopicLogStore.append}; a job-owned log's job exists while its `job:<id>` log does. */
  async append<S, E extends BusEvent, V = undefined>(topic: string, change: (head: LogHead<S>) => LogCommit<S, E, V> | null): Promise<LogCommitted<S, E, V> | null> {
    const owner = this.owned.ownerOf(topic);
    if (owner !== null && !this.logs.has(jobTopic(owner))) throw notFound(owner);
    return this.commit(topic, change);
  }

  async history<E extends BusEvent>(topic: string, afterOffset: number): Promise<HistoryRead<E>> {
    const entry = this.logs.get(topic);
    if (!entry) return { events: [], covered: false };
    return (entry.ring as HistoryRing<E>).after(afterOffset, entry.head.offset);
  }
}
