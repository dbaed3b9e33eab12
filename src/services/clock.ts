/** Milliseconds since the epoch. Injected everywhere time matters, so tests can fake it. */
export type Clock = () => number;

/** The wall clock. */
export const systemClock: Clock = () => Date.now();
