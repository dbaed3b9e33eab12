/**
 * Retry schedule: exponential backoff with jitter, bounded by an attempt count
 * (so by a total time). Pure. The "equal jitter" variant from the AWS
 * Architecture Blog's "Exponential Backoff And Jitter": half of each delay is
 * fixed, half random, so retries of many deliveries spread out while each one
 * still backs off.
 */

/** How often and how late a piece of work is retried. */
export interface RetryPolicy {
  /** Most attempts, the first one included (≥ 1). */
  attempts: number;
  /** Delay before the second attempt, ms; it doubles with every further attempt. */
  baseDelayMs: number;
  /** Cap of one delay, ms. */
  maxDelayMs: number;
}

/**
 * The delay before attempt `attemptsMade + 1`, ms: min(max, base × 2^(attemptsMade − 1)), of which the
 * upper half is random (`random` in [0, 1)).
 */
export function retryDelayMs(policy: RetryPolicy, attemptsMade: number, random: () => number = Math.random): number {
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attemptsMade - 1));
  return Math.round(exp / 2 + (exp / 2) * random());
}

/** The longest time from the first attempt to the last under `policy` (every delay at its maximum), ms. */
export function retryWindowMs(policy: RetryPolicy): number {
  let total = 0;
  for (let made = 1; made < policy.attempts; made++) total += Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (made - 1));
  return total;
}
