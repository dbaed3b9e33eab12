/**
 * Local fan-out of one topic's events to its listeners. Both backends use it
 * so that the per-event cost is one decode per topic per instance; listeners
 * get the same event object. It also remembers the newest event per topic,
 * which is where catch-up after a lost connection starts.
 */
import type { BusEvent, EventListener } from './types.js';

/**
 * Tells a fresh start (e.g. a job's SNAPSHOT after history was lost) from an
 * ordinary event. Events stay opaque to the fan-out: the service that makes
 * the catch-up events supplies this rule (see EventBus.onReconnect).
 */
export type IsReset = (event: BusEvent) => boolean;

const never: IsReset = () => false;

interface TopicEntry<Handle> {
  listeners: Set<EventListener<BusEvent>>;
  ready: Promise<Handle>;
  /** Newest event delivered on the topic since it was opened; null: none yet. */
  last: BusEvent | null;
  /** While the topic's subscription is being re-established: live events held back until catch-up (see {@link TopicFanout.holdAll}). */
  held: BusEvent[] | null;
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
      const created: TopicEntry<Handle> = { listeners: new Set(), ready: undefined as unknown as Promise<Handle>, last: null, held: null };
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

  private deliver(entry: TopicEntry<Handle>, topic: string, event: BusEvent, reset = false): void {
    if (entry.held) {
      entry.held.push(event);
      return;
    }
    if (!reset && (entry.last === null || event.offset > entry.last.offset)) entry.last = event;
    for (const listener of entry.listeners) {
      try {
        listener(event);
      } catch (error) {
        this.onListenerError(topic, error);
      }
    }
  }

  /**
   * The connection carrying every open topic was lost: from now until {@link resume}, live events of those topics
   * are held back. After a reconnect, live events arrive as soon as the channel is subscribed again, while the
   * events published during the outage still have to be read from history; delivering a newer live event before
   * them would make subscribers (which drop anything at or below the offset they have) lose the older ones.
   * Idempotent.
   */
  holdAll(): void {
    for (const entry of this.topics.values()) entry.held ??= [];
  }

  /**
   * Ends the hold of one topic (catch-up done, or given up): delivers `catchUp` — events read from history after
   * the newest one delivered, possibly a SNAPSHOT that replaces them — then the held-back live events, merged in
   * offset order (catch-up first at equal offsets), each offset once. On a topic that is not held it just
   * delivers `catchUp`. `isReset` marks the fresh starts among `catchUp` (never deduplicated against held events,
   * never remembered as the newest event); default: none.
   */
  resume(topic: string, catchUp: readonly BusEvent[], isReset: IsReset = never): void {
    const entry = this.topics.get(topic);
    if (!entry) return;
    const held = entry.held ?? [];
    entry.held = null;
    const merged: { event: BusEvent; reset: boolean }[] = [];
    let i = 0;
    let j = 0;
    while (i < catchUp.length || j < held.length) {
      const fromCatchUp = j >= held.length || (i < catchUp.length && catchUp[i]!.offset <= held[j]!.offset);
      const next = fromCatchUp ? catchUp[i++]! : held[j++]!;
      const reset = fromCatchUp && isReset(next);
      const previous = merged.at(-1);
      if (previous && previous.event.offset === next.offset && !reset) continue;
      merged.push({ event: next, reset });
    }
    for (const { event, reset } of merged) this.deliver(entry, topic, event, reset);
  }

  /** Every open topic with the newest event seen on it (a JobEvent on `job:` topics; other topics carry other events). */
  openTopics(): { topic: string; last: BusEvent | null }[] {
    return [...this.topics].map(([topic, entry]) => ({ topic, last: entry.last }));
  }

  get size(): number {
    return this.topics.size;
  }

  /** Topics held back now ({@link holdAll} until {@link resume}), with how many live events wait in each (diagnostics). */
  heldTopics(): { topic: string; held: number }[] {
    return [...this.topics].filter(([, entry]) => entry.held !== null).map(([topic, entry]) => ({ topic, held: entry.held!.length }));
  }
}
