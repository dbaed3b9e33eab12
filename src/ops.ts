/**
 * Operating runwatch: everything one server needs to be observed and
 * protected — metrics (`/metrics`), tracing, logs of connections and
 * operation errors, mutation rate limits, connection caps, origin checks and
 * CORS, live token expiry — built from the config and handed to server.ts as
 * hooks, plugins and options. See docs/operations.md.
 */
import type { TracerProvider } from '@opentelemetry/api';
import type { Plugin } from 'graphql-yoga';
import type { Logger } from 'pino';
import type { WebSocketServer } from 'ws';
import type { Backend } from './backends/types.js';
import { opsSettings, type Config } from './config.js';
import { ConnectionPolicy } from './limits/connection-policy.js';
import { MemoryRateLimiter, RedisRateLimiter, useMutationRateLimit, type RateLimiter } from './limits/rate-limit.js';
import { observeWebSockets } from './observe/connections.js';
import { useOperationObservability } from './observe/graphql.js';
import { Metrics } from './observe/metrics.js';
import { useMetricsEndpoint } from './observe/metrics-endpoint.js';
import { instrumentBackend } from './observe/store.js';
import { startProcessTracing, traceRedisCommands, TRACER_NAME, useOperationTracing } from './observe/tracing.js';
import type { StreamHooks } from './delivery/live-stream.js';

/** Options of {@link createOps}. */
export interface OpsOptions {
  log: Logger;
  /**
   * A tracer provider to trace with (tests, embedders). Without one, tracing
   * follows `config.tracing` (OTEL_* variables). Register it globally
   * (e.g. `NodeTracerProvider.register()`) so Redis spans nest under operations.
   */
  tracerProvider?: TracerProvider;
}

/** The operations kit of one server. */
export interface Ops {
  metrics: Metrics;
  policy: ConnectionPolicy;
  /** Callbacks for JobService streams (delivered, replayed, conflated, dropped). */
  streamHooks: StreamHooks;
  /** Yoga plugins, in order: tracing, /metrics, observability, SSE policy, rate limit. */
  yogaPlugins: Plugin[];
  /** Are operations traced (the tracing plugin installed: a span per operation, ended by a hook when a subscription ends)? */
  tracing: boolean;
  /** The backend with an instrumented store. */
  instrument(backend: Backend): Backend;
  /** Backend fault callbacks: count (and the caller logs) errors and connection changes. */
  onBackendError(context: string, error: unknown): void;
  onRedisConnectionChange(up: boolean): void;
  /** Observes the WebSocket server's connections (gauge, open/close log lines). */
  attachWebSockets(wss: WebSocketServer): void;
  /** Releases the rate limiter's connection and the Redis tracing subscription. */
  close(): Promise<void>;
}

/**
 * Builds the kit.
 * @throws Error when Redis is configured and the rate limiter cannot reach it within 10 s.
 */
export async function createOps(config: Config, opts: OpsOptions): Promise<Ops> {
  const settings = opsSettings(config);
  const log = opts.log;
  const metrics = new Metrics();
  const redisTarget = config.redisClusterNodes ?? config.redisUrl;
  if (!redisTarget) metrics.registry.removeSingleMetric('runwatch_redis_up');
  else metrics.redisUp.set(1);

  const provider = opts.tracerProvider ?? (settings.tracing ? startProcessTracing(settings.tracing) : null);
  const stopRedisTracing = provider ? traceRedisCommands(provider.getTracer(TRACER_NAME)) : () => {};

  let limiter: RateLimiter | null = null;
  if (settings.rateLimitPerSecond > 0) {
    const bucket = { ratePerSecond: settings.rateLimitPerSecond, burst: settings.rateLimitBurst };
    if (redisTarget) {
      const redisLimiter = new RedisRateLimiter(redisTarget, bucket, () => metrics.redisErrors.inc({ kind: 'connection' }));
      try {
        await redisLimiter.ready();
      } catch (error) {
        await redisLimiter.close();
        stopRedisTracing();
        throw error;
      }
      limiter = redisLimiter;
    } else {
      limiter = new MemoryRateLimiter(bucket);
    }
  }

  const policy = new ConnectionPolicy({
    maxConnectionsPerUser: settings.maxConnectionsPerUser,
    maxSubscriptionsPerConnection: settings.maxSubscriptionsPerConnection,
    allowedOrigins: settings.allowedOrigins,
    metrics,
    log: log.child({ component: 'connections' }),
  });

  const yogaPlugins: Plugin[] = [
    ...(provider ? [useOperationTracing(provider)] : []),
    useMetricsEndpoint(metrics, settings.metricsToken),
    useOperationObservability({ metrics, log }) as Plugin,
    policy.useSsePolicy() as Plugin,
    ...(limiter ? [useMutationRateLimit({ limiter, burst: settings.rateLimitBurst, metrics, log }) as Plugin] : []),
  ];

  let redisWasUp = true;
  return {
    metrics,
    policy,
    yogaPlugins,
    tracing: provider !== null,
    streamHooks: {
      onDelivered: (event) => metrics.delivered(event),
      onReplayed: (count) => metrics.eventsReplayed.inc(count),
      onConflated: (count) => metrics.eventsConflated.inc({ reason: 'slow_consumer' }, count),
      onDropped: (queued) => metrics.eventsDropped.inc({ reason: 'slow_consumer' }, queued),
    },
    instrument: (backend) => instrumentBackend(backend, metrics),
    onBackendError: (context, error) => {
      if (context.startsWith('pubsub')) {
        const malformed = error instanceof Error && error.message.includes('malformed');
        if (malformed) metrics.eventsDropped.inc({ reason: 'malformed' });
        else metrics.redisErrors.inc({ kind: 'pubsub' });
      } else if (context === 'redis') metrics.redisErrors.inc({ kind: 'connection' });
    },
    onRedisConnectionChange: (up) => {
      metrics.redisUp.set(up ? 1 : 0);
      if (up && !redisWasUp) metrics.redisReconnects.inc();
      redisWasUp = up;
    },
    attachWebSockets: (wss) => observeWebSockets(wss, { metrics, log, userOf: (socket) => policy.userOf(socket) }),
    close: async () => {
      stopRedisTracing();
      await limiter?.close();
    },
  };
}
