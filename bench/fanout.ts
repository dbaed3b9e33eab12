/**
 * Side-by-side fan-out benchmark (`npm run bench:fanout`): runwatch against
 * raw forwarding of the Redis bytes (the floor) and the plain graphql-ws +
 * graphql-js + RedisPubSub recipe, on identical load, in one run.
 *
 * For each peer it starts a redis-server of its own (once), two instances of
 * the peer (A takes the reports, B serves the subscribers) and a separate
 * load-generator process (bench/loadgen.ts) that opens the subscribers on B,
 * sends reports to A at a fixed rate and measures delivery end to end:
 * publisher → A → Redis → B → subscribers. Then a saturation search per peer:
 * the highest load at which p99 latency stays under the bound with nothing lost.
 *
 * Flags (all optional): --subscribers 1000 --jobs 10 --rate 200 (reports per
 * second over all jobs) --seconds 10 --step-seconds 4 (0: no saturation search)
 * --p99 100 (ms) --peers raw,recipe,runwatch --b-role serve|both (runwatch: `serve`, the
 * default, starts B once A holds every change-log partition lease, so B only
 * serves subscribers like the other peers' B and the per-report projection work
 * (src/backends/redis-changes.ts) is A's; `both`: A and B start together and
 * split the partitions, as two instances of a deployment do).
 * Everything runs on this machine, so load generator, instances and Redis share
 * its cores: read the table as ratios. Results: docs/benchmarks.md.
 */
import type { ChildProcess } from 'node:child_process';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { SCOPES, signToken } from '../src/auth/tokens.js';
import { startRedis } from '../test/helpers/redis.js';
import { runLoadgen, runwatchBenchEnv } from './instances.js';
import { BENCH_SECRET as SECRET, createJobs, start, stop } from './lib/procs.js';
import type { LoadgenConfig, StepResult } from './loadgen.js';

const { values: flags } = parseArgs({
  options: {
    subscribers: { type: 'string', default: '1000' },
    jobs: { type: 'string', default: '10' },
    rate: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '10' },
    'step-seconds': { type: 'string', default: '4' },
    p99: { type: 'string', default: '100' },
    peers: { type: 'string', default: 'raw,recipe,runwatch' },
    'b-role': { type: 'string', default: 'serve' },
  },
});
const PEERS = flags.peers.split(',') as LoadgenConfig['peer'][];

/** Starts A and B of one peer. */
async function startPeer(peer: LoadgenConfig['peer'], redisUrl: string) {
  if (peer === 'runwatch') {
    const env = runwatchBenchEnv(redisUrl);
    if (flags['b-role'] === 'both') return Promise.all([start(['src/main.ts'], env), start(['src/main.ts'], env)]);
    const a = await start(['src/main.ts'], env);
    await leasesSettled(redisUrl);
    return [a, await start(['src/main.ts'], env)] as const;
  }
  const file = `bench/peers/${peer}.ts`;
  return Promise.all([start([file, redisUrl]), start([file, redisUrl])]);
}

/**
 * Resolves once the change-log partition leases (`*changes:lease*`) are all
 * taken: their number is above 0 and the same in three reads 100 ms apart.
 * @throws Error after 15 s.
 */
async function leasesSettled(redisUrl: string): Promise<void> {
  const redis = new Redis(redisUrl);
  try {
    const counts: number[] = [];
    for (const deadline = Date.now() + 15_000; Date.now() < deadline; ) {
      counts.push((await redis.keys('*changes:lease*')).length);
      const last = counts.slice(-3);
      if (last.length === 3 && last[0]! > 0 && last.every((n) => n === last[0])) return;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`change-log leases did not settle: ${counts.slice(-3).join(', ')}`);
  } finally {
    redis.disconnect();
  }
}

const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '-');

async function main() {
  const redis = await startRedis();
  const token = await signToken(SECRET, { sub: 'bench', inst: 'bench', scope: SCOPES.join(' ') }, 3600);
  const rows: { peer: string; steady: StepResult; saturation: number }[] = [];
  const children: ChildProcess[] = [];
  try {
    for (const peer of PEERS) {
      const [a, b] = await startPeer(peer, redis.url);
      children.push(a.child, b.child);
      const jobs = Number(flags.jobs);
      const jobIds = peer === 'runwatch' ? await createJobs(a.url, token, jobs) : Array.from({ length: jobs }, (_, i) => `${peer}-job-${i}`);
      const results = await runLoadgen({
        peer, ingressUrl: a.url, serveUrl: b.url, ingressPid: a.child.pid!, servePid: b.child.pid!, token, jobIds,
        subscribers: Number(flags.subscribers), rate: Number(flags.rate), seconds: Number(flags.seconds),
        stepSeconds: Number(flags['step-seconds']), p99BoundMs: Number(flags.p99),
      });
      const steady = results.find((r) => r.kind === 'steady')!;
      const passing = results.filter((r) => r.passed).map((r) => r.deliveredPerSecond);
      rows.push({ peer, steady, saturation: passing.length ? Math.max(...passing) : 0 });
      await Promise.all([stop(a.child), stop(b.child)]);
    }
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    await redis.stop();
  }
  const raw = rows.find((r) => r.peer === 'raw');
  console.log(
    `\n${flags.subscribers} subscribers over ${flags.jobs} jobs, ${flags.rate} reports/s for ${flags.seconds} s (steady step); ` +
      `saturation: highest delivered/s with p99 < ${flags.p99} ms and nothing lost\n`,
  );
  console.log('| peer | delivered/s | p50 ms | p99 ms | max ms | lost | B CPU % | B CPU µs/delivery | × raw | RSS KiB/subscriber | A CPU % | A CPU ms/report | saturation delivered/s |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const { peer, steady: s, saturation } of rows) {
    const ratio = raw ? s.serveCpuMicrosPerDelivery / raw.steady.serveCpuMicrosPerDelivery : NaN;
    console.log(
      `| ${peer} | ${Math.round(s.deliveredPerSecond)} | ${fmt(s.p50)} | ${fmt(s.p99)} | ${fmt(s.max)} | ${s.lost} | ${fmt(s.serveCpuPercent, 0)} | ` +
        `${fmt(s.serveCpuMicrosPerDelivery)} | ${fmt(ratio, 2)} | ${fmt(s.rssKiBPerSubscriber)} | ${fmt(s.ingressCpuPercent, 0)} | ` +
        `${fmt(s.ingressCpuMsPerReport, 2)} | ${Math.round(saturation)} |`,
    );
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
