/**
 * Sliding-window throughput and ETA.
 *
 * Samples are (time in ms, processed items) pairs, kept roughly evenly spaced
 * over the window. The rate is measured from the window's start (interpolated
 * between samples) to *now*, not to the newest sample, so a stalled job shows a
 * rate that falls towards 0 instead of freezing at its last value.
 */

/** One observation: `[timeMs, processedItems]`. */
export type RateSample = [timeMs: number, processed: number];

/** Window length, milliseconds. */
export const RATE_WINDOW_MS = 30_000;
/** Most samples kept per job. */
export const MAX_RATE_SAMPLES = 16;
const MIN_SPACING_MS = RATE_WINDOW_MS / MAX_RATE_SAMPLES;

/**
 * Returns the samples with `(nowMs, processed)` added: a new sample when the
 * previous two are at least window/16 apart, else the newest is moved forward.
 * Samples wholly before the window (but the newest of those) are dropped.
 * Pure: the input array is not changed.
 */
export function addRateSample(samples: readonly RateSample[], nowMs: number, processed: number): RateSample[] {
  const next = samples.slice();
  const last = next[next.length - 1];
  const prev = next[next.length - 2];
  if (last && prev && last[0] - prev[0] < MIN_SPACING_MS) next[next.length - 1] = [nowMs, processed];
  else next.push([nowMs, processed]);
  const windowStart = nowMs - RATE_WINDOW_MS;
  while (next.length > 2 && next[1]![0] <= windowStart) next.shift();
  while (next.length > MAX_RATE_SAMPLES) next.shift();
  return next;
}

/**
 * Items per second over the window ending at `nowMs`.
 * @returns null while unknown (fewer than two samples, or no time elapsed).
 */
export function rateAt(samples: readonly RateSample[], nowMs: number): number | null {
  if (samples.length < 2) return null;
  const last = samples[samples.length - 1]!;
  const windowStart = nowMs - RATE_WINDOW_MS;
  let base: RateSample = samples[0]!;
  if (base[0] < windowStart) {
    const after = samples.findIndex((s) => s[0] >= windowStart);
    if (after === -1) {
      base = [windowStart, last[1]];
    } else {
      const a = samples[after - 1]!;
      const b = samples[after]!;
      const share = b[0] === a[0] ? 1 : (windowStart - a[0]) / (b[0] - a[0]);
      base = [windowStart, a[1] + (b[1] - a[1]) * share];
    }
  }
  const elapsedSeconds = (nowMs - base[0]) / 1000;
  if (elapsedSeconds <= 0) return null;
  return Math.max(0, (last[1] - base[1]) / elapsedSeconds);
}

/**
 * Seconds until `remaining` items are done at `rate` items per second.
 * @returns null when unknown: no rate, a rate of 0, or an unknown remainder.
 */
export function etaSeconds(remaining: number | null, rate: number | null): number | null {
  if (remaining === null || rate === null || rate <= 0) return null;
  return Math.max(0, remaining) / rate;
}
