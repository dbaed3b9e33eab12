/**
 * Environment → typed configuration, validated with zod at start.
 *
 * The variables and their defaults are the contract in DESIGN.md ("Running").
 * A bad value is a {@link ConfigError} naming the variable; `src/main.ts` prints
 * it and exits with code 2.
 */
import { z } from 'zod';

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
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
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
   * Most events queued for one subscription whose client reads too slowly
   * (PROGRESS beyond the first 64 queued collapses to the newest and does not
   * count); past it the connection is dropped (WebSocket close 4008) and the
   * client resumes from its cursor.
   */
  subscriberQueue: number;
  /** pino level. */
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

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
    jwtSecret: v.RUNWATCH_JWT_SECRET,
    progressHz: v.RUNWATCH_PROGRESS_HZ,
    historySize: v.RUNWATCH_HISTORY,
    subscriberQueue: v.RUNWATCH_SUBSCRIBER_QUEUE,
    logLevel: v.LOG_LEVEL,
  };
}
