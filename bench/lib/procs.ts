/**
 * Pieces the benchmarks share (bench/fanout.ts, bench/loadgen.ts,
 * bench/connections.ts, bench/cpu-per-delivery.ts): starting peer processes,
 * reading a process's CPU and memory from /proc (Linux only), creating jobs,
 * and the shape of an event published straight to a job's Redis channel.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { DEFAULT_CHANGE_PARTITIONS, RedisKeyspace } from '../../src/backends/redis.js';

/** The HS256 secret every benchmark's runwatch instances verify tokens with. */
export const BENCH_SECRET = 'bench-secret-0123456789abcdef-0123456789abcdef';

/**
 * Starts a tsx process (`node [nodeArgs] --import tsx ...args`) and resolves
 * with it and its base URL (e.g. `http://127.0.0.1:4000`) once it prints
 * `listening <port>` or runwatch's `running at <url>`. Its stdout keeps
 * flowing afterwards (attach a `data` listener to read later lines).
 * With `BENCH_CPU_PROF=<dir>` in the environment, every process started here
 * writes a V8 CPU profile into that directory when it exits (`--cpu-prof`;
 * read one with bench/profile-breakdown.ts).
 * @throws (rejects) when the process exits first, with what it printed.
 */
export function start(args: string[], env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<{ child: ChildProcess; url: string }> {
  const profile = process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [];
  const child = spawn(process.execPath, [...profile, ...nodeArgs, '--import', 'tsx', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const port = /listening (\d+)/.exec(out)?.[1];
      const url = /running at (http:\/\/[\d.:]+)/.exec(out)?.[1];
      if (port || url) {
        child.stdout!.off('data', onData);
        child.stdout!.resume();
        resolve({ child, url: url ?? `http://127.0.0.1:${port}` });
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}: ${out}`)));
  });
}

/**
 * Ends a process {@link start} started: SIGKILL, or with BENCH_CPU_PROF set,
 * SIGTERM (so it writes its profile) and SIGKILL if it has not exited within 10 s.
 * Resolves once it has exited.
 */
export async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (!process.env.BENCH_CPU_PROF) {
    child.kill('SIGKILL');
    return exited;
  }
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** Resident set size of a process in KiB, from /proc/<pid>/status (VmRSS). */
export function rssKiB(pid: number | 'self'): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

/** This process's open-files limit (RLIMIT_NOFILE), soft and hard, from /proc/self/limits; Infinity when unlimited. */
export function openFilesLimit(): { soft: number; hard: number } {
  const line = /Max open files\s+(\S+)\s+(\S+)/.exec(readFileSync('/proc/self/limits', 'utf8'));
  const num = (s: string | undefined) => (s === undefined || s === 'unlimited' ? Infinity : Number(s));
  return { soft: num(line?.[1]), hard: num(line?.[2]) };
}

/**
 * Creates `n` batch jobs through runwatch's GraphQL API at `url` (base URL),
 * `concurrency` requests at a time; resolves with their ids in order.
 * @throws when a request fails or returns errors.
 */
export async function createJobs(url: string, token: string, n: number, concurrency = 1): Promise<string[]> {
  const ids: string[] = new Array(n);
  const one = async (i: number) => {
    const res = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: `mutation { createBatchJob(input: { name: "bench ${i}" }) { id } }` }),
    });
    const body = (await res.json()) as { data?: { createBatchJob: { id: string } }; errors?: unknown };
    if (!body.data) throw new Error(`createBatchJob failed: ${JSON.stringify(body.errors)}`);
    ids[i] = body.data.createBatchJob.id;
  };
  for (let i = 0; i < n; i += concurrency) await Promise.all(Array.from({ length: Math.min(concurrency, n - i) }, (_, j) => one(i + j)));
  return ids;
}

/**
 * The Redis channel runwatch's backend publishes job `runId`'s events on (with its hash tag: src/backends/redis-keys.ts),
 * for a runwatch started on a fresh Redis (the default partition count).
 */
export const jobChannel = (runId: string) => new RedisKeyspace(DEFAULT_CHANGE_PARTITIONS).channel(`job:${runId}`);

/**
 * The Redis channel a bench peer listens to for job `runId`: runwatch's own ({@link jobChannel}), or
 * `runwatch:job:<runId>` for the raw-forwarding and recipe peers (bench/peers/), which know no hash tags.
 */
export const peerChannel = (peer: string, runId: string) => (peer === 'runwatch' ? jobChannel(runId) : `runwatch:job:${runId}`);

/**
 * A STAGE event of job `runId` at `offset`, as runwatch's Redis backend
 * publishes it on {@link jobChannel} (JSON text). Publishing it straight to
 * that channel measures delivery only, not reporting. Offsets must grow per job
 * (runwatch drops events at or below the last offset a subscriber got).
 */
export function benchEvent(runId: string, offset: number): string {
  const job = {
    id: runId, kind: 'BATCH', name: 'bench', status: 'RUNNING', total: 1_000_000, completed: offset, failed: 0,
    percent: offset / 10_000, rate: 123.4, etaSeconds: 987.6, stage: `stage-${offset}`, message: null, errorMessage: null,
    metadata: null, resources: null, createdAt: 1, startedAt: 2, finishedAt: null, updatedAt: 3, lastCursor: `bench.${offset}`,
  };
  return JSON.stringify({
    cursor: `bench.${offset}`, offset, runId, type: 'STAGE', timestamp: Date.now(), job, message: job.stage,
    owner: { tenant: { institute: 'user:bench', environment: 'default' }, userId: 'bench' },
  });
}
