/**
 * Real redis-server processes for tests, on free loopback ports.
 * When redis-server is missing the caller fails with the install command.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { RedisKeyspace } from '../../src/backends/redis-keys.js';

export const REDIS_MISSING =
  'redis-server is not installed: the Redis and multi-instance tests need it. Install it with `apt-get install -y redis-server` (or run `bash .ci/run`, which does).';

/** Throws with the install command when redis-server is not on PATH. */
export function assertRedisInstalled(): void {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) throw new Error(REDIS_MISSING);
}

/** A port free on 127.0.0.1 now (the OS picks it; closed again before this resolves). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** A running redis-server owned by the test that started it. */
export interface TestRedis {
  url: string;
  port: number;
  pid: number;
  /** Stops it (SIGKILL when `hard`), waiting for the process to exit. */
  stop(hard?: boolean): Promise<void>;
  /**
   * Stops it (SIGKILL; with `graceful`, SIGTERM, so Redis writes its append-only file out as it
   * would under systemd) and starts it again on the same port: with `persistent`, from that file.
   */
  restart(opts?: { graceful?: boolean }): Promise<void>;
  /** Kills it and starts it again on the same port with no data at all. */
  restartEmpty(): Promise<void>;
}

async function waitReady(port: number, child: ChildProcess, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with code ${child.exitCode}`);
    const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.ping();
      client.disconnect();
      return;
    } catch {
      client.disconnect();
    }
    if (Date.now() - started > timeoutMs) throw new Error(`redis-server on port ${port} not ready after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts an empty redis-server on a free port. With `persistent`, writes go to
 * an append-only file (`appendonly yes`), fsynced per `appendfsync`: `always`
 * (the default here) so a SIGKILLed server restarts with everything it
 * acknowledged, or `everysec` (Redis' default, the set-up docs/operations.md recommends).
 */
export async function startRedis(opts: { persistent?: boolean; appendfsync?: 'always' | 'everysec' } = {}): Promise<TestRedis> {
  assertRedisInstalled();
  const dir = mkdtempSync(join(tmpdir(), 'runwatch-redis-'));
  let port = 0;
  let child: ChildProcess | null = null;
  const launch = async () => {
    const persistence = opts.persistent ? ['--appendonly', 'yes', '--appendfsync', opts.appendfsync ?? 'always'] : ['--appendonly', 'no'];
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--dir', dir], {
      stdio: 'ignore',
    });
    child = proc;
    await waitReady(port, proc);
  };
  for (let attempt = 0; ; attempt++) {
    port = await freePort();
    try {
      await launch();
      break;
    } catch (error) {
      (child as ChildProcess | null)?.kill('SIGKILL');
      if (attempt >= 3) throw error;
    }
  }
  const stop = async (hard = false) => {
    const proc = child;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill(hard ? 'SIGKILL' : 'SIGTERM');
    });
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      return child?.pid ?? -1;
    },
    stop,
    restart: async (restartOpts = {}) => {
      await stop(!restartOpts.graceful);
      await launch();
    },
    restartEmpty: async () => {
      await stop(true);
      removeDir(dir);
      mkdirSync(dir);
      await launch();
    },
  };
}

/** Removes a temp dir, ignoring errors. */
export const removeDir = (dir: string) => rmSync(dir, { recursive: true, force: true });

/**
 * Key and channel names on the shared test Redis: test servers and backends use 4 change partitions
 * (test/helpers/servers.ts), the count the first of them stored there (backends/redis.ts).
 */
export const testKeys = new RedisKeyspace(4);
