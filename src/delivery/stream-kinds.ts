/**
 * Stream kinds: one descriptor per kind of stream (job events, training
 * events, commands, the tenant job list, activity notices), registered once,
 * and used by both paths that start a stream's events:
 * - a subscription ({@link StreamKinds.open}): subscribe to the topic, read
 *   the head, replay from the client's cursor or start fresh, go live
 *   (openTopicStream, topic-stream.ts);
 * - the reconnect catch-up ({@link StreamKinds.fillGap}, the bus's gap
 *   handler): after the bus lost its connection, each open topic gets the
 *   stored events after the newest one this instance saw, or a fresh start.
 * Both follow one rule ({@link startEvents}): the events after the position
 * from history when the head is in the same epoch, not behind it, and history
 * still covers the gap; else the fresh start made from the head (events that
 * reset subscribers: delivered even at an offset already seen).
 *
 * The bus knows neither topic names nor resets: the registry is its only gap
 * handler and finds the kind by topic prefix.
 */
import type { BusEvent, EventBus, GapFill, HistoryRead } from '../backends/types.js';
import type { StreamPosition } from '../domain/cursor.js';
import { LiveStream, type LiveStreamPolicy } from './live-stream.js';
import { openTopicStream, startEvents, type StreamRegistry } from './topic-stream.js';

/** How a kind's events behave in a subscriber's queue: the event half of a LiveStreamPolicy. */
export type StreamEvents<E> = Pick<LiveStreamPolicy<E>, 'offsetOf' | 'isConflatable' | 'conflationKey' | 'isFinal' | 'isReset'>;

/**
 * One kind of stream. `H` is its head: the state a stream starts from and the
 * position (epoch, offset of its newest event) of its topic.
 */
export interface StreamKind<E extends BusEvent, H> {
  /** Topic prefix (domain/topics.ts), e.g. `job:`. Every topic starting with it is of this kind. */
  prefix: string;
  /** Dedupe, conflation, final and reset events. Method syntax: one object for every stream, no closures per stream. */
  events: StreamEvents<E>;
  /** Reads a topic's head; null when the topic has none (then a catch-up delivers nothing). */
  readHead(topic: string): Promise<H | null>;
  /** The head's position; omitted for kinds without cursors (every start is a fresh start). */
  positionOf?(head: H): StreamPosition;
  /** The position of an event this instance saw (the catch-up starts after it); omitted: no cursors. */
  positionOfEvent?(event: E): StreamPosition;
  /** Events of the topic after `afterOffset` (needed with positionOf). */
  history?(topic: string, afterOffset: number): Promise<HistoryRead<E>>;
  /** The fresh start made from the head (a job's SNAPSHOT; a trainer's pending commands). */
  freshStart(topic: string, head: H): E[] | Promise<E[]>;
  /** Has the topic nothing more to come (a finished job)? Then an empty replay becomes a fresh start. */
  isFinished?(head: H): boolean;
  /** Runs before a catch-up reads the head (a job Redis lost is restored here). */
  repair?(topic: string, last: E | null): Promise<void>;
}

/** Per-subscription parts of {@link StreamKinds.open}. */
export interface OpenOptions<E, H> {
  /** The topic (of the kind's prefix). */
  topic: string;
  /** The client's decoded `after` cursor; null or omitted: fresh start. */
  after?: StreamPosition | null;
  /** Queue bounds, overflow and metrics (delivery/live-stream.ts `queuePolicy`). */
  queue: Omit<LiveStreamPolicy<E>, keyof StreamEvents<E>>;
  /** The service's open streams (ended on shutdown). */
  registry: StreamRegistry<E>;
  /** Reads the head for this subscriber (authorization: throw NOT_FOUND); default the kind's (null: an error). */
  readHead?(): Promise<H>;
  /** This subscriber's fresh start (e.g. a filtered snapshot page); default the kind's. */
  freshStart?(head: H): E[] | Promise<E[]>;
  /** The events this subscriber gets (a filter), live and replayed from history alike; default all. */
  accept?(event: E): boolean;
  /** Called with the number of events replayed, when there are any (metrics). */
  onReplayed?(count: number): void;
  /**
   * The stream feeds a shared channel (src/transport/shared-channel.ts): its
   * policy gets `joinAfter` (LiveStreamPolicy), so that subscribers with a
   * cursor of their own join it after a replay from history. Default false.
   */
  shared?: boolean;
}

/** The registry of stream kinds of one bus (see the module comment). */
export class StreamKinds {
  private readonly kinds: StreamKind<BusEvent, unknown>[] = [];

  constructor(private readonly bus: EventBus) {
    bus.onGap((topic, last) => this.fillGap(topic, last));
  }

  /** Registers a kind (once; its prefix must not overlap another's). @throws Error on an overlapping prefix. */
  register<E extends BusEvent, H>(kind: StreamKind<E, H>): StreamKind<E, H> {
    for (const k of this.kinds)
      if (k.prefix.startsWith(kind.prefix) || kind.prefix.startsWith(k.prefix)) throw new Error(`stream kind ${kind.prefix} overlaps ${k.prefix}`);
    this.kinds.push(kind as unknown as StreamKind<BusEvent, unknown>);
    return kind;
  }

  private kindOf(topic: string): StreamKind<BusEvent, unknown> | undefined {
    return this.kinds.find((k) => topic.startsWith(k.prefix));
  }

  /**
   * The bus's gap handler: what the listeners of `topic` get after a reconnect
   * (see the module comment). Null for topics of no registered kind.
   * @throws whatever the kind's reads throw (the bus retries).
   */
  async fillGap(topic: string, last: BusEvent | null): Promise<GapFill | null> {
    const kind = this.kindOf(topic);
    if (!kind) return null;
    await kind.repair?.(topic, last);
    const head = await kind.readHead(topic);
    if (head === null) return null;
    const positionOf = kind.positionOf;
    const history = kind.history;
    let events: BusEvent[];
    if (positionOf && history && kind.positionOfEvent) {
      const after = last ? kind.positionOfEvent(last) : { epoch: positionOf(head).epoch, offset: 0 };
      events = await startEvents(head, (h) => kind.freshStart(topic, h), { after, positionOf, history: (o) => history(topic, o) });
    } else {
      events = await kind.freshStart(topic, head);
    }
    const isReset = kind.events.isReset;
    return { events, isReset: isReset ? (e) => isReset(e) : undefined };
  }

  /**
   * Opens one subscription of a kind (openTopicStream with the kind's rules).
   * @throws what readHead/history throw (DomainError NOT_FOUND, SERVICE_UNAVAILABLE...), after releasing everything.
   */
  open<E extends BusEvent, H>(kind: StreamKind<E, H>, opts: OpenOptions<NoInfer<E>, NoInfer<H>>): Promise<LiveStream<E>> {
    const { topic } = opts;
    const readHead =
      opts.readHead ??
      (async () => {
        const head = await kind.readHead(topic);
        if (head === null) throw new Error(`topic ${topic} has no head`);
        return head;
      });
    const kindHistory = kind.history;
    const accept = opts.accept;
    const history =
      kindHistory && accept
        ? async (t: string, afterOffset: number) => {
            const read = await kindHistory(t, afterOffset);
            return { events: read.events.filter((e) => accept(e)), covered: read.covered };
          }
        : kindHistory;
    const joinAfter = opts.shared && history ? joinAfterOf(kind, topic, readHead, history, opts.onReplayed) : undefined;
    return openTopicStream<E, H>({
      source: { bus: this.bus, topic, accept: opts.accept },
      // The kind's event rules as the prototype (shared), the stream's queue rules as own properties: a policy is a
      // few fields, not a copy of every rule (and a hidden class) per stream.
      policy: Object.assign(Object.create(kind.events) as object, opts.queue, joinAfter ? { joinAfter } : null) as LiveStreamPolicy<E>,
      registry: opts.registry,
      readHead,
      freshStart: opts.freshStart ?? ((head) => kind.freshStart(topic, head)),
      resume:
        kind.positionOf && history
          ? {
              after: opts.after ?? null,
              positionOf: kind.positionOf,
              history: (afterOffset) => history(topic, afterOffset),
              isFinished: kind.isFinished,
              onReplayed: opts.onReplayed,
            }
          : undefined,
    });
  }
}

/**
 * A shared channel's `joinAfter` (LiveStreamPolicy) for `topic`: the rule of
 * {@link startEvents} for a subscriber joining with its own cursor, against
 * the channel's newest event `last` — null (start with the channel's SNAPSHOT)
 * when the cursor is of another epoch than `last` or the head, ahead of the
 * head, or history no longer covers it; else the stored events (through the
 * subscriber's filter, in `history`) after the cursor up to `last`'s offset.
 * Undefined for kinds without cursors.
 */
function joinAfterOf<E extends BusEvent, H>(
  kind: StreamKind<E, H>,
  topic: string,
  readHead: () => Promise<H>,
  history: (topic: string, afterOffset: number) => Promise<HistoryRead<E>>,
  onReplayed: ((count: number) => void) | undefined,
): ((after: StreamPosition, last: E) => Promise<E[] | null>) | undefined {
  const { positionOf, positionOfEvent } = kind;
  if (!positionOf || !positionOfEvent) return undefined;
  return async (after, last) => {
    const seen = positionOfEvent(last);
    if (after.epoch !== seen.epoch) return null;
    const head = positionOf(await readHead());
    if (head.epoch !== after.epoch || after.offset > head.offset) return null;
    if (after.offset >= seen.offset) return [];
    const read = await history(topic, after.offset);
    if (!read.covered) return null;
    const events = read.events.filter((e) => kind.events.offsetOf(e) <= seen.offset);
    if (events.length > 0) onReplayed?.(events.length);
    return events;
  };
}
