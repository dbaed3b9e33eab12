/**
 * In-memory {@link TopicLogStore}: heads in a Map, history in a ring per
 * topic, publication through the in-process bus. Appends run synchronously
 * between awaits, so they are atomic by construction. `ttlSeconds` is
 * ignored: a job's logs are removed with the job (memory.ts `onRemoved`).
 */
import { notFound } from '../domain/errors.js';
import { newEpoch } from '../domain/ids.js';
import type { MemoryEventBus } from './memory.js';
import { assertConsecutive, type LogCommit, type LogCommitted, type LogHead, type LogHistoryRead, type TopicLogStore } from './topic-log.js';
import { ownerJobOf, type BusEvent } from './types.js';

interface Entry {
  head: LogHead<unknown>;
  /** Ring of the newest events. */
  ring: (BusEvent | undefined)[];
  /** Events ever appended (ring index = count % capacity). */
  count: number;
}

export class MemoryTopicLogStore implements TopicLogStore {
  private readonly logs = new Map<string, Entry>();

  constructor(
    private readonly bus: MemoryEventBus,
    private readonly historySize: number,
  ) {}

  /** Does the job that owns a log still exist? Set by the backend; default: yes. */
  ownerExists: (jobId: string) => boolean = () => true;

  /** Drops a topic's log (its job was removed). */
  remove(topic: string): void {
    this.logs.delete(topic);
  }

  /** Topic logs held now (diagnostics, tests). */
  get size(): number {
    return this.logs.size;
  }

  async head<S>(topic: string): Promise<LogHead<S> | null> {
    const entry = this.logs.get(topic);
    return entry ? ({ ...entry.head } as LogHead<S>) : null;
  }

  async append<S, E extends BusEvent>(topic: string, change: (head: LogHead<S>) => LogCommit<S, E> | null): Promise<LogCommitted<S, E> | null> {
    const owner = ownerJobOf(topic);
    if (owner !== null && !this.ownerExists(owner)) throw notFound(owner);
    const existing = this.logs.get(topic);
    const head = (existing?.head ?? { epoch: newEpoch(), offset: 0, state: null }) as LogHead<S>;
    const commit = change({ ...head });
    if (!commit) return null;
    assertConsecutive(topic, head.offset, commit.events);
    const entry = existing ?? { head, ring: new Array(this.historySize), count: 0 };
    entry.head = { epoch: head.epoch, offset: head.offset + commit.events.length, state: commit.state };
    this.logs.set(topic, entry);
    for (const event of commit.events) {
      entry.ring[entry.count % this.historySize] = event;
      entry.count++;
    }
    for (const event of commit.events) this.bus.publish(topic, event);
    for (const { topic: other, message } of commit.notify ?? []) this.bus.publish(other, message);
    return { ...commit, epoch: head.epoch };
  }

  async history<E extends BusEvent>(topic: string, afterOffset: number): Promise<LogHistoryRead<E>> {
    const entry = this.logs.get(topic);
    if (!entry) return { events: [], covered: false };
    if (afterOffset >= entry.head.offset) return { events: [], covered: true };
    const held = Math.min(entry.count, this.historySize);
    const events: E[] = [];
    for (let i = entry.count - held; i < entry.count; i++) {
      const event = entry.ring[i % this.historySize] as E;
      if (event.offset > afterOffset) events.push(event);
    }
    return { events, covered: events.length > 0 && events[0]!.offset === afterOffset + 1 };
  }
}
