/**
 * Helpers shared by the benchmarks (bench/fanout.ts, bench/report-path.ts):
 * starting instances as child processes, the bench secret and token, the
 * runwatch environment the benches run with, creating jobs, and CPU readings
 * of a process from /proc.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { LoadgenConfig, StepResult } from './loadgen.js';

/** The JWT secret every bench instance verifies with. */
export const BENCH_SECRET = 'bench-secret-0123456789abcdef-0123456789abcdef';

/**
 * The environment of a runwatch bench instance: a free port, the bench
 * secret, warn-level logs, mutation rate limits off and no practical
 * connection cap (the load generator is one user).
 */
export function runwatchBenchEnv(redisUrl: string): Record<string, string> {
  return {
    PORT: '0', REDIS_URL: redisUrl, RUNWATCH_JWT_SECRET: BENCH_SECRET, LOG_LEVEL: 'warn',
    RUNWATCH_RATE_LIMIT_PER_SECOND: '0', RUNWATCH_MAX_CONNECTIONS_PER_USER: '1000000',
  };
}

/**
 * Starts `node [nodeArgs] --import tsx <args>` and resolves with the process and
 * its base URL (e.g. `http://127.0.0.1:4000`) once it prints `listening <port>`
 * or `running at <url>`.
 * @throws Error (rejects) when the process exits first, with what it printed.
 */
export function start(args: string[], env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
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

/** Creates `n` batch jobs named `bench <i>` through `url`'s /graphql; resolves with their ids. */
export async function createJobs(url: string, token: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: `mutation { createBatchJob(input: { name: "bench ${i}" }) { id } }` }),
    });
    ids.push(((await res.json()) as { data: { createBatchJob: { id: string } } }).data.createBatchJob.id);
  }
  return ids;
}

/**
 * Runs the load generator (bench/loadgen.ts, a process of its own) with `config`,
 * printing each step to stderr; resolves with its step results.
 * @throws Error (rejects) when it exits with a non-zero code.
 */
export function runLoadgen(config: LoadgenConfig): Promise<StepResult[]> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/loadgen.ts', JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const results: StepResult[] = [];
  let buffer = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      const parsed = JSON.parse(line) as StepResult | { done: true };
      if ('done' in parsed) continue;
      results.push(parsed);
      console.error(
        `  ${config.peer} ${parsed.kind} ${parsed.rate}/s: ${Math.round(parsed.deliveredPerSecond)} delivered/s, p99 ${parsed.p99?.toFixed(1) ?? '-'} ms, lost ${parsed.lost}, ` +
          `A ${parsed.ingressCpuMsPerReport.toFixed(3)} CPU ms/report`,
      );
    }
  });
  return new Promise((resolve, reject) => child.once('exit', (code) => (code === 0 ? resolve(results) : reject(new Error(`loadgen exited ${code}`)))));
}

const CLOCK_TICKS = 100; // USER_HZ on Linux

/** CPU seconds (user + system) a process has used, from /proc/<pid>/stat (10 ms resolution). */
export function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}
