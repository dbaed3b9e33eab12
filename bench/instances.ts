/**
 * What the load-generator benchmarks (bench/fanout.ts, bench/report-path.ts)
 * share on top of bench/lib/procs.ts: the runwatch environment they run
 * instances with, and running the load generator.
 */
import { spawn } from 'node:child_process';
import { BENCH_SECRET } from './lib/procs.js';
import type { LoadgenConfig, StepResult } from './loadgen.js';

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
