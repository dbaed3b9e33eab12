/**
 * Per-token rate limits on mutations: a token bucket per token `sub`.
 *
 * A bucket holds up to `burst` tokens and refills at `ratePerSecond`; each
 * mutation root field (aliases count) takes one. When REDIS_URL is set the
 * buckets live in Redis (one Lua script, Redis' clock), so the limit holds
 * across every instance; otherwise in memory, per instance.
 *
 * An operation over the limit is refused as a whole, before anything runs,
 * with `extensions.code` RATE_LIMITED, `extensions.retryAfterSeconds` (when a
 * retry can succeed, seconds, millisecond precision) and, over HTTP, status
 * 429 with a `Retry-After` header (whole seconds, rounded up).
 * If Redis cannot answer, the limiter lets the operation through (the
 * mutation then meets the same Redis and fails on its own) and counts the error.
 */
import { GraphQLError, getOperationAST, Kind, type SelectionSetNode } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { ViewerContext } from '../request-context.js';
import type { LimitCounters } from './counters.js';

/** The answer of {@link RateLimiter.take}. */
export interface RateDecision {
  allowed: boolean;
  /** When refused: seconds until `cost` tokens are back (ms precision); 0 when allowed. */
  retryAfterSeconds: number;
  /** Whole tokens left after this call. */
  remaining: number;
}

/** A token-bucket limiter keyed by a string (the token `sub`). */
export interface RateLimiter {
  /**
   * Takes `cost` tokens from `key`'s bucket if it holds them.
   * @throws Error when the backing store fails (the caller decides to fail open).
   */
  take(key: string, cost: number): Promise<RateDecision>;
  close(): Promise<void>;
}

/** Bucket settings. */
export interface BucketSettings {
  /** Refill rate, tokens per second (> 0). */
  ratePerSecond: number;
  /** Bucket size, tokens (>= 1). */
  burst: number;
}

/**
 * In-memory buckets, for one instance. A bucket idle long enough to be full
 * again is the same as no bucket, so it is forgotten: a sweep runs at most
 * once per refill time (burst / rate), and a user's bucket is gone within
 * twice that of their last mutation. Memory is bounded by recently active users.
 */
export class MemoryRateLimiter implements RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; atMs: number }>();
  private readonly fullAfterMs: number;
  private lastSweepMs = -Infinity;

  constructor(
    private readonly settings: BucketSettings,
    private readonly now: () => number = Date.now,
  ) {
    this.fullAfterMs = (settings.burst / settings.ratePerSecond) * 1000;
  }

  async take(key: string, cost: number): Promise<RateDecision> {
    const { ratePerSecond, burst } = this.settings;
    const now = this.now();
    if (now - this.lastSweepMs >= this.fullAfterMs) this.sweep(now);
    const bucket = this.buckets.get(key) ?? { tokens: burst, atMs: now };
    const tokens = Math.min(burst, bucket.tokens + ((now - bucket.atMs) * ratePerSecond) / 1000);
    const allowed = tokens >= cost;
    const left = allowed ? tokens - cost : tokens;
    this.buckets.set(key, { tokens: left, atMs: now });
    return {
      allowed,
      retryAfterSeconds: allowed ? 0 : Math.ceil(((cost - tokens) * 1000) / ratePerSecond) / 1000,
      remaining: Math.floor(left),
    };
  }

  private sweep(now: number): void {
    this.lastSweepMs = now;
    for (const [key, b] of this.buckets) if (now - b.atMs >= this.fullAfterMs) this.buckets.delete(key);
  }

  /** Buckets held now (diagnostics, tests). */
  get size(): number {
    return this.buckets.size;
  }

  async close(): Promise<void> {
    this.buckets.clear();
  }
}

/**
 * KEYS[1] bucket hash {t: tokens, ts: ms}; ARGV: rate per second, burst, cost.
 * Uses Redis' clock so instances with skewed clocks agree. Returns
 * {allowed 0|1, retry-after ms, whole tokens left}.
 */
const TAKE_LUA = `
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local b = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil or ts == nil then tokens = burst; ts = now end
if now > ts then tokens = math.min(burst, tokens + (now - ts) * rate / 1000) end
local allowed = 0
local retry = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  retry = math.ceil((cost - tokens) * 1000 / rate)
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return {allowed, retry, math.floor(tokens)}
`;

type ScriptedRedis = (Redis | Cluster) & { runwatchTake(key: string, rate: number, burst: number, cost: number): Promise<[number, number, number]> };

/** Key of a `sub`'s bucket. */
export const rateLimitKey = (sub: string) => `runwatch:ratelimit:${encodeURIComponent(sub)}`;

/**
 * Buckets in Redis, shared by every instance on it. Uses its own connection,
 * which fails fast (no offline queue) while Redis is away. On a Redis Cluster
 * each bucket is one key, so the script touches one slot.
 */
export class RedisRateLimiter implements RateLimiter {
  private readonly redis: ScriptedRedis;

  /** @param target one Redis (its URL) or a Redis Cluster (its seed nodes, REDIS_CLUSTER_NODES). */
  constructor(
    target: string | { host: string; port: number }[],
    private readonly settings: BucketSettings,
    onError: (error: unknown) => void,
  ) {
    const options = {
      maxRetriesPerRequest: 1,
      commandTimeout: 1000,
      connectTimeout: 2000,
      retryStrategy: (times: number) => Math.min(times * 100, 1000),
      connectionName: 'runwatch-ratelimit',
    };
    const redis =
      typeof target === 'string'
        ? new Redis(target, { ...options, enableOfflineQueue: false })
        : new Cluster(target, { enableOfflineQueue: false, redisOptions: options, clusterRetryStrategy: (times) => Math.min(times * 100, 1000) });
    redis.on('error', onError);
    redis.defineCommand('runwatchTake', { numberOfKeys: 1, lua: TAKE_LUA });
    this.redis = redis as ScriptedRedis;
  }

  /**
   * Resolves once the connection is ready (call at start, so the first requests are limited too).
   * @throws Error when Redis is not ready within `timeoutMs`.
   */
  async ready(timeoutMs = 10_000): Promise<void> {
    if (this.redis.status === 'ready') return;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        new Promise<void>((resolve) => this.redis.once('ready', () => resolve())),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`rate limiter: Redis not ready within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  async take(key: string, cost: number): Promise<RateDecision> {
    const [allowed, retryMs, remaining] = await this.redis.runwatchTake(rateLimitKey(key), this.settings.ratePerSecond, this.settings.burst, cost);
    return { allowed: allowed === 1, retryAfterSeconds: retryMs / 1000, remaining };
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}

/** Mutation root fields in a selection set, through fragments (aliases count separately). */
function countRootFields(selectionSet: SelectionSetNode, fragments: Map<string, SelectionSetNode>, depth = 0): number {
  let n = 0;
  for (const s of selectionSet.selections) {
    if (s.kind === Kind.FIELD) n += s.name.value === '__typename' ? 0 : 1;
    else if (depth < 5 && s.kind === Kind.INLINE_FRAGMENT) n += countRootFields(s.selectionSet, fragments, depth + 1);
    else if (depth < 5 && s.kind === Kind.FRAGMENT_SPREAD) {
      const f = fragments.get(s.name.value);
      if (f) n += countRootFields(f, fragments, depth + 1);
    }
  }
  return n;
}

/**
 * The RATE_LIMITED error for a refused request.
 * @param retryAfterSeconds seconds until a retry can succeed; omitted when it depends on something else ending (caps).
 */
export function rateLimitedError(message: string, details: { limit: string; retryAfterSeconds?: number }): GraphQLError {
  const retry = details.retryAfterSeconds;
  return new GraphQLError(message, {
    extensions: {
      code: 'RATE_LIMITED',
      limit: details.limit,
      ...(retry !== undefined ? { retryAfterSeconds: retry } : {}),
      http: { status: 429, ...(retry !== undefined ? { headers: { 'Retry-After': String(Math.max(1, Math.ceil(retry))) } } : {}) },
    },
  });
}

/**
 * The envelop plugin that charges each mutation to its token's `sub` and
 * refuses it with RATE_LIMITED when the bucket is empty. Queries and
 * subscriptions are not charged here (subscriptions have their own caps).
 */
export function useMutationRateLimit(deps: { limiter: RateLimiter; burst: number; metrics: LimitCounters; log: Logger }): Plugin<ViewerContext> {
  const log = deps.log.child({ component: 'rate-limit' });
  let failing = false;
  return {
    async onExecute({ args, setResultAndStopExecution }) {
      const operation = getOperationAST(args.document, args.operationName);
      if (operation?.operation !== 'mutation') return;
      const viewer = args.contextValue.viewer;
      if (!viewer) return;
      const fragments = new Map<string, SelectionSetNode>();
      for (const d of args.document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) fragments.set(d.name.value, d.selectionSet);
      // A document larger than the bucket is charged a full bucket, so it can run once the bucket is full.
      const cost = Math.min(deps.burst, Math.max(1, countRootFields(operation.selectionSet, fragments)));
      let decision: RateDecision;
      try {
        decision = await deps.limiter.take(viewer.userId, cost);
        failing = false;
      } catch (error) {
        deps.metrics.redisErrors.inc({ kind: 'command' });
        // Once per run of failures (a Redis outage is logged on its own), not once per mutation.
        if (!failing) log.warn({ err: error }, 'rate limiter unavailable; letting mutations through until it answers again');
        failing = true;
        return;
      }
      if (decision.allowed) return;
      deps.metrics.rateLimited.inc({ limit: 'mutations' });
      setResultAndStopExecution({
        errors: [
          rateLimitedError(`rate limit exceeded: too many mutations for this token; retry in ${decision.retryAfterSeconds} s`, {
            limit: 'mutations',
            retryAfterSeconds: decision.retryAfterSeconds,
          }),
        ],
      });
    },
  };
}
