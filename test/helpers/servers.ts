/**
 * Real runwatch servers on port 0 for tests, stopped by `afterAll` even when
 * a test forgets (each start pushes its close onto a list).
 */
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, inject } from 'vitest';
import { signToken, SCOPES, TokenVerifier, type TokenClaims, type Viewer } from '../../src/auth/tokens.js';
import type { Config } from '../../src/config.js';
import { startServer, type RunningServer, type ServerOptions } from '../../src/server.js';
import { startRedisCluster, type TestCluster } from './redis-cluster.js';

/** The HS256 secret every test server shares, so one token works on all instances. */
export const TEST_SECRET = 'runwatch-test-secret-0123456789abcdef-0123456789';

const running: RunningServer[] = [];
/**
 * Closes every server started by {@link startTestServer} and not closed yet. Run after each test
 * file by test/helpers/per-file-cleanup.ts (a setup file, so it also runs when a worker reuses
 * this module for its next file, `isolate: false`).
 */
export async function closeTestServers(): Promise<void> {
  await Promise.all(running.splice(0).map((s) => s.close(1000)));
}

/** The backends every shared suite runs against. */
export const BACKENDS = ['memory', 'redis'] as const;
export type BackendName = (typeof BACKENDS)[number];
/**
 * The backends of the core contract suites (jobs, resume), which run on a real 3-master Redis Cluster too (issue 21).
 * A suite on 'redis-cluster' starts its own cluster ({@link withClusterBackend}).
 */
export const BACKENDS_AND_CLUSTER = [...BACKENDS, 'redis-cluster'] as const;
export type AnyBackend = (typeof BACKENDS_AND_CLUSTER)[number];

/**
 * For a suite run per backend: on 'redis-cluster', starts a 3-master Redis Cluster before the suite's tests (and
 * stops it after them, once the servers on it are closed); on the others nothing. Call it at the top of the
 * describe block. @returns what to pass to startTestServer for that backend.
 */
export function withClusterBackend(backend: AnyBackend): () => { backend?: BackendName; config?: Partial<Config> } {
  let seeds: Config['redisClusterNodes'];
  if (backend === 'redis-cluster') {
    let cluster: TestCluster | undefined;
    beforeAll(async () => {
      cluster = await startRedisCluster({ masters: 3 });
      seeds = cluster.seeds;
    }, 60_000);
    afterAll(async () => {
      await closeTestServers();
      await cluster?.stop();
    }, 30_000);
  }
  // changePartitions undefined: the cluster's default (16), as a deployment would have it.
  return () => (backend === 'redis-cluster' ? { config: { redisClusterNodes: seeds, changePartitions: undefined } } : { backend });
}

/** URL of the run's shared redis-server (started by the global setup). */
export const sharedRedisUrl = () => inject('redisUrl');

/** Starts a server; `backend: 'redis'` uses the shared redis-server unless `redisUrl` is given. */
export async function startTestServer(
  opts: { backend?: BackendName; redisUrl?: string; config?: Partial<Config> } & ServerOptions = {},
): Promise<RunningServer> {
  const redisUrl = opts.redisUrl ?? (opts.backend === 'redis' ? sharedRedisUrl() : undefined);
  const config: Config = {
    port: 0,
    host: '127.0.0.1',
    redisUrl,
    jwtSecret: TEST_SECRET,
    progressHz: 10,
    historySize: 1000,
    changePartitions: 4,
    // Short, so that a change a closed test server had read is taken over quickly by another.
    changeClaimMs: 1000,
    subscriberQueue: 1000,
    logLevel: 'silent',
    ...opts.config,
  };
  const server = await startServer(config, {
    logger: opts.logger ?? pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    clock: opts.clock,
    tracerProvider: opts.tracerProvider,
    perMessageDeflate: opts.perMessageDeflate,
    plugins: opts.plugins,
    // RUNWATCH_SHARED_CHANNELS=true|false runs a suite with shared channels on or off (default: the server's).
    sharedChannels: opts.sharedChannels ?? envFlag(process.env.RUNWATCH_SHARED_CHANNELS),
    closeGraceMs: opts.closeGraceMs,
  });
  running.push(server);
  return server;
}

function envFlag(value: string | undefined): boolean | undefined {
  return value === 'true' ? true : value === 'false' ? false : undefined;
}

/** A fresh tenant (institute) so tests never see each other's jobs on a shared Redis. */
export const freshInstitute = () => `inst-${randomUUID().slice(0, 8)}`;

/** Signs a test token; defaults: every scope, a fresh user, 1 hour. */
export function token(claims: Partial<TokenClaims> = {}, ttlSeconds = 3600, secret = TEST_SECRET): Promise<string> {
  return signToken(secret, { sub: claims.sub ?? `user-${randomUUID().slice(0, 8)}`, scope: SCOPES.join(' '), ...claims }, ttlSeconds);
}

/**
 * The viewer a token stands for, for driving a server's services in-process
 * (heavy producers in tests: thousands of reports without thousands of HTTP requests).
 */
export function viewerOf(tok: string): Promise<Viewer> {
  return new TokenVerifier(TEST_SECRET).verify(tok);
}
