/**
 * One runwatch server: an HTTP server carrying Yoga (HTTP, SSE, GraphiQL,
 * health) and graphql-ws on the same port and path, over the memory or
 * Redis backend. Wiring only; behaviour lives in the modules it composes.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { TracerProvider } from '@opentelemetry/api';
import type { Plugin } from 'graphql-yoga';
import type { Logger } from 'pino';
import { randomSecret, SCOPES, signToken, TokenVerifier } from './auth/tokens.js';
import { createMemoryBackend } from './backends/memory.js';
import { createRedisBackend, createRedisClusterBackend, redactUrl, type RedisBackendOptions } from './backends/redis.js';
import type { Backend } from './backends/types.js';
import { CloseCode } from './close-codes.js';
import { jobOpsSettings, retentionSettings, tokenPolicy, type Config } from './config.js';
import { createLogger } from './log.js';
import type { Metrics } from './observe/metrics.js';
import { createOps } from './ops.js';
import { systemClock, type Clock } from './services/clock.js';
import { ActivityService } from './services/activity.js';
import { CommandService } from './services/commands.js';
import { JobService } from './services/jobs.js';
import { ResultsService } from './services/results.js';
import { ShareService } from './services/share.js';
import { StallService } from './services/stalls.js';
import { WebhookService } from './services/webhooks.js';
import { createDashboard } from './dashboard/serve.js';
import { createInfra } from './delivery/job-writer.js';
import { TrainingService } from './services/training.js';
import { attachGraphqlWs } from './transport/ws.js';
import { createYogaApp, LIMITS } from './transport/yoga.js';
import { createPlannedHttp } from './transport/planned-http.js';
import { DocumentCache } from './limits/document-cache.js';
import { createErrorMasker } from './schema/errors.js';
import type { Services } from './schema/context.js';

/**
 * How long (ms) an idle keep-alive HTTP connection stays open on the server. Longer than clients' own idle timeouts
 * (Node's fetch, undici: 4 s on coarse timers; load balancers: typically 60 s), so that the client is the side that
 * closes an idle connection: with Node's default of 5 s, a client whose event loop was busy for a few seconds (or one
 * within undici's last second) sends its next request on a connection the server is closing at that moment and gets
 * ECONNRESET (seen in the cluster tests beside CPU hogs, after a spawnSync). Responses do not carry Node's
 * `Keep-Alive: timeout=` hint, which undici would follow to 1 s before this bound (see the request handler). Idea:
 * the AWS ALB guidance (server keep-alive longer than the balancer's idle timeout). A shutdown still closes idle
 * connections at once.
 */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;

/** A started server. */
export interface RunningServer {
  /** e.g. `http://127.0.0.1:4000/graphql` */
  url: string;
  port: number;
  httpServer: Server;
  backend: Backend;
  /** Dev mode only: a token with every scope (valid 30 days). */
  devToken: string | null;
  /** The secret tokens are verified with (random in dev mode). */
  jwtSecret: string;
  /** The services resolvers call (embedding, diagnostics). */
  services: Services;
  log: Logger;
  /** This instance's Prometheus registry (also served at `/metrics`). */
  metrics: Metrics;
  /**
   * Graceful stop: stops accepting, closes WebSockets with 1012 (clients
   * reconnect elsewhere), ends SSE streams, closes the backend. Resolves
   * within `graceMs` (default 5000 ms), forcing connections closed after it.
   */
  close(graceMs?: number): Promise<void>;
}

/** Extras for tests and embedding. */
export interface ServerOptions {
  clock?: Clock;
  logger?: Logger;
  /** Trace with this provider instead of the OTEL_* configuration (tests, embedders); see src/ops.ts. */
  tracerProvider?: TracerProvider;
  /** More envelop plugins, after the operations kit's (src/ops.ts); e.g. bench/report-path-instance.ts counts cache hits with one. */
  plugins?: Plugin[];
  /**
   * WebSockets: negotiate permessage-deflate with clients that offer it (default
   * false: it costs CPU per message and a zlib context, about 240 KiB, per
   * connection; see docs/benchmarks.md, connections and memory).
   */
  perMessageDeflate?: boolean;
  /**
   * Shared channels for WebSocket `runProgress` subscriptions without `after`
   * (src/transport/shared-channel.ts); default `config.sharedChannels`
   * (RUNWATCH_SHARED_CHANNELS), else {@link SHARED_CHANNELS_DEFAULT}.
   */
  sharedChannels?: boolean;
  /**
   * Milliseconds a socket or SSE response the server is closing (4008 slow
   * consumer, 4403 token expiry) may take to complete its close before it is
   * destroyed (default 3,000: src/transport/close-grace.ts). Tests that read
   * a close frame only after a pause set it longer.
   */
  closeGraceMs?: number;
}

/** Whether shared channels are on when neither the options nor RUNWATCH_SHARED_CHANNELS say. */
export const SHARED_CHANNELS_DEFAULT = true;

/**
 * Starts a server on `config.port` (0: a free port).
 * @throws Error when Redis is configured and unreachable, or the port is taken.
 */
export async function startServer(config: Config, opts: ServerOptions = {}): Promise<RunningServer> {
  const log = opts.logger ?? createLogger(config.logLevel);
  const clock = opts.clock ?? systemClock;
  const ops = await createOps(config, { log, tracerProvider: opts.tracerProvider });
  const onBackendError = (context: string, error: unknown) => {
    ops.onBackendError(context, error);
    log.warn({ err: error, context }, 'backend error');
  };
  const redisOptions: Omit<RedisBackendOptions, 'url'> = {
    historySize: config.historySize,
    retentionSeconds: retentionSettings(config).retentionSeconds,
    changePartitions: config.changePartitions,
    changeClaimIdleMs: config.changeClaimMs,
    onError: onBackendError,
    onConnectionError: () => ops.onBackendError('redis', null),
    // One warning when an outage starts and one line when it ends, whatever the number of retries in between.
    onConnectionChange: (up, { downMs, error }) => {
      ops.onRedisConnectionChange(up);
      if (up) log.info({ event: 'fault_cleared', fault: 'redis_down', downMs }, `redis reachable again after ${downMs} ms`);
      else log.warn({ event: 'fault', fault: 'redis_down', error }, 'redis unreachable: mutations fail with SERVICE_UNAVAILABLE until it is back');
    },
  };
  const closeOpsOnFailure = async (error: unknown): Promise<never> => {
    await ops.close();
    throw error;
  };
  const rawBackend = config.redisClusterNodes
    ? await createRedisClusterBackend({ ...redisOptions, nodes: config.redisClusterNodes }).catch(closeOpsOnFailure)
    : config.redisUrl
    ? await createRedisBackend({ ...redisOptions, url: config.redisUrl }).catch(closeOpsOnFailure)
    : createMemoryBackend({
        historySize: config.historySize,
        onError: onBackendError,
        clock,
        retentionSeconds: retentionSettings(config).retentionSeconds,
        maxJobs: retentionSettings(config).memoryMaxJobs,
      });
  const backend = ops.instrument(rawBackend);
  const jwtSecret = config.jwtSecret ?? randomSecret();
  const devToken = config.jwtSecret ? null : await signToken(jwtSecret, { sub: 'dev', scope: SCOPES.join(' ') }, 30 * 24 * 3600);
  const verifier = new TokenVerifier(jwtSecret, tokenPolicy(config));
  const onError = (message: string, error: unknown) => log.warn({ err: error }, message);
  const jobOps = jobOpsSettings(config);
  // One write path, one set of stream kinds and one change feed per server; services share them, never each other.
  const infra = createInfra(backend, clock, { progressHz: config.progressHz, onError });
  const streamSettings = { maxQueued: config.subscriberQueue, onError, hooks: ops.streamHooks };
  const jobs = new JobService(infra, { ...streamSettings, stallSeconds: jobOps.stallSeconds });
  // Training, activity and webhooks follow job changes as projectors of the change log (backends ChangeFeed).
  const training = new TrainingService(infra, { progressHz: config.progressHz, ...streamSettings });
  const webhooks = new WebhookService(infra, {
    allowPrivate: jobOps.webhookAllowPrivate,
    allowLoopback: !config.jwtSecret,
    timeoutMs: jobOps.webhookTimeoutMs,
    retry: jobOps.webhookRetry,
    onError,
  });
  const activity = new ActivityService(infra, {
    onError,
    // OVER_BUDGET webhooks: the budget is not a job, so its crossing is handed over after its commit (see ActivityServiceOptions).
    onBudgetHint: (tenant, kind, budget, version, atMs) => (kind === 'OVER_BUDGET' ? webhooks.onOverBudget(tenant, budget, version, atMs) : undefined),
  });
  const commands = new CommandService(infra);
  const results = new ResultsService(infra, { onError });
  // One stall sweep per instance; its STALLED commits reach activity and webhooks through the change log.
  const stalls = new StallService(backend, clock, { sweepIntervalMs: jobOps.stallSweepMs, onError });
  const services: Services = { jobs, results, training, activity, commands, webhooks, share: new ShareService(jwtSecret, backend.store) };
  // Every projector's consumer group exists before the first request: no change committed from now on is missed.
  await backend.changes.ready();
  stalls.start();
  const documents = new DocumentCache();
  const yoga = createYogaApp({ verifier, services, backend, log, devToken: devToken ?? undefined, plugins: [...ops.yogaPlugins, ...(opts.plugins ?? [])], cors: ops.policy.cors, documents, closeGraceMs: opts.closeGraceMs });
  // Hot queries and mutations (a worker's reports) skip Yoga's per-request HTTP machinery; everything else goes to Yoga.
  const graphqlHttp = createPlannedHttp(yoga, { endpoint: '/graphql', maxBodyBytes: LIMITS.maxBodyBytes, documents, maskError: createErrorMasker(log), log });
  const dashboard = createDashboard({ devToken: devToken ?? undefined });
  // Idle keep-alive connections must not hold a shutdown up until the client's keep-alive
  // timeout (undici: 4 s): every response that ends during a shutdown closes its connection.
  let shuttingDown = false;
  const httpServer = createServer((req, res) => {
    // During a shutdown every response is the connection's last.
    if (shuttingDown) res.shouldKeepAlive = false;
    // Keep-alive without Node's `Keep-Alive: timeout=65` hint: a client that reads it (undici) would idle until 1 s
    // before it, the same narrow margin as with Node's 5 s default; without it, undici closes after its own 4 s.
    else if (res.shouldKeepAlive) res.setHeader('Connection', 'keep-alive');
    // A response ending during a shutdown leaves its keep-alive connection idle: close it now.
    res.once('finish', () => {
      if (shuttingDown) setImmediate(() => httpServer.closeIdleConnections());
    });
    if (dashboard(req, res)) return; // the web dashboard at / (src/dashboard)
    graphqlHttp(req, res);
  });
  httpServer.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
  // Kept above the idle timeout, as Node advises (a smaller headersTimeout cut keep-alive connections in older versions).
  httpServer.headersTimeout = KEEP_ALIVE_TIMEOUT_MS + 1000;
  const ws = attachGraphqlWs({
    httpServer,
    yoga,
    verifier,
    log,
    policy: ops.policy,
    perMessageDeflate: opts.perMessageDeflate,
    documents,
    sharedChannels: opts.sharedChannels ?? config.sharedChannels ?? SHARED_CHANNELS_DEFAULT,
    closeGraceMs: opts.closeGraceMs,
    // Runwatch's own plugins end nothing when a channel's subscription ends, except the tracing span; an embedder's may.
    channelEndHooks: ops.tracing || (opts.plugins?.length ?? 0) > 0,
  });
  ops.attachWebSockets(ws.wss);

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(config.port, config.host, () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
  const port = (httpServer.address() as AddressInfo).port;
  const host = config.host.includes(':') ? `[${config.host}]` : config.host;
  const url = `http://${host}:${port}/graphql`;
  log.info(
    {
      url,
      backend: backend.kind,
      redis: config.redisUrl ? redactUrl(config.redisUrl) : config.redisClusterNodes?.map((n) => `${n.host}:${n.port}`).join(','),
    },
    'runwatch listening',
  );

  let closing: Promise<void> | null = null;
  const close = (graceMs = 5000) =>
    (closing ??= (async () => {
      log.info('shutting down');
      const shutdownStarted = performance.now();
      shuttingDown = true;
      // Stop accepting; in-flight requests finish; idle keep-alive connections close now.
      const stopped = new Promise<void>((resolve) => httpServer.close(() => resolve()));
      // WebSocket clients reconnect, to another instance, and resume from their cursors.
      for (const client of ws.wss.clients) client.close(CloseCode.ServiceRestart, 'Server restarting: reconnect');
      // SSE streams end with SERVICE_UNAVAILABLE, so their clients resume too.
      stalls.close();
      jobs.close();
      training.close();
      commands.close();
      activity.close();
      httpServer.closeIdleConnections();
      const force = setTimeout(() => {
        log.warn({ graceMs }, 'shutdown grace period over: closing remaining connections');
        for (const client of ws.wss.clients) client.terminate();
        httpServer.closeAllConnections();
      }, graceMs);
      await Promise.all([stopped, Promise.resolve(ws.dispose()).catch(() => {})]);
      clearTimeout(force);
      await yoga.dispose();
      await backend.close();
      await ops.close();
      log.info({ event: 'stopped', durationMs: Math.round(performance.now() - shutdownStarted) }, 'stopped');
    })());

  return { url, port, httpServer, backend, devToken, jwtSecret, services, log, metrics: ops.metrics, close };
}
