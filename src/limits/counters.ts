/**
 * The counters the limits bump. observe's `Metrics` has them (and satisfies
 * this interface structurally), but limits and observe sit side by side and
 * import neither each other: the server hands the limits its `Metrics`.
 */
import type { Counter } from 'prom-client';

/** Counters a limit increments when it refuses or ends something. */
export interface LimitCounters {
  /** `runwatch_connections_refused_total{transport,reason}`. */
  readonly connectionsRefused: Counter<'transport' | 'reason'>;
  /** `runwatch_rate_limited_total{limit}`. */
  readonly rateLimited: Counter<'limit'>;
  /** `runwatch_token_expiry_closes_total{transport}`. */
  readonly expiryCloses: Counter<'transport'>;
  /** `runwatch_redis_errors_total{kind}`. */
  readonly redisErrors: Counter<'kind'>;
}
