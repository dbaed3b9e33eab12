/**
 * Cursors: the opaque string form of a stream position (epoch, offset).
 *
 * The offset grows by one per event of a job; the epoch names one continuous
 * history of that job and changes when history is lost, so a cursor from an
 * older epoch can never be mistaken for a position in the new one. The idea
 * and names come from Centrifugo's `StreamPosition` (offset + epoch).
 * This module is the only place that encodes or decodes cursors; clients
 * must treat them as opaque.
 */
import { badInput } from './errors.js';

/** A decoded cursor. `offset` is the offset of the last event the client has seen (0: none). */
export interface StreamPosition {
  epoch: string;
  offset: number;
}

const EPOCH = /^[A-Za-z0-9_-]{1,32}$/;

/** Encodes a position as `<epoch>.<offset>`. */
export function encodeCursor(epoch: string, offset: number): string {
  return `${epoch}.${offset}`;
}

/**
 * Decodes a cursor from a client.
 * @throws DomainError BAD_USER_INPUT (field `after`) when it is not a cursor runwatch made.
 */
export function decodeCursor(cursor: string): StreamPosition {
  const dot = cursor.lastIndexOf('.');
  const epoch = cursor.slice(0, dot);
  const offsetText = cursor.slice(dot + 1);
  if (dot <= 0 || !EPOCH.test(epoch) || !/^\d{1,15}$/.test(offsetText)) {
    throw badInput('after', `not a runwatch cursor: ${JSON.stringify(cursor.slice(0, 64))}`);
  }
  return { epoch, offset: Number(offsetText) };
}
