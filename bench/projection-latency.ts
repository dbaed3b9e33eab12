/**
 * Projection latency benchmark (`npm run bench:projection`): how long after a
 * child's `reportProgress` returns its parent's aggregate (the `groups`
 * projector's effect) is visible on ANOTHER instance, with two instances on
 * one Redis (issue 18: "a reportProgress still returns as soon as its own
 * commit is durable; projections follow within milliseconds").
 *
 * It starts a redis-server of its own and two runwatch servers in this process
 * (A and B, RUNWATCH_PROGRESS_HZ 1000 so that every report spaced a few ms
 * apart is an event, hence a change in the change log), a parent with one
 * child, and subscribes on B to the parent's topic. Then `--samples` times:
 * report `completedDelta: 1` to the child through A (in-process), note when
 * the call returned, and when B sees a parent event whose aggregate includes
 * it. Prints p50/p90/p99/max of the report call, of report (call start) →
 * projection visible on B, and of the part after the call returned, in ms. Both instances consume the change log (the projection
 * runs on whichever instance read the change). Results: docs/benchmarks.md.
 *
 * Flags: --samples 1000 --gap 5 (ms between reports) --partitions 4.
 */
import { parseArgs } from 'node:util';
import pino from 'pino';
import { SCOPES, signToken, TokenVerifier } from '../src/auth/tokens.js';
import type { Config } from '../src/config.js';
import type { JobEvent } from '../src/domain/job.js';
import { jobTopic } from '../src/domain/topics.js';
import { startServer } from '../src/server.js';
import { startRedis } from '../test/helpers/redis.js';

const { values: flags } = parseArgs({
  options: {
    samples: { type: 'string', default: '1000' },
    gap: { type: 'string', default: '5' },
    partitions: { type: 'string', default: '4' },
  },
});

const SECRET = 'bench-secret-bench-secret-bench-secret!!';

const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
const summary = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: quantile(s, 0.5), p90: quantile(s, 0.9), p99: quantile(s, 0.99), max: s.at(-1)! };
};

async function main() {
  const redis = await startRedis();
  const config = (): Config =>
    ({
      port: 0,
      host: '127.0.0.1',
      redisUrl: redis.url,
      jwtSecret: SECRET,
      progressHz: 1000,
      historySize: 1000,
      changePartitions: Number(flags.partitions),
      changeClaimMs: 5000,
      subscriberQueue: 1000,
      logLevel: 'silent',
    }) as Config;
  const logger = pino({ level: 'silent' });
  const a = await startServer(config(), { logger });
  const b = await startServer(config(), { logger });
  const tok = await signToken(SECRET, { sub: 'bench', inst: 'bench', scope: SCOPES.join(' ') }, 3600);
  const viewer = await new TokenVerifier(SECRET).verify(tok);
  const parent = await a.services.jobs.create(viewer, { name: 'parent', kind: 'BATCH' });
  const child = await a.services.jobs.create(viewer, { name: 'child', kind: 'BATCH', parentId: parent.id });
  let waiting: { completed: number; resolve: () => void } | null = null;
  const leave = await b.backend.bus.subscribe<JobEvent>(jobTopic(parent.id), (e) => {
    if (waiting && e.job.completed >= waiting.completed) waiting.resolve();
  });
  const samples = Number(flags.samples);
  const gap = Number(flags.gap);
  const reportMs: number[] = [];
  const projectionMs: number[] = [];
  const afterReturnMs: number[] = [];
  for (let i = 1; i <= samples + 50; i++) {
    const seen = new Promise<void>((resolve) => (waiting = { completed: i, resolve }));
    const t0 = performance.now();
    await a.services.jobs.report(viewer, child.id, { completedDelta: 1 });
    const t1 = performance.now();
    await seen;
    const t2 = performance.now();
    waiting = null;
    if (i > 50) {
      reportMs.push(t1 - t0);
      projectionMs.push(t2 - t0);
      afterReturnMs.push(t2 - t1);
    }
    await new Promise((r) => setTimeout(r, gap));
  }
  leave();
  const round = (o: Record<string, number>) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Number(v.toFixed(2))]));
  console.log(JSON.stringify({ samples, partitions: Number(flags.partitions), reportMs: round(summary(reportMs)), reportToProjectionOnOtherInstanceMs: round(summary(projectionMs)), afterReportReturnedMs: round(summary(afterReturnMs)) }, null, 2));
  await a.close(1000);
  await b.close(1000);
  await redis.stop(true);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
