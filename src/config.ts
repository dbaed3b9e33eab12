/**
 * Environment → typed configuration, validated with zod at start.
 *
 * The variables and their defaults are the contract in DESIGN.md ("Running").
 * A bad value is a {@link ConfigError} naming the variable; `src/main.ts` prints
 * it and exits with code 2.
 */
import { z } from 'zod';
import { DEFAULT_STALL_SECONDS } from './domain/job.js';

const intFrom = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const numberFrom = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+(\.\d+)?$/, 'must be a number')
    .transform(Number)
    .pipe(z.number().min(min).max(max));

const envSchema = z.object({
  PORT: intFrom(0, 65535).default(4000),
  HOST: z.string().trim().min(1).default('127.0.0.1'),
  REDIS_URL: z
    .string()
    .trim()
    .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
    .optional(),
  RUNWATCH_JWT_SECRET: z.string().min(32, 'must be at least 32 characters (HS256 key)').optional(),
  RUNWATCH_PROGRESS_HZ: numberFrom(0.1, 1000).default(10),
  RUNWATCH_HISTORY: intFrom(1, 1_000_000).default(1000),
  RUNWATCH_SUBSCRIBER_QUEUE: intFrom(10, 1_000_000).default(1000),
  // The change log projectors consume (issue 18): partitions (Redis), and the takeover time of a change left unacknowledged.
  // Unset: 4 on one Redis, 16 on a Redis Cluster (backends/redis.ts); fixed at a deployment's first start.
  RUNWATCH_CHANGE_PARTITIONS: intFrom(1, 1024).optional(),
  RUNWATCH_CHANGE_CLAIM_MS: intFrom(50, 3_600_000).default(5000),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // Retention and token policy (issue 9). Defaults in RETENTION_DEFAULTS / TOKEN_DEFAULTS.
  RUNWATCH_RETENTION_DAYS: numberFrom(0.00001, 36_500).optional(),
  RUNWATCH_MEMORY_MAX_JOBS: intFrom(1, 10_000_000).optional(),
  RUNWATCH_ALLOW_TOKENS_WITHOUT_EXP: z.enum(['true', 'false'], 'must be true or false').optional(),
  RUNWATCH_MAX_TOKEN_TTL_DAYS: numberFrom(0.00001, 36_500).optional(),
  // Operations (issue 6): metrics, limits, origins, tracing. Defaults in OPS_DEFAULTS.
  RUNWATCH_METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
  RUNWATCH_RATE_LIMIT_PER_SECOND: numberFrom(0, 1_000_000).optional(),
  RUNWATCH_RATE_LIMIT_BURST: intFrom(1, 1_000_000).optional(),
  RUNWATCH_MAX_SUBSCRIPTIONS_PER_CONNECTION: intFrom(1, 100_000).optional(),
  RUNWATCH_MAX_CONNECTIONS_PER_USER: intFrom(1, 1_000_000).optional(),
  RUNWATCH_ALLOWED_ORIGINS: z
    .string()
    .trim()
    .transform((v) => v.split(',').map((o) => o.trim()).filter(Boolean))
    .pipe(z.array(z.string().regex(/^(\*|https?:\/\/[^/\s]+)$/, 'must be * or comma-separated origins like https://app.example.com')))
    .optional(),
  // Stalls and webhooks (issue 18). Defaults in JOBOPS_DEFAULTS.
  RUNWATCH_STALL_SECONDS: intFrom(0, 30 * 24 * 3600).optional(),
  RUNWATCH_WEBHOOK_ALLOW_PRIVATE: z.enum(['true', 'false'], 'must be true or false').optional(),
  RUNWATCH_SHARED_CHANNELS: z.enum(['true', 'false'], 'must be true or false').optional(),
  RUNWATCH_WEBHOOK_TIMEOUT_SECONDS: numberFrom(0.1, 300).optional(),
  RUNWATCH_WEBHOOK_RETRY_BASE_SECONDS: numberFrom(0.001, 3600).optional(),
  OTEL_SDK_DISABLED: z.enum(['true', 'false']).optional(),
  OTEL_TRACES_EXPORTER: z.enum(['otlp', 'console', 'none']).optional(),
  OTEL_EXPORTER_OTLP_ENDPOINT: z.url('must be a URL').optional(),
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: z.url('must be a URL').optional(),
  OTEL_SERVICE_NAME: z.string().trim().min(1).optional(),
});

/** Typed server configuration. Units are in the names or the doc of each field. */
export interface Config {
  /** TCP port for HTTP and WebSocket; 0 picks a free port. */
  port: number;
  /** Listen address. */
  host: string;
  /** Redis connection URL; undefined selects the in-memory backend (single instance). */
  redisUrl: string | undefined;
  /** HS256 secret; undefined means dev mode (random secret, printed dev token). */
  jwtSecret: string | undefined;
  /** Most PROGRESS events per second per job sent to subscribers. */
  progressHz: number;
  /** Events kept per job for replay. */
  historySize: number;
  /**
   * RUNWATCH_CHANGE_PARTITIONS: streams the change log is split into, and the hash tags job keys spread over
   * (Redis; see docs/operations.md). Undefined: the backend's default (4 on one Redis, 16 on a Redis Cluster).
   * Only a deployment's first start sets it: it is stored in Redis.
   */
  changePartitions: number | undefined;
  /** REDIS_CLUSTER_NODES: seed nodes of a Redis Cluster ({@link redisClusterSeeds}); undefined: not a cluster. */
  redisClusterNodes?: RedisClusterSeed[];
  /** RUNWATCH_CHANGE_CLAIM_MS: milliseconds a change-log partition's lease lives without renewal (a killed instance's partitions wait this long for another instance). */
  changeClaimMs: number;
  /**
   * Most events queued for one subscription whose client reads too slowly
   * (PROGRESS beyond the first 64 queued collapses to the newest and does not
   * count); past it the connection is dropped (WebSocket close 4008) and the
   * client resumes from its cursor.
   */
  subscriberQueue: number;
  /** pino level. */
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  // Operations settings (metrics, limits, origins, tracing). Each is optional so embedders and tests
  // may leave it out; an absent one takes its value from OPS_DEFAULTS (see opsSettings).
  /** RUNWATCH_METRICS_TOKEN: bearer token `/metrics` requires; undefined: `/metrics` is open. */
  metricsToken?: string;
  /** RUNWATCH_RATE_LIMIT_PER_SECOND: mutation fields per second per token `sub` (bucket refill rate); 0 turns rate limiting off. */
  rateLimitPerSecond?: number;
  /** RUNWATCH_RATE_LIMIT_BURST: bucket size, the most mutation fields a `sub` may send at once. */
  rateLimitBurst?: number;
  /** RUNWATCH_MAX_SUBSCRIPTIONS_PER_CONNECTION: most concurrent subscriptions on one WebSocket. */
  maxSubscriptionsPerConnection?: number;
  /**
   * RUNWATCH_SHARED_CHANNELS: WebSocket `runProgress` subscriptions without
   * `after` that share document, variables, tenant and scopes share one
   * channel per instance (src/transport/shared-channel.ts). Undefined: the
   * server's default (see ServerOptions.sharedChannels).
   */
  sharedChannels?: boolean;
  /** RUNWATCH_MAX_CONNECTIONS_PER_USER: most concurrent WebSockets plus SSE streams per `sub`, per instance. */
  maxConnectionsPerUser?: number;
  /**
   * RUNWATCH_ALLOWED_ORIGINS: browser origins allowed for WebSockets and CORS
   * (`['*']`: any). Empty or undefined: same-origin pages only. Requests with
   * no `Origin` header (non-browser clients) are always allowed.
   */
  allowedOrigins?: string[];
  /** Tracing from the standard OTEL_* variables; undefined or null: off. */
  tracing?: TracingConfig | null;
  // Retention and token policy: optional like the operations settings; see retentionSettings() and tokenPolicy().
  /**
   * RUNWATCH_RETENTION_DAYS × 86 400: seconds a finished job (record, history, index and idempotency
   * entries, training events, commands) is kept after it finishes, then removed. Unfinished jobs are never
   * removed. Tests set a few seconds here directly.
   */
  retentionSeconds?: number;
  /**
   * RUNWATCH_MEMORY_MAX_JOBS, in-memory backend only: most jobs kept; creating one more removes the oldest
   * finished job first, and is refused (SERVICE_UNAVAILABLE) when all are unfinished.
   */
  memoryMaxJobs?: number;
  /** RUNWATCH_ALLOW_TOKENS_WITHOUT_EXP: accept bearer tokens with no `exp` (they never expire). */
  allowTokensWithoutExp?: boolean;
  /** RUNWATCH_MAX_TOKEN_TTL_DAYS × 86 400: longest accepted token lifetime (`exp − iat`), seconds. */
  maxTokenTtlSeconds?: number;
  // Stalls and webhooks: optional like the others; see jobOpsSettings().
  /** RUNWATCH_STALL_SECONDS: `heartbeatSeconds` of a job created without one; 0 turns stall detection off by default. */
  stallSeconds?: number;
  /** Ms between stall sweeps on an instance (a stall is seen at most this late); no variable, tests set it. */
  stallSweepMs?: number;
  /**
   * RUNWATCH_WEBHOOK_ALLOW_PRIVATE: webhook URLs may point at private, loopback and link-local addresses.
   * Dev mode (no RUNWATCH_JWT_SECRET) allows loopback without it.
   */
  webhookAllowPrivate?: boolean;
  /** RUNWATCH_WEBHOOK_TIMEOUT_SECONDS: most seconds one delivery POST may take (then it counts as failed and is retried). */
  webhookTimeoutSeconds?: number;
  /** RUNWATCH_WEBHOOK_RETRY_BASE_SECONDS: delay before the first retry of a delivery; doubles per retry (see docs/webhooks.md). */
  webhookRetryBaseSeconds?: number;
}

/** Defaults of the stall and webhook settings of {@link Config}. */
export const JOBOPS_DEFAULTS = {
  stallSeconds: DEFAULT_STALL_SECONDS,
  stallSweepMs: 1000,
  webhookAllowPrivate: false,
  webhookTimeoutSeconds: 10,
  /** 10 attempts, 10 s doubling to at most 1 h: the last attempt comes at most about 85 minutes after the first. */
  webhookRetryBaseSeconds: 10,
  webhookAttempts: 10,
  webhookMaxDelaySeconds: 3600,
} as const;

/** The stall and webhook settings of a config with defaults filled in. */
export function jobOpsSettings(config: Config) {
  return {
    stallSeconds: config.stallSeconds ?? JOBOPS_DEFAULTS.stallSeconds,
    stallSweepMs: config.stallSweepMs ?? JOBOPS_DEFAULTS.stallSweepMs,
    webhookAllowPrivate: config.webhookAllowPrivate ?? JOBOPS_DEFAULTS.webhookAllowPrivate,
    webhookTimeoutMs: (config.webhookTimeoutSeconds ?? JOBOPS_DEFAULTS.webhookTimeoutSeconds) * 1000,
    webhookRetry: {
      attempts: JOBOPS_DEFAULTS.webhookAttempts,
      baseDelayMs: (config.webhookRetryBaseSeconds ?? JOBOPS_DEFAULTS.webhookRetryBaseSeconds) * 1000,
      maxDelayMs: JOBOPS_DEFAULTS.webhookMaxDelaySeconds * 1000,
    },
  };
}

/** Defaults of the retention settings of {@link Config}. */
export const RETENTION_DEFAULTS = {
  /** RUNWATCH_RETENTION_DAYS default: 30 days, in seconds. */
  retentionSeconds: 30 * 24 * 3600,
  /**
   * In-memory backend cap: 1 000 jobs. Measured: a job with a full history of 1 000 events and small
   * metadata holds about 450 KB of heap, so the cap bounds the backend near 0.5 GB at the defaults.
   */
  memoryMaxJobs: 1_000,
} as const;

/** Defaults of the token policy of {@link Config}. */
export const TOKEN_DEFAULTS = {
  allowTokensWithoutExp: false,
  /** RUNWATCH_MAX_TOKEN_TTL_DAYS default: 365 days, in seconds. */
  maxTokenTtlSeconds: 365 * 24 * 3600,
} as const;

/** The retention settings of a config with defaults filled in. */
export function retentionSettings(config: Config) {
  return {
    retentionSeconds: config.retentionSeconds ?? RETENTION_DEFAULTS.retentionSeconds,
    memoryMaxJobs: config.memoryMaxJobs ?? RETENTION_DEFAULTS.memoryMaxJobs,
  };
}

/** The token policy of a config with defaults filled in (see auth/tokens.ts TokenPolicy). */
export function tokenPolicy(config: Config) {
  return {
    allowWithoutExp: config.allowTokensWithoutExp ?? TOKEN_DEFAULTS.allowTokensWithoutExp,
    maxTtlSeconds: config.maxTokenTtlSeconds ?? TOKEN_DEFAULTS.maxTokenTtlSeconds,
  };
}

/** OpenTelemetry tracing settings, from the standard OTEL_* variables. */
export interface TracingConfig {
  /** `otlp` (OTLP/HTTP to OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT) or `console` (spans on stdout). */
  exporter: 'otlp' | 'console';
  /** OTEL_SERVICE_NAME; default `runwatch`. */
  serviceName: string;
}

/** Defaults of the optional operations settings of {@link Config}. */
export const OPS_DEFAULTS = {
  // Sized for a fleet of workers sharing one token and reporting often (runwatch conflates fast
  // reports by design): it stops runaway clients, not busy ones. Lower it per deployment.
  rateLimitPerSecond: 1000,
  rateLimitBurst: 5000,
  maxSubscriptionsPerConnection: 100,
  maxConnectionsPerUser: 50,
} as const;

/** The operations settings of a config with every default filled in. */
export function opsSettings(config: Config) {
  return {
    metricsToken: config.metricsToken,
    rateLimitPerSecond: config.rateLimitPerSecond ?? OPS_DEFAULTS.rateLimitPerSecond,
    rateLimitBurst: config.rateLimitBurst ?? OPS_DEFAULTS.rateLimitBurst,
    maxSubscriptionsPerConnection: config.maxSubscriptionsPerConnection ?? OPS_DEFAULTS.maxSubscriptionsPerConnection,
    maxConnectionsPerUser: config.maxConnectionsPerUser ?? OPS_DEFAULTS.maxConnectionsPerUser,
    allowedOrigins: config.allowedOrigins ?? [],
    tracing: config.tracing ?? null,
  };
}

/**
 * Tracing is on when OTEL_TRACES_EXPORTER is `otlp` or `console`, or when an
 * OTLP endpoint is set and OTEL_TRACES_EXPORTER is not `none`; OTEL_SDK_DISABLED=true turns it off.
 */
function tracingFrom(v: { OTEL_SDK_DISABLED?: string; OTEL_TRACES_EXPORTER?: string; OTEL_EXPORTER_OTLP_ENDPOINT?: string; OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?: string; OTEL_SERVICE_NAME?: string }): TracingConfig | null {
  if (v.OTEL_SDK_DISABLED === 'true' || v.OTEL_TRACES_EXPORTER === 'none') return null;
  const exporter = v.OTEL_TRACES_EXPORTER ?? (v.OTEL_EXPORTER_OTLP_ENDPOINT || v.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ? 'otlp' : null);
  if (exporter !== 'otlp' && exporter !== 'console') return null;
  return { exporter, serviceName: v.OTEL_SERVICE_NAME ?? 'runwatch' };
}

/** Days (fractional allowed) to whole seconds, at least 1. */
const daysToSeconds = (days: number) => Math.max(1, Math.round(days * 24 * 3600));

/** Raised by {@link loadConfig} for a bad environment variable; `variable` names it. */
export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    detail: string,
  ) {
    super(`invalid ${variable}: ${detail}`);
    this.name = 'ConfigError';
  }
}

/**
 * Parses the environment into a {@link Config}. Empty strings count as unset.
 * @throws ConfigError naming the first invalid variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const raw: Record<string, string> = {};
  for (const key of Object.keys(envSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value !== '') raw[key] = value;
  }
  const parsed = envSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new ConfigError(String(issue.path[0] ?? 'environment'), issue.message);
  }
  const v = parsed.data;
  return {
    port: v.PORT,
    host: v.HOST,
    redisUrl: v.REDIS_URL,
    redisClusterNodes: redisClusterSeeds(env) ?? undefined,
    jwtSecret: v.RUNWATCH_JWT_SECRET,
    progressHz: v.RUNWATCH_PROGRESS_HZ,
    historySize: v.RUNWATCH_HISTORY,
    changePartitions: v.RUNWATCH_CHANGE_PARTITIONS,
    changeClaimMs: v.RUNWATCH_CHANGE_CLAIM_MS,
    subscriberQueue: v.RUNWATCH_SUBSCRIBER_QUEUE,
    logLevel: v.LOG_LEVEL,
    metricsToken: v.RUNWATCH_METRICS_TOKEN,
    // Unset operations variables stay undefined here; opsSettings() applies OPS_DEFAULTS.
    rateLimitPerSecond: v.RUNWATCH_RATE_LIMIT_PER_SECOND,
    rateLimitBurst: v.RUNWATCH_RATE_LIMIT_BURST,
    maxSubscriptionsPerConnection: v.RUNWATCH_MAX_SUBSCRIPTIONS_PER_CONNECTION,
    maxConnectionsPerUser: v.RUNWATCH_MAX_CONNECTIONS_PER_USER,
    allowedOrigins: v.RUNWATCH_ALLOWED_ORIGINS,
    tracing: tracingFrom(v) ?? undefined,
    retentionSeconds: v.RUNWATCH_RETENTION_DAYS === undefined ? undefined : daysToSeconds(v.RUNWATCH_RETENTION_DAYS),
    memoryMaxJobs: v.RUNWATCH_MEMORY_MAX_JOBS,
    allowTokensWithoutExp: v.RUNWATCH_ALLOW_TOKENS_WITHOUT_EXP === undefined ? undefined : v.RUNWATCH_ALLOW_TOKENS_WITHOUT_EXP === 'true',
    maxTokenTtlSeconds: v.RUNWATCH_MAX_TOKEN_TTL_DAYS === undefined ? undefined : daysToSeconds(v.RUNWATCH_MAX_TOKEN_TTL_DAYS),
    stallSeconds: v.RUNWATCH_STALL_SECONDS,
    sharedChannels: v.RUNWATCH_SHARED_CHANNELS === undefined ? undefined : v.RUNWATCH_SHARED_CHANNELS === 'true',
    webhookAllowPrivate: v.RUNWATCH_WEBHOOK_ALLOW_PRIVATE === undefined ? undefined : v.RUNWATCH_WEBHOOK_ALLOW_PRIVATE === 'true',
    webhookTimeoutSeconds: v.RUNWATCH_WEBHOOK_TIMEOUT_SECONDS,
    webhookRetryBaseSeconds: v.RUNWATCH_WEBHOOK_RETRY_BASE_SECONDS,
  };
}

/** One seed node of a Redis Cluster: any node will do, the client discovers the rest (`CLUSTER SLOTS`). */
export interface RedisClusterSeed {
  /** Host name or IP address (IPv6 without brackets). */
  host: string;
  /** TCP port, 1..65535. */
  port: number;
}

const CLUSTER_VARIABLE = 'REDIS_CLUSTER_NODES';

/** `host:port` or `[ipv6]:port`. */
const SEED = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._-]+)):(\d{1,5})$/;

/**
 * Reads `REDIS_CLUSTER_NODES` (DESIGN.md, "Running"; issue 21) from `env`: comma-separated `host:port` seeds
 * (`[ipv6]:port` for IPv6; spaces around entries ignored; duplicates dropped).
 * @returns the seeds in the order given, or null when the variable is unset or empty.
 * @throws ConfigError naming REDIS_CLUSTER_NODES when an entry is not `host:port` with a port 1..65535,
 *   and naming both variables when `REDIS_URL` is set too (one Redis or a cluster, not both).
 */
export function redisClusterSeeds(env: NodeJS.ProcessEnv = process.env): RedisClusterSeed[] | null {
  const raw = env[CLUSTER_VARIABLE]?.trim();
  if (!raw) return null;
  if (env.REDIS_URL?.trim()) {
    throw new ConfigError(
      CLUSTER_VARIABLE,
      'set together with REDIS_URL: set REDIS_URL for one Redis or REDIS_CLUSTER_NODES for a Redis Cluster, not both',
    );
  }
  const seeds: RedisClusterSeed[] = [];
  const seen = new Set<string>();
  for (const entry of raw.split(',').map((e) => e.trim())) {
    const match = SEED.exec(entry);
    const port = match ? Number(match[3]) : 0;
    if (!match || port < 1 || port > 65535) {
      throw new ConfigError(CLUSTER_VARIABLE, `"${entry}" is not host:port (comma-separated, e.g. 10.0.0.1:6379,10.0.0.2:6379)`);
    }
    const seed = { host: match[1] ?? match[2]!, port };
    const key = `${seed.host}:${seed.port}`;
    if (seen.has(key)) continue;
    seen.add(key);
    seeds.push(seed);
  }
  return seeds;
}
