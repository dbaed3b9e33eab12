/**
 * Identifier generation. Job ids sort by creation time (a base36 time prefix,
 * then a per-process counter and randomness), so lists ordered by id and by
 * time agree; epochs are random.
 *
 * In the domain (not services) because backends mint epochs too (a topic
 * log's first append, a restored job): both layers below services need them.
 * The only impurity the domain allows: randomness, never the clock (the time
 * is an argument).
 */
import { randomBytes } from 'node:crypto';

let counter = 0;

/** A new job id such as `j_lz3k9q2a0001x7f3k2`. */
export function newJobId(nowMs: number): string {
  counter = (counter + 1) % 36 ** 4;
  return `j_${nowMs.toString(36).padStart(9, '0')}${counter.toString(36).padStart(4, '0')}${randomBytes(4).toString('hex')}`;
}

/** A new stream epoch: 10 random base64url characters. */
export function newEpoch(): string {
  return randomBytes(8).toString('base64url').slice(0, 10);
}
