/**
 * Real redis-server processes for tests, on free loopback ports.
 * When redis-server is missing the caller fails with the install command.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export const REDIS_MISSING =
  'redis-server is not installed: the Redis and multi-instance tests need it. Install it with `apt-get install -y redis-server` (or run `bash .ci/run`, which does).';

/** Throws with the install command when redis-server is not on PATH. */
export function assertRedisInstalled(): void {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) throw new Error(REDIS_MISSING);
}

async function freePort(): Promise<number> {
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
  /** Starts it again on the same port, empty (no persistence). */
  restart(): Promise<void>;
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

/** Starts an empty, non-persistent redis-server on a free port. */
export async function startRedis(): Promise<TestRedis> {
  assertRedisInstalled();
  const dir = mkdtempSync(join(tmpdir(), 'runwatch-redis-'));
  let port = 0;
  let child: ChildProcess | null = null;
  const launch = async () => {
    const proc = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
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
    restart: async () => {
      await stop(true);
      await launch();
    },
    // cleanup of the temp dir happens on stop of the whole run
  } as TestRedis & { dir: string };
}

/** Removes a temp dir, ignoring errors. */
export const removeDir = (dir: string) => rmSync(dir, { recursive: true, force: true });
