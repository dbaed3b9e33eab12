/**
 * Local fan-out of one topic's events to its listeners. Both backends use it
 * so that the per-event cost is one decode per topic per instance; listeners
 * get the same event object.
 */
import type { BusEvent, EventListener } from './types.js';

/** Listener sets by topic, with the acquire/release of the underlying subscription. */
export class TopicFanout<Handle> {
  private readonly topics = new Map<string, { listeners: Set<EventListener<BusEvent>>; ready: Promise<Handle> }>();

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
      const listeners = new Set<EventListener<BusEvent>>();
      const deliver = (event: BusEvent) => {
        for (const l of listeners) {
          try {
            l(event);
          } catch (error) {
            this.onListenerError(topic, error);
          }
        }
      };
      const created = { listeners, ready: this.open(topic, deliver) };
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

  get size(): number {
    return this.topics.size;
  }

  topicsList(): string[] {
    return [...this.topics.keys()];
  }
}
