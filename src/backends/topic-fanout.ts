/**
 * Local fan-out of one topic's events to its listeners. Both backends use it
 * so that the per-event cost is one decode per topic per instance; listeners
 * get the same event object. It also remembers the newest event per topic,
 * which is where catch-up after a lost connection starts.
 */
import type { JobEvent } from '../domain/job.js';
import type { BusEvent, EventListener } from './types.js';

interface TopicEntry<Handle> {
  listeners: Set<EventListener<BusEvent>>;
  ready: Promise<Handle>;
  /** Newest event delivered on the topic since it was opened; null: none yet. */
  last: BusEvent | null;
}

/** Listener sets by topic, with the acquire/release of the underlying subscription. */
export class TopicFanout<Handle> {
  private readonly topics = new Map<string, TopicEntry<Handle>>();

  constructor(
    /** Opens the underlying subscription for a topic; resolves when it is live. */
    private readonly open: (topic: string, deliver: (event: BusEvent) => void) => Promise<Handle>,
    /** Releases it. */
    private readonly release: (topic: string, handle: Handle) => Promise<void> | void,
    private readonly onListenerError: (topic: string, error: unknown) => void,
  ) {}

  async subscribe<E extends BusEvent>(topic: string, typedListener: EventListener<E>): Promise<() => void> {
    const listener = typedListener as EventListener<BusEvent>;
    let entry = this.topics.get(topic);
    if (!entry) {
      const created: TopicEntry<Handle> = { listeners: new Set(), ready: undefined as unknown as Promise<Handle>, last: null };
      created.ready = this.open(topic, (event) => this.deliver(created, topic, event));
      entry = created;
      this.topics.set(topic, created);
      created.ready.catch(() => {
        if (this.topics.get(topic) === created) this.topics.delete(topic);
      });
    }
    entry.listeners.add(listener);
    try {
      await entry.ready;
    } catch (error) {
      entry.listeners.delete(listener);
      throw error;
    }
    const current = entry;
    let removed = false;
    return () => {
      if (removed) return;
      removed = true;
      current.listeners.delete(listener);
      if (current.listeners.size === 0 && this.topics.get(topic) === current) {
        this.topics.delete(topic);
        void current.ready.then((handle) => this.release(topic, handle)).catch((error) => this.onListenerError(topic, error));
      }
    };
  }

  private deliver(entry: TopicEntry<Handle>, topic: string, event: BusEvent): void {
    if ((event as Partial<JobEvent>).type !== 'SNAPSHOT' && (entry.last === null || event.offset > entry.last.offset)) entry.last = event;
    for (const listener of entry.listeners) {
      try {
        listener(event);
      } catch (error) {
        this.onListenerError(topic, error);
      }
    }
  }

  /** Delivers an event that did not come through the subscription (catch-up after a reconnect). */
  inject(topic: string, event: BusEvent): void {
    const entry = this.topics.get(topic);
    if (entry) this.deliver(entry, topic, event);
  }

  /** Every open topic with the newest event seen on it (a JobEvent on `job:` topics; other topics carry other events). */
  openTopics(): { topic: string; last: JobEvent | null }[] {
    return [...this.topics].map(([topic, entry]) => ({ topic, last: entry.last as JobEvent | null }));
  }

  get size(): number {
    return this.topics.size;
  }
}
