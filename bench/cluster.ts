/**
 * runwatch on one Redis vs a 3-master Redis Cluster on this machine
 * (`npm run bench:cluster`; issue 21), in two parts (`--mode e2e|redis|both`, default both):
 *
 * **e2e**: runwatch's own backends (src/backends/redis.ts: createRedisBackend
 * and createRedisClusterBackend), two per target as two instances would have —
 * A commits reports, B subscribes to every job's topic through its event bus
 * (one SUBSCRIBE / SSUBSCRIBE per channel) — both in this process, no GraphQL
 * (which would saturate this process long before Redis). A closed loop of
 * `--inflight` reports (`store.update` with `applyProgress(completedDelta: 1)`,
 * no conflation: each report is one PROGRESS event) over `--jobs` jobs; each
 * commit is the real one (compare-and-set script: record, history, change log,
 * (S)PUBLISH). Measured: committed reports/s, events/s delivered to B (every
 * one must arrive: "lost"), each Redis process's CPU, and Redis CPU per report.
 *
 * **redis**: the Redis side alone, no runwatch instance involved: what Redis can take. It starts one redis-server and one 3-master
 * cluster (test/helpers/redis-cluster.ts), and against each drives, from this
 * process, a bounded closed-loop load of commits shaped like the topic-log
 * commit script (src/backends/redis-log.ts): per commit one EVALSHA that bumps
 * the record's version, stores its data, XADDs the event to the job's history
 * stream (MAXLEN ~ 1000) and PUBLISHes it (one Redis) or SPUBLISHes it (the
 * cluster) — keys and channel of a job share the hash tag `{<jobId>}`, so on
 * the cluster each commit runs on the master owning that job's slot. A
 * subscriber connection per target (SUBSCRIBE; on the cluster, one SSUBSCRIBE
 * per channel per shard through src/backends/redis-sharded-channels.ts)
 * counts deliveries, so "nothing lost" is checked.
 *
 * Measured over `--seconds` after a `--warmup`: commits per second, deliveries
 * per second, and every Redis process's CPU (user + system from
 * /proc/<pid>/stat, as a share of one core). `ceiling` = commits/s ÷ the
 * busiest Redis process's core share: the commit rate at which that process
 * would saturate one core, i.e. the Redis-side headroom; and the Redis CPU per
 * commit summed over all processes (what sharding costs in total). CPU time
 * per commit stays meaningful on a busy machine, rates do not: the load
 * average is printed with the results. On a 2-core machine the load generator
 * itself (Node, this process) saturates before three Redis processes can; its
 * CPU is printed too.
 *
 * Flags: --mode both --jobs 3000 (distinct jobs / channels; e2e: at most 1000)
 * --inflight 2000 (commits in flight, pipelined by ioredis' auto-pipelining)
 * --seconds 8 --warmup 2. Bounded: about 60 s in all; loopback only. Results:
 * docs/benchmarks.md.
 */
import { availableParallelism, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { RedisChannels } from '../src/backends/redis-channels.js';
import { RedisShardedChannels } from '../src/backends/redis-sharded-channels.js';
import { createRedisBackend, createRedisClusterBackend } from '../src/backends/redis.js';
import type { Backend } from '../src/backends/types.js';
import { applyProgress, createJob } from '../src/domain/job.js';
import { startRedisCluster } from '../test/helpers/redis-cluster.js';
import { startRedis } from '../test/helpers/redis.js';
import { cpuSeconds } from './lib/procs.js';

const { values: flags } = parseArgs({
  options: {
    mode: { type: 'string', default: 'both' },
    jobs: { type: 'string', default: '3000' },
    inflight: { type: 'string', default: '2000' },
    seconds: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '2' },
  },
});
const JOBS = Number(flags.jobs);
const INFLIGHT = Number(flags.inflight);
const SECONDS = Number(flags.seconds);
const WARMUP = Number(flags.warmup);

// KEYS: 1 record hash, 2 history stream, 3 channel. ARGV: 1 event JSON, 2 'PUBLISH' or 'SPUBLISH'.
const COMMIT_LUA = `
local v = redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('HSET', KEYS[1], 'data', ARGV[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', 1000, '*', 'e', ARGV[1])
redis.call(ARGV[2], KEYS[3], ARGV[1])
return v
`;

type Committer = { benchCommit(record: string, events: string, channel: string, event: string, publish: string): Promise<number> };

const job = (i: number) => `bench-${i}`;
const keysOf = (i: number) => [`runwatch:{${job(i)}}`, `runwatch:{${job(i)}}:events`, `runwatch:{${job(i)}}:ch`] as const;

interface Result {
  target: string;
  commitsPerSecond: number;
  deliveredPerSecond: number;
  lost: number;
  redisCpu: Array<{ pid: number; coreShare: number }>;
  loadgenCoreShare: number;
}

/** Runs the closed loop on `client` for warmup + seconds; counts deliveries through `delivered()`. */
async function drive(target: string, client: Committer, publish: string, pids: number[], delivered: () => number): Promise<Result> {
  let committed = 0;
  let stopAt = Date.now() + (WARMUP + SECONDS) * 1000;
  let next = 0;
  const worker = async () => {
    while (Date.now() < stopAt) {
      const i = next++ % JOBS;
      const [record, events, channel] = keysOf(i);
      await client.benchCommit(record, events, channel, `{"offset":${committed},"t":${Date.now()}}`, publish);
      committed++;
    }
  };
  const workers = Array.from({ length: INFLIGHT }, worker);
  await new Promise((r) => setTimeout(r, WARMUP * 1000));
  const c0 = committed;
  const d0 = delivered();
  const cpu0 = pids.map(cpuSeconds);
  const self0 = process.cpuUsage();
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const seconds = (Date.now() - t0) / 1000;
  const c1 = committed;
  const d1 = delivered();
  const cpu1 = pids.map(cpuSeconds);
  const self = process.cpuUsage(self0);
  stopAt = 0;
  await Promise.all(workers);
  // Every commit's message must arrive (the subscriber may trail the last commits by a moment).
  const deadline = Date.now() + 5000;
  while (delivered() < committed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return {
    target,
    commitsPerSecond: (c1 - c0) / seconds,
    deliveredPerSecond: (d1 - d0) / seconds,
    lost: committed - delivered(),
    redisCpu: pids.map((pid, k) => ({ pid, coreShare: (cpu1[k]! - cpu0[k]!) / seconds })),
    loadgenCoreShare: (self.user + self.system) / 1e6 / seconds,
  };
}

async function single(): Promise<Result> {
  const redis = await startRedis();
  const client = new Redis(redis.url, { enableAutoPipelining: true });
  const subscriber = new Redis(redis.url, { autoResubscribe: false });
  try {
    client.defineCommand('benchCommit', { numberOfKeys: 3, lua: COMMIT_LUA });
    let delivered = 0;
    const channels = new RedisChannels(subscriber, { onLost() {}, onResubscribed() {}, onError() {} });
    await new Promise<void>((resolve) => (subscriber.status === 'ready' ? resolve() : subscriber.once('ready', () => resolve())));
    for (let i = 0; i < JOBS; i++) await channels.subscribe(keysOf(i)[2], () => delivered++);
    return await drive('1 Redis (EVALSHA + PUBLISH)', client as unknown as Committer, 'PUBLISH', [redis.pid], () => delivered);
  } finally {
    client.disconnect();
    subscriber.disconnect();
    await redis.stop(true);
  }
}

async function cluster(): Promise<Result> {
  const nodes = await startRedisCluster({ masters: 3 });
  const client = new Cluster(nodes.seeds, { enableAutoPipelining: true });
  const commands = new Cluster(nodes.seeds);
  let channels: RedisShardedChannels | undefined;
  try {
    client.defineCommand('benchCommit', { numberOfKeys: 3, lua: COMMIT_LUA });
    await Promise.all([client, commands].map((c) => new Promise<void>((resolve) => c.once('ready', () => resolve()))));
    let delivered = 0;
    channels = new RedisShardedChannels(commands, { onLost() {}, onResubscribed() {}, onError() {} });
    for (let i = 0; i < JOBS; i++) await channels.subscribe(keysOf(i)[2], () => delivered++);
    return await drive('3-master cluster (EVALSHA + SPUBLISH)', client as unknown as Committer, 'SPUBLISH', nodes.nodes.map((n) => n.pid), () => delivered);
  } finally {
    channels?.close();
    client.disconnect();
    commands.disconnect();
    await nodes.stop();
  }
}

/**
 * The e2e loop (see the header) on backends `a` (reports) and `b` (subscriptions) for warmup + seconds.
 * Jobs are created first and subscribed on B; every report's event must reach B.
 */
async function driveBackends(target: string, a: Backend, b: Backend, pids: number[]): Promise<Result> {
  const jobs = Math.min(JOBS, 1000);
  const tenant = { institute: `bench-${Date.now()}`, environment: 'default' };
  const ids: string[] = [];
  let delivered = 0;
  const leave: (() => void)[] = [];
  for (let i = 0; i < jobs; i++) {
    const job = createJob({ kind: 'BATCH', name: `bench ${i}` }, { id: `bench-${Date.now()}-${i}`, epoch: 'bench', tenant, ownerId: 'bench' }, Date.now());
    await a.store.create(job);
    ids.push(job.id);
    leave.push(await b.bus.subscribe(`job:${job.id}`, () => delivered++));
  }
  let committed = 0;
  let stopAt = Date.now() + (WARMUP + SECONDS) * 1000;
  let next = 0;
  const worker = async () => {
    while (Date.now() < stopAt) {
      const id = ids[next++ % jobs]!;
      const change = await a.store.update(id, (job) => applyProgress(job, { completedDelta: 1 }, Date.now(), 0));
      committed += change?.events.length ?? 0;
    }
  };
  const workers = Array.from({ length: Math.min(INFLIGHT, 4 * jobs) }, worker);
  await new Promise((r) => setTimeout(r, WARMUP * 1000));
  const c0 = committed;
  const d0 = delivered;
  const cpu0 = pids.map(cpuSeconds);
  const self0 = process.cpuUsage();
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const seconds = (Date.now() - t0) / 1000;
  const [c1, d1] = [committed, delivered];
  const cpu1 = pids.map(cpuSeconds);
  const self = process.cpuUsage(self0);
  stopAt = 0;
  await Promise.all(workers);
  const deadline = Date.now() + 10_000;
  while (delivered < committed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  for (const off of leave) off();
  return {
    target,
    commitsPerSecond: (c1 - c0) / seconds,
    deliveredPerSecond: (d1 - d0) / seconds,
    lost: committed - delivered,
    redisCpu: pids.map((pid, k) => ({ pid, coreShare: (cpu1[k]! - cpu0[k]!) / seconds })),
    loadgenCoreShare: (self.user + self.system) / 1e6 / seconds,
  };
}

async function e2eSingle(): Promise<Result> {
  const redis = await startRedis();
  const opts = { url: redis.url, historySize: 1000, onError: () => {} };
  const [a, b] = [await createRedisBackend(opts), await createRedisBackend(opts)];
  try {
    return await driveBackends('runwatch backends on 1 Redis', a, b, [redis.pid]);
  } finally {
    await a.close();
    await b.close();
    await redis.stop(true);
  }
}

async function e2eCluster(): Promise<Result> {
  const nodes = await startRedisCluster({ masters: 3 });
  const opts = { nodes: nodes.seeds, historySize: 1000, onError: () => {} };
  const [a, b] = [await createRedisClusterBackend(opts), await createRedisClusterBackend(opts)];
  try {
    return await driveBackends('runwatch backends on a 3-master cluster', a, b, nodes.nodes.map((n) => n.pid));
  } finally {
    await a.close();
    await b.close();
    await nodes.stop();
  }
}

const pct = (share: number) => `${(share * 100).toFixed(1)} %`;
const int = (n: number) => Math.round(n).toLocaleString('en-US');

async function main() {
  const started = Date.now();
  const mode = flags.mode;
  if (!['e2e', 'redis', 'both'].includes(mode)) throw new Error(`--mode must be e2e, redis or both, not ${mode}`);
  const results: Result[] = [];
  if (mode !== 'redis') results.push(await e2eSingle(), await e2eCluster());
  if (mode !== 'e2e') results.push(await single(), await cluster());
  console.log(`\nbench:cluster --mode ${mode} --jobs ${JOBS} --inflight ${INFLIGHT} --seconds ${SECONDS} --warmup ${WARMUP} (${Math.round((Date.now() - started) / 1000)} s in all)\n`);
  console.log(`load average at the end: ${loadavg().map((l) => l.toFixed(1)).join(', ')} on ${availableParallelism()} cores\n`);
  console.log(
    '| target | commits/s | delivered/s | lost | CPU per Redis process (share of one core) | Redis CPU per commit, all processes (µs) | ceiling: commits/s when the busiest process saturates one core | load generator CPU |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of results) {
    const busiest = Math.max(...r.redisCpu.map((c) => c.coreShare));
    const total = r.redisCpu.reduce((sum, c) => sum + c.coreShare, 0);
    console.log(
      `| ${r.target} | ${int(r.commitsPerSecond)} | ${int(r.deliveredPerSecond)} | ${r.lost} | ${r.redisCpu.map((c) => pct(c.coreShare)).join(', ')} | ${((total / r.commitsPerSecond) * 1e6).toFixed(1)} | ${int(r.commitsPerSecond / busiest)} | ${pct(r.loadgenCoreShare)} |`,
    );
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
