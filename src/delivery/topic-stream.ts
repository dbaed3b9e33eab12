/**
 * One resumable, conflating, bounded stream over a topic: the steps every
 * subscription of runwatch takes (runProgress, trainingEvents,
 * trainingCommands, activity), written once.
 *
 * 1. subscribe to the live events first (the topic on the EventBus, or a
 *    shared source such as an activity scope), buffering them;
 * 2. read the head (the state and its stream position);
 * 3. start: the events after the client's cursor from history when the head's
 *    epoch matches and history still covers them (replay), else a fresh start
 *    (SNAPSHOT-like events the spec makes from the head);
 * 4. go live: buffered and later live events follow, each offset once
 *    (duplicates of what the start covered are dropped), conflated and bounded
 *    per {@link LiveStreamPolicy}; the stream ends after a final event;
 * 5. release the subscription exactly once, on every path: the start fails
 *    (NOT_FOUND, Redis away), the client leaves while the subscription is
 *    still opening, the stream ends, or the service shuts down
 *    ({@link StreamRegistry.closeAll}).
 *
 * The ordering (subscribe, then read the position, then the data, then drop
 * what was already delivered) follows centrifuge-js's `getState` advice and
 * the recovery of centrifugal/centrifuge (`since` = epoch + offset; a changed
 * epoch means "start afresh"). The per-subscriber queue is {@link LiveStream}.
 */
import type { BusEvent, EventBus, HistoryRead } from '../backends/types.js';
import type { StreamPosition } from '../domain/cursor.js';
import { DomainError } from '../domain/errors.js';
import { LiveStream, type LiveStreamPolicy } from './live-stream.js';

export type { StreamPosition } from '../domain/cursor.js';


/** How a stream resumes from a client's cursor (omit for streams without cursors). */
export interface ResumeSpec<E, H> {
  /** The client's position (its decoded `after` cursor); null: no cursor, always a fresh start. */
  after: StreamPosition | null;
  /** The head's position: its epoch and the offset of its newest event. */
  positionOf(head: H): StreamPosition;
  /** Reads the events after `afterOffset` (called only when the epochs match and the cursor is not ahead of the head). */
  history(afterOffset: number): Promise<HistoryRead<E>>;
  /**
   * Has the stream nothing more to come (a finished job)? Then an empty
   * replay (the client saw everything) becomes a fresh start, so the stream
   * still delivers the final state and ends. Default: never finished.
   */
  isFinished?(head: H): boolean;
  /** Called with the number of events replayed, when there are any (metrics). */
  onReplayed?(count: number): void;
}

/** Where a stream's live events come from. */
export type LiveSource<E> =
  /** One topic on the bus; `accept` filters live events before they are queued (default: all). */
  | { bus: EventBus; topic: string; accept?(event: E): boolean }
  /** A source of the caller's own (e.g. one shared per scope): resolves once live, with the function that leaves it. */
  | { subscribe(push: (event: E) => void): Promise<() => void> };

/** Everything {@link openTopicStream} needs to know about one kind of stream. */
export interface TopicStreamSpec<E, H> {
  /** Live events; subscribed before the head is read. */
  source: LiveSource<E>;
  /** Dedupe, conflation, bounds, final and reset events (see LiveStreamPolicy). */
  policy: LiveStreamPolicy<E>;
  /** The service's open streams: it aborts them on shutdown. */
  registry: StreamRegistry<E>;
  /** Reads the state the stream starts from; a throw fails the open (e.g. DomainError NOT_FOUND). */
  readHead(): Promise<H>;
  /** The fresh start made from the head (e.g. one SNAPSHOT; a trainer's pending commands). */
  freshStart(head: H): E[] | Promise<E[]>;
  /** Resume from a cursor; omitted: every stream starts fresh. */
  resume?: ResumeSpec<E, H>;
  /**
   * Wait for the head before returning the stream (default true: a failure to
   * read it is the caller's error). False: the stream is returned once live
   * events flow and starts when the head arrives; the client may leave in
   * between, and a failure ends the stream with that error. For heads that
   * come late by design (activity: the scope's next shared computation).
   */
  awaitHead?: boolean;
}

/**
 * The events a stream starts with: the replay after `resume.after` when the
 * head's epoch is the cursor's, the cursor is not ahead of the head and
 * history covers the gap, and the replay is not an empty one of a finished
 * stream; else `freshStart(head)` (which may be async: it may read more to make it).
 */
export async function startEvents<E, H>(head: H, freshStart: (head: H) => E[] | Promise<E[]>, resume?: ResumeSpec<E, H>): Promise<E[]> {
  const after = resume?.after;
  if (!resume || !after) return freshStart(head);
  const position = resume.positionOf(head);
  if (after.epoch !== position.epoch || after.offset > position.offset) return freshStart(head);
  const read = await resume.history(after.offset);
  if (!read.covered) return freshStart(head);
  // Nothing after the cursor and nothing to come: end with the final state.
  if (read.events.length === 0 && resume.isFinished?.(head)) return freshStart(head);
  if (read.events.length > 0) resume.onReplayed?.(read.events.length);
  return read.events;
}

/**
 * Opens one stream per {@link TopicStreamSpec} (see the module comment for
 * the steps). The returned iterator is what GraphQL gets: its `return()`
 * releases the subscription at once.
 * @throws whatever subscribing or `readHead`/`history` throws (with `awaitHead`
 *   unset), after releasing everything: DomainError NOT_FOUND, BAD_USER_INPUT,
 *   SERVICE_UNAVAILABLE (Redis away), as the spec's callbacks raise them.
 */
export async function openTopicStream<E, H>(spec: TopicStreamSpec<E, H>): Promise<LiveStream<E>> {
  const stream = new LiveStream<E>(spec.policy);
  // The closures that live as long as the stream are made by endOf and pushTo, not here: a closure made in this
  // scope would keep `spec` (readHead, freshStart, resume and their closures) alive as long as the stream.
  const link = new StreamLink(stream, spec.registry);
  stream.onEnd(endOf(link));
  spec.registry.add(stream); // may end it at once (registry already closed)
  if (link.ended) return stream;
  try {
    const leave = await subscribe(spec.source, pushTo(stream));
    // The client left (or the service shut down) while the subscription was opening: leave at once.
    if (link.ended) leave();
    else link.release = leave;
  } catch (error) {
    await stream.return();
    throw error;
  }
  if (link.ended) return stream;
  const started = (async () => startEvents(await spec.readHead(), spec.freshStart, spec.resume))();
  if (spec.awaitHead === false) {
    started.then(
      (events) => stream.goLive(events),
      (error: unknown) => stream.abort(error),
    );
    return stream;
  }
  try {
    stream.goLive(await started);
    return stream;
  } catch (error) {
    await stream.return();
    throw error;
  }
}

/** What ends with a stream: its place in the registry and its live subscription (released once). */
class StreamLink<E> {
  ended = false;
  /** Leaves the live source; set once subscribed. */
  release: (() => void) | null = null;

  constructor(
    private readonly stream: LiveStream<E>,
    private readonly registry: StreamRegistry<E>,
  ) {}

  /** The stream ended: leave the registry and the live source. */
  end(): void {
    this.ended = true;
    this.registry.delete(this.stream);
    const leave = this.release;
    this.release = null;
    leave?.();
  }
}

/** The stream's end hook, closing over nothing but `link`. */
function endOf<E>(link: StreamLink<E>): () => void {
  return () => link.end();
}

/** The live source's listener, closing over nothing but `stream`. */
function pushTo<E>(stream: LiveStream<E>): (event: E) => void {
  return (event) => stream.push(event);
}

function subscribe<E>(source: LiveSource<E>, push: (event: E) => void): Promise<() => void> {
  if ('subscribe' in source) return source.subscribe(push);
  const { accept } = source;
  return source.bus.subscribe<E & BusEvent>(source.topic, accept ? (e) => accept(e) && push(e) : push);
}

/** Message streams end with on shutdown (code SERVICE_UNAVAILABLE). */
export const RESTARTING = 'server restarting: resubscribe with `after` set to your last cursor';

/**
 * A service's open streams, so that its `close()` can end them all. Streams
 * leave it when they end; a stream added after {@link closeAll} is aborted at
 * once (a subscription racing the shutdown does not outlive it).
 */
export class StreamRegistry<E> {
  private readonly streams = new Set<LiveStream<E>>();
  private closedWith: DomainError | null = null;

  /** Streams open now. */
  get size(): number {
    return this.streams.size;
  }

  /** Adds a stream (ended with the shutdown error at once when the registry is closed). */
  add(stream: LiveStream<E>): void {
    if (this.closedWith) stream.abort(this.closedWith);
    else this.streams.add(stream);
  }

  /** Removes a stream (it ended). */
  delete(stream: LiveStream<E>): void {
    this.streams.delete(stream);
  }

  /**
   * Shutdown: ends every open stream with DomainError SERVICE_UNAVAILABLE
   * carrying `message` (a waiting or the next `next()` rejects with it, so SSE
   * clients see an error, not a normal completion, and resume elsewhere).
   */
  closeAll(message: string): void {
    this.closedWith = new DomainError('SERVICE_UNAVAILABLE', message);
    for (const stream of [...this.streams]) stream.abort(this.closedWith);
    this.streams.clear();
  }
}
