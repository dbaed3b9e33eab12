/**
 * The catch-up of one open topic after the bus lost its connection and
 * re-subscribed (EventBus.onReconnect), written once for every kind of
 * stream (job topics, training topics): read the topic's head, then
 * - the events stored after the newest one this instance saw, when the head
 *   is in the same epoch, is not behind it, and history still covers the gap;
 * - otherwise a fresh start (snapshot events, which reset subscribers: the
 *   bus delivers them even at an offset already seen).
 * With nothing seen yet on the topic, the gap is everything after offset 0
 * of the head's epoch. It is the rule streams start with
 * ({@link startEvents}), with the newest event seen as the cursor.
 */
import { decodeCursor, type StreamPosition } from '../domain/cursor.js';
import { startEvents, type HistorySlice } from './topic-stream.js';

/** How to catch one topic up: where its head and history are, and how its fresh start is made. */
export interface CatchUpSpec<E, H> {
  /** Reads the topic's head (state and position); null when there is none (then there is nothing to deliver). */
  readHead(): Promise<H | null>;
  /** The head's position: its epoch and the offset of its newest event. */
  positionOf(head: H): StreamPosition;
  /** Reads the events after `afterOffset` (called only when the epochs match and the head is not behind). */
  history(afterOffset: number): Promise<HistorySlice<E>>;
  /** The fresh start made from the head (e.g. a job's SNAPSHOT; a run's snapshot events). */
  freshStart(head: H): E[] | Promise<E[]>;
}

/**
 * The events to deliver to a topic's listeners after a reconnect (see the
 * module comment).
 * @param last the newest event seen on the topic (its `cursor` gives the epoch and offset), or null when none was.
 * @returns [] when there is no head; else the history events after `last` (possibly none), or the fresh start.
 * @throws whatever the spec's reads throw (e.g. Redis still away: the bus retries the catch-up), and DomainError
 *   BAD_USER_INPUT when `last.cursor` is not a cursor.
 */
export async function catchUpEvents<E, H>(last: { cursor: string } | null, spec: CatchUpSpec<E, H>): Promise<E[]> {
  const head = await spec.readHead();
  if (head === null) return [];
  const after = last ? decodeCursor(last.cursor) : { epoch: spec.positionOf(head).epoch, offset: 0 };
  return startEvents(head, spec.freshStart, { after, positionOf: spec.positionOf, history: spec.history });
}
