/**
 * Report-path benchmark (`npm run bench:report-path`): CPU one runwatch
 * instance spends per `reportProgress` it receives over HTTP, with no
 * subscribers anywhere — the ingress half of bench/fanout.ts (its instance A)
 * in isolation — and where that CPU goes.
 *
 * It starts a redis-server of its own and, twice, one instance with the
 * environment of the fan-out bench:
 *
 * 1. plain (`src/main.ts`, exactly what `npm start` runs): a warm-up of
 *    `--warmup` seconds, then `--seconds` at `--rate` reports per second from
 *    the fan-out bench's load generator (bench/loadgen.ts); CPU ms/report is
 *    the instance's user + system CPU (from /proc) over the step / reports sent;
 * 2. profiled (bench/report-path-instance.ts: the same server plus counters of
 *    Yoga's parse / validation cache hits and a CPU profile of the measured
 *    step only): the same load, then the profile's self time by category
 *    (bench/profile-breakdown.ts) per report. Profiling costs CPU of its own,
 *    so the plain number is the one to quote.
 *
 * Flags: --rate 500 (reports/s over all jobs) --seconds 10 --warmup 5
 * --jobs 10 --report stage|progress (each report a new stage, which opens a
 * step: the fan-out benches' report, and the default; or one item completed,
 * no stage) --backend redis|memory (the instance's store: Redis as in
 * production, the default; or in-process, which leaves HTTP, GraphQL and the
 * domain without Redis round trips and their load-dependent batching)
 * --no-profile (skip run 2) --keep (keep the
 * .cpuprofile and print its path). Everything shares this machine's cores:
 * compare numbers taken on the same machine. Results: docs/benchmarks.md.
 */
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SCOPES, signToken } from '../src/auth/tokens.js';
import { startRedis } from '../test/helpers/redis.js';
import { runLoadgen, runwatchBenchEnv } from './instances.js';
import { BENCH_SECRET, createJobs, start } from './lib/procs.js';
import type { LoadgenConfig, StepResult } from './loadgen.js';
import { breakdown, formatBreakdown, type CpuProfile } from './profile-breakdown.js';
import type { RequestCounters } from './report-path-instance.js';

const { values: flags } = parseArgs({
  options: {
    rate: { type: 'string', default: '500' },
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '5' },
    jobs: { type: 'string', default: '10' },
    'no-profile': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    report: { type: 'string', default: 'stage' },
    backend: { type: 'string', default: 'redis' },
  },
});

/** Runs one step of the load generator against `url` (its instance's pid `pid`), no subscribers. */
async function drive(url: string, pid: number, token: string, jobIds: string[], seconds: number): Promise<StepResult> {
  const config: LoadgenConfig = {
    peer: 'runwatch', ingressUrl: url, serveUrl: url, ingressPid: pid, servePid: pid, token, jobIds,
    subscribers: 0, rate: Number(flags.rate), seconds, stepSeconds: 0, p99BoundMs: Infinity,
    reportShape: flags.report === 'progress' ? 'progress' : 'stage',
  };
  const [steady] = await runLoadgen(config);
  return steady!;
}

/** Waits for a line matching `pattern` on the child's stdout; resolves with the match. */
function line(child: import('node:child_process').ChildProcess, pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let out = '';
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const match = pattern.exec(out);
      if (match) {
        child.stdout!.off('data', onData);
        resolve(match);
      }
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`instance exited ${code} before ${pattern}`)));
  });
}

async function main() {
  const redis = await startRedis();
  const token = await signToken(BENCH_SECRET, { sub: 'bench', inst: 'bench', scope: SCOPES.join(' ') }, 3600);
  const env = runwatchBenchEnv(redis.url);
  // The memory backend: no Redis round trips or flat-combining batches, whose size moves with the machine's load; what is left is HTTP, GraphQL and the domain.
  if (flags.backend === 'memory') delete env.REDIS_URL;
  const jobs = Number(flags.jobs);
  const seconds = Number(flags.seconds);
  const warmup = Number(flags.warmup);
  const dir = mkdtempSync(join(tmpdir(), 'runwatch-report-path-'));
  const profilePath = join(dir, 'instance.cpuprofile');
  let plain: StepResult;
  let profiled: { step: StepResult; counters: RequestCounters; profile: CpuProfile } | null = null;
  try {
    console.error('plain instance (src/main.ts):');
    const a = await start(['src/main.ts'], env);
    try {
      const jobIds = await createJobs(a.url, token, jobs);
      if (warmup > 0) await drive(a.url, a.child.pid!, token, jobIds, warmup);
      plain = await drive(a.url, a.child.pid!, token, jobIds, seconds);
    } finally {
      a.child.kill('SIGKILL');
    }
    if (!flags['no-profile']) {
      console.error('profiled instance (bench/report-path-instance.ts):');
      const p = await start(['bench/report-path-instance.ts'], { ...env, REPORT_PATH_PROFILE: profilePath });
      try {
        const jobIds = await createJobs(p.url, token, jobs);
        if (warmup > 0) await drive(p.url, p.child.pid!, token, jobIds, warmup);
        const profiling = line(p.child, /profiling\n/);
        p.child.kill('SIGUSR2');
        await profiling;
        const step = await drive(p.url, p.child.pid!, token, jobIds, seconds);
        const counted = line(p.child, /counters (\{.*\})\n/);
        const exited = once(p.child, 'exit');
        p.child.kill('SIGTERM');
        const counters = JSON.parse((await counted)[1]!) as RequestCounters;
        await exited;
        profiled = { step, counters, profile: JSON.parse(readFileSync(profilePath, 'utf8')) as CpuProfile };
      } finally {
        if (p.child.exitCode === null) p.child.kill('SIGKILL');
      }
    }
  } finally {
    await redis.stop();
    if (!flags.keep) rmSync(dir, { recursive: true, force: true });
  }

  console.log(`\nreportProgress over HTTP to one instance, no subscribers: ${flags.rate} reports/s over ${jobs} jobs (${flags.report} reports, ${flags.backend} backend), ${seconds} s measured after ${warmup} s of warm-up\n`);
  console.log('| instance | reports | CPU % | CPU ms/report | reports/s per core at that cost |');
  console.log('| --- | --- | --- | --- | --- |');
  const row = (name: string, s: StepResult) =>
    console.log(`| ${name} | ${s.sent} | ${s.ingressCpuPercent.toFixed(0)} | ${s.ingressCpuMsPerReport.toFixed(3)} | ${Math.round(1000 / s.ingressCpuMsPerReport)} |`);
  row('plain (src/main.ts)', plain);
  if (profiled) {
    row('profiled', profiled.step);
    const c = profiled.counters;
    console.log(
      `\nYoga caches over the profiled step: ${c.parses} parses, ${c.parses - c.parseCacheMisses} parse-cache hits; ` +
        `${c.validations} validations, ${c.validations - c.validationCacheMisses} validation-cache hits; ${c.executions} executions` +
        ` (the HTTP plan path, src/transport/planned-http.ts, asks no plugin to parse or validate a document it knows: ${c.executions - c.parses} of the executions)\n`,
    );
    const b = breakdown(profiled.profile);
    console.log(`Profile of the measured step: ${b.busyMs.toFixed(0)} ms busy, ${b.idleMs.toFixed(0)} ms idle; self time:\n`);
    console.log(formatBreakdown(b, profiled.step.sent, profiled.step.ingressCpuMsPerReport));
    if (flags.keep) console.log(`\nprofile: ${profilePath}`);
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
