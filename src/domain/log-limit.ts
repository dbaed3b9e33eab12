/**
 * The per-run rate limit of log lines, shared by training logs
 * (training-stream.ts) and job logs (`appendLogs`, job.ts): a token bucket
 * (`logBurst` lines at once, `logRatePerSecond` sustained) whose dropped lines
 * are counted, and the count goes out as `droppedBefore` on the next line
 * that passes. Pure: the bucket is plain JSON kept in the run's state.
 */

/** Rate settings of a log stream. */
export interface LogLimits {
  /** Sustained log lines per second per run. */
  logRatePerSecond: number;
  /** Log lines a run may send at once before the rate applies. */
  logBurst: number;
}

/** Default log limits: 200 lines at once, 50 per second sustained. */
export const DEFAULT_LOG_LIMITS = { logRatePerSecond: 50, logBurst: 200 } as const satisfies LogLimits;

/** A run's log bucket (fields named as training streams have always stored them). */
export interface LogBucket {
  /** Tokens left (lines that may pass now), as of `logTokensAtMs`. */
  logTokens: number;
  /** Epoch ms of the last refill; null: never (a full bucket). */
  logTokensAtMs: number | null;
  /** Lines dropped and not yet reported in a `droppedBefore`. */
  droppedLogs: number;
}

/** A full bucket with nothing dropped. */
export const emptyLogBucket = (limits: LogLimits): LogBucket => ({ logTokens: limits.logBurst, logTokensAtMs: null, droppedLogs: 0 });

/** The bucket's tokens at `nowMs`: refilled up to `logBurst` at `logRatePerSecond`. */
export function refillLogTokens(bucket: LogBucket, nowMs: number, limits: LogLimits): number {
  if (bucket.logTokensAtMs === null) return limits.logBurst;
  const elapsedSeconds = Math.max(0, nowMs - bucket.logTokensAtMs) / 1000;
  return Math.min(limits.logBurst, bucket.logTokens + elapsedSeconds * limits.logRatePerSecond);
}

/** Refills `bucket` in place to `nowMs` (call once per batch, before {@link admitLogLine}). */
export function refillInPlace(bucket: LogBucket, nowMs: number, limits: LogLimits): void {
  bucket.logTokens = refillLogTokens(bucket, nowMs, limits);
  bucket.logTokensAtMs = nowMs;
}

/**
 * Lets one line through the bucket (changing it in place).
 * @returns the line's `droppedBefore` (lines dropped since the last one that passed) when it passes,
 *   or null when it is dropped (and counted).
 */
export function admitLogLine(bucket: LogBucket): number | null {
  if (bucket.logTokens < 1) {
    bucket.droppedLogs++;
    return null;
  }
  bucket.logTokens -= 1;
  const droppedBefore = bucket.droppedLogs;
  bucket.droppedLogs = 0;
  return droppedBefore;
}

/**
 * The trailing edge of a bucket with dropped lines: when a token is available, takes it (in place) and
 * returns how many lines were dropped, to report on a runwatch WARNING line ({@link droppedLinesMessage});
 * null when nothing is owed or no token is there yet.
 */
export function takeDroppedReport(bucket: LogBucket): number | null {
  if (bucket.droppedLogs === 0 || bucket.logTokens < 1) return null;
  bucket.logTokens -= 1;
  const n = bucket.droppedLogs;
  bucket.droppedLogs = 0;
  return n;
}

/** The text of the runwatch line that reports `n` dropped lines. */
export const droppedLinesMessage = (n: number) => `${n} log line${n === 1 ? '' : 's'} dropped by the rate limit`;

/** When a bucket with dropped lines has a token again to report them (epoch ms), given it was refilled at `nowMs`. */
export function droppedReportDueMs(bucket: LogBucket, nowMs: number, limits: LogLimits): number {
  const missing = Math.max(0, 1 - bucket.logTokens);
  return nowMs + Math.ceil((missing / limits.logRatePerSecond) * 1000);
}
