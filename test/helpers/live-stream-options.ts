/**
 * The LiveStream options the delivery unit tests share: events with an offset
 * and a kind (P conflatable progress, S and E plain events, END final, SNAP reset), the
 * queue conflating above 4 and overflowing above 8.
 */
import type { LiveStream } from '../../src/delivery/live-stream.js';

/** A test event. */
export type Ev = { offset: number; kind: 'P' | 'S' | 'E' | 'END' | 'SNAP' };

/** LiveStream's options. */
export type StreamOptions = ConstructorParameters<typeof LiveStream<Ev>>[0];

/** The shared options (offsets, kinds, bounds); a test adds its hooks and overrides. */
export const testStreamOptions = {
  offsetOf: (e: Ev) => e.offset,
  isConflatable: (e: Ev) => e.kind === 'P',
  isFinal: (e: Ev) => e.kind === 'END',
  isReset: (e: Ev) => e.kind === 'SNAP',
  conflateAbove: 4,
  maxQueued: 8,
} satisfies Partial<StreamOptions>;
