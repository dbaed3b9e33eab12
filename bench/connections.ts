/**
 * Connections and memory benchmark (`npm run bench:connections`): how much a
 * WebSocket connection and a subscription cost the serving instance, and
 * whether every one of them receives its job's events.
 *
 * For each peer (runwatch, and raw forwarding of the Redis bytes, the floor:
 * bench/peers/raw.ts), scenario and permessage-deflate setting it starts a
 * fresh serving instance (on one redis-server of its own, started once), and
 * one or more load-generator processes (bench/connload.ts, at most 10,000
 * connections each) that open the connections and subscriptions with plain
 * `ws` sockets. Then, on the serving instance:
 * 1. memory before any connection (after its jobs exist);
 * 2. after connecting, idle (runwatch: `connection_ack`, so authenticated) —
 *    per connection;
 * 3. after subscribing (every subscription got its first message: runwatch's
 *    SNAPSHOT, raw's `ready`) — per subscription;
 * 4. CPU (% of one core, /proc/<pid>/stat) while events are published straight
 *    to the jobs' Redis channels at `--rate` deliveries per second for
 *    `--seconds`, followed by one more event per job; then every subscription's
 *    count must equal the events published to its job: "received all" is
 *    yes only when it does for every connection;
 * 5. memory after delivery (zlib contexts of permessage-deflate show here).
 * Memory is VmRSS of the serving process after a forced full GC (the peer runs
 * with --expose-gc and bench/lib/mem-probe.ts answers SIGUSR2), plus V8's
 * heapUsed + external from `process.memoryUsage()` at the same moment.
 *
 * Flags (all optional): --scenarios 5k,20k,100k (5,000 × 1; 20,000 × 1;
 * 1,000 connections × 100 subscriptions; also 1m: 10,000 × 100, not run by
 * default) or --connections N
 * --subs-per-connection K for one scenario of your own; --jobs 1000 (at most);
 * --rate 5000 (deliveries per second over all subscriptions); --seconds 10;
 * --deflate off,on; --peers raw,runwatch; --fit-fd-limit (shrink a scenario
 * to the open-files limit instead of stopping); --max-minutes 40;
 * --connect-batch 200 (handshakes at a time per load generator).
 * 127.0.0.1 only. Linux only (/proc). Results: docs/benchmarks.md.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { SCOPES, signToken } from '../src/auth/tokens.js';
import { startRedis, type TestRedis } from '../test/helpers/redis.js';
import type { Command, Reply, WorkerConfig } from './connload.js';
import { benchEvent, BENCH_SECRET as SECRET, cpuSeconds, createJobs, openFilesLimit, peerChannel, start, stop } from './lib/procs.js';

const { values: flags } = parseArgs({
  options: {
    scenarios: { type: 'string', default: '5k,20k,100k' },
    connections: { type: 'string' },
    'subs-per-connection': { type: 'string', default: '1' },
    jobs: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '5000' },
    seconds: { type: 'string', default: '10' },
    deflate: { type: 'string', default: 'off,on' },
    peers: { type: 'string', default: 'raw,runwatch' },
    'fit-fd-limit': { type: 'boolean', default: false },
    'max-minutes': { type: 'string', default: '40' },
    'connect-batch': { type: 'string', default: '200' },
  },
});

type Peer = 'raw' | 'runwatch';
interface Scenario {
  name: string;
  connections: number;
  subsPerConnection: number;
}
const SCENARIOS: Record<string, Scenario> = {
  '5k': { name: '5k', connections: 5000, subsPerConnection: 1 },
  '20k': { name: '20k', connections: 20000, subsPerConnection: 1 },
  '100k': { name: '100k subs', connections: 1000, subsPerConnection: 100 },
  // Issue 20's million: not in the default list (at ~11 KiB of RSS per subscription it needs ~11 GB for the serving instance alone).
  '1m': { name: '1M subs', connections: 10000, subsPerConnection: 100 },
};
const scenarios: Scenario[] = flags.connections
  ? [{ name: 'custom', connections: Number(flags.connections), subsPerConnection: Number(flags['subs-per-connection']) }]
  : flags.scenarios.split(',').map((s) => {
      const scenario = SCENARIOS[s];
      if (!scenario) throw new Error(`unknown scenario ${s} (known: ${Object.keys(SCENARIOS).join(', ')})`);
      return scenario;
    });
const PEERS = flags.peers.split(',') as Peer[];
const DEFLATE = flags.deflate.split(',').map((d) => d === 'on');
const RATE = Number(flags.rate);
const SECONDS = Number(flags.seconds);
/** File descriptors a serving instance uses besides its connections (stdio, epoll, libuv and tsx's loader thread, Redis, listener: 27 measured). */
const FD_OVERHEAD = 40;
const PER_WORKER = 10_000;

/** Memory of the serving instance at one moment: VmRSS (KiB) and V8 heap used + external (bytes), after a forced GC. */
interface Mem {
  rssKiB: number;
  heapBytes: number;
  gc: boolean;
}

interface Row {
  peer: Peer;
  scenario: string;
  deflate: boolean;
  connections: number;
  subscriptions: number;
  rssPerConnection: number;
  rssPerSubscription: number;
  rssPerConnectionAfterDelivery: number;
  heapPerConnection: number;
  heapPerSubscription: number;
  deliveriesPerSecond: number;
  cpuPercent: number;
  receivedAll: boolean;
  connectionsNotAll: number;
  note: string;
}

const children = new Set<ChildProcess>();
let redis: TestRedis | null = null;
function killAll(): void {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  if (redis && redis.pid > 0) {
    try {
      process.kill(redis.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping every process the benchmark started`);
    killAll();
    process.exit(130);
  });
}
const overall = setTimeout(() => {
  console.error(`benchmark still running after --max-minutes ${flags['max-minutes']}: stopping`);
  killAll();
  process.exit(1);
}, Number(flags['max-minutes']) * 60_000);
overall.unref();

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Raises a child's soft open-files limit to the hard one (allowed without privileges), if `prlimit` exists. */
function raiseSoftLimit(pid: number, hard: number): void {
  if (!Number.isFinite(hard)) return;
  spawnSync('prlimit', ['--pid', String(pid), `--nofile=${hard}:${hard}`], { stdio: 'ignore' });
}

/**
 * Checks the open-files limit against what the serving instance needs
 * (connections + overhead); returns the connections to run (fewer only with --fit-fd-limit).
 * Exits with instructions when it does not fit.
 */
function fitConnections(scenario: Scenario): number {
  const { soft, hard } = openFilesLimit();
  const needed = scenario.connections + FD_OVERHEAD;
  if (needed <= hard) {
    if (needed > soft && spawnSync('prlimit', ['--version']).status !== 0) {
      console.error(`The ${scenario.name} scenario needs about ${needed} open files; the soft limit is ${soft} and prlimit is missing: run \`ulimit -n ${hard}\` first.`);
      process.exit(2);
    }
    return scenario.connections;
  }
  const fits = Math.max(0, hard - FD_OVERHEAD);
  const message =
    `The ${scenario.name} scenario needs about ${needed} open files in the serving instance (${scenario.connections} connections + ~${FD_OVERHEAD}), ` +
    `but the open-files limit here is ${soft} (hard ${hard}).\n` +
    `Raise it in the shell that runs the benchmark (as root: \`ulimit -Hn 65536; ulimit -n 65536\`; for a user: \`nofile\` in ` +
    `/etc/security/limits.conf, LimitNOFILE= in a systemd unit, or \`docker run --ulimit nofile=65536:65536\`), ` +
    `or pass --fit-fd-limit to run it with ${fits} connections.`;
  if (!flags['fit-fd-limit']) {
    console.error(message);
    process.exit(2);
  }
  console.error(`${message}\n--fit-fd-limit: running ${scenario.name} with ${fits} connections.`);
  return fits;
}

/** A started serving instance with a memory probe. */
interface Serving {
  child: ChildProcess;
  url: string;
  probe(): Promise<Mem>;
}

async function startServing(peer: Peer, deflate: boolean, redisUrl: string, subsPerConnection: number): Promise<Serving> {
  const probeArgs = ['--import', './bench/lib/mem-probe.ts'];
  const started =
    peer === 'runwatch'
      ? await start([...probeArgs, 'bench/peers/runwatch.ts', ...(deflate ? ['--deflate'] : [])], {
          PORT: '0', HOST: '127.0.0.1', REDIS_URL: redisUrl, RUNWATCH_JWT_SECRET: SECRET, LOG_LEVEL: 'warn',
          RUNWATCH_RATE_LIMIT_PER_SECOND: '0', RUNWATCH_MAX_CONNECTIONS_PER_USER: '1000000',
          RUNWATCH_MAX_SUBSCRIPTIONS_PER_CONNECTION: String(Math.max(100, subsPerConnection)),
        }, ['--expose-gc'])
      : await start([...probeArgs, 'bench/peers/raw.ts', redisUrl, ...(deflate ? ['--deflate'] : [])], {}, ['--expose-gc']);
  children.add(started.child);
  raiseSoftLimit(started.child.pid!, openFilesLimit().hard);
  let buffer = '';
  const waiting: ((mem: Mem) => void)[] = [];
  started.child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (!line.startsWith('mem ')) continue;
      const m = JSON.parse(line.slice(4)) as { rssKiB: number; heapUsed: number; external: number; gc: boolean };
      waiting.shift()?.({ rssKiB: m.rssKiB, heapBytes: m.heapUsed + m.external, gc: m.gc });
    }
  });
  return {
    ...started,
    probe: () =>
      new Promise<Mem>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('memory probe did not answer in 120 s')), 120_000);
        waiting.push((mem) => {
          clearTimeout(timer);
          resolve(mem);
        });
        started.child.kill('SIGUSR2');
      }),
  };
}

/** One load-generator process and a request/reply channel to it. */
class Worker {
  private readonly child: ChildProcess;
  private pending: ((reply: Reply) => void)[] = [];
  constructor() {
    this.child = spawn(process.execPath, ['--import', 'tsx', 'bench/connload.ts'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.add(this.child);
    raiseSoftLimit(this.child.pid!, openFilesLimit().hard);
    this.child.on('message', (reply: Reply) => this.pending.shift()?.(reply));
    this.child.once('exit', (code) => {
      for (const p of this.pending.splice(0)) p({ ok: false, open: 0, live: 0, subsShort: 0, subsOver: 0, connectionsNotAll: 0, received: 0, ended: 0, closed: 0, errors: [`load generator exited ${code}`] });
    });
  }
  send(command: Command): Promise<Reply> {
    return new Promise((resolve) => {
      this.pending.push(resolve);
      this.child.send(command);
    });
  }
  kill(): void {
    if (this.child.exitCode === null) this.child.kill('SIGKILL');
    children.delete(this.child);
  }
}

/** Sends a command to every worker; prints their errors; resolves with the replies. */
async function all(workers: Worker[], command: Command | ((i: number) => Command)): Promise<Reply[]> {
  const replies = await Promise.all(workers.map((w, i) => w.send(typeof command === 'function' ? command(i) : command)));
  for (const reply of replies) for (const error of reply.errors) console.error(`  load generator: ${error}`);
  return replies;
}

const sum = (replies: Reply[], key: 'open' | 'live' | 'received' | 'connectionsNotAll' | 'subsShort' | 'subsOver' | 'ended' | 'closed') => replies.reduce((n, r) => n + r[key], 0);

/** Waits until every job channel has a subscriber in Redis (the serving instance's SUBSCRIBE went through). */
async function channelsSubscribed(redisClient: Redis, peer: Peer, jobIds: string[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const counts = (await redisClient.call('PUBSUB', 'NUMSUB', ...jobIds.map((id) => peerChannel(peer, id)))) as (string | number)[];
    let missing = 0;
    for (let i = 1; i < counts.length; i += 2) if (Number(counts[i]) < 1) missing++;
    if (missing === 0) return true;
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
}

async function runOne(peer: Peer, scenario: Scenario, deflate: boolean, connections: number, redisUrl: string, token: string): Promise<Row> {
  const label = `${peer} ${scenario.name} deflate ${deflate ? 'on' : 'off'}`;
  const subscriptions = connections * scenario.subsPerConnection;
  const jobCount = Math.min(subscriptions, Math.max(scenario.subsPerConnection, Number(flags.jobs)));
  const serving = await startServing(peer, deflate, redisUrl, scenario.subsPerConnection);
  const publisher = new Redis(redisUrl);
  const workers: Worker[] = [];
  try {
    const jobIds = peer === 'runwatch' ? await createJobs(serving.url, token, jobCount, 20) : Array.from({ length: jobCount }, (_, i) => `raw-job-${i}`);
    const slices = Math.ceil(connections / PER_WORKER);
    for (let i = 0; i < slices; i++) workers.push(new Worker());
    const base = await serving.probe();
    const t0 = Date.now();
    const timeoutMs = 60_000 + connections * 10;
    const connected = await all(workers, (i) => {
      const first = i * PER_WORKER;
      const config: WorkerConfig = {
        peer, wsUrl: serving.url.replace(/^http/, 'ws') + (peer === 'raw' ? '/' : '/graphql'), token, jobIds,
        firstConnection: first, connections: Math.min(PER_WORKER, connections - first), subsPerConnection: scenario.subsPerConnection,
        connectBatch: Number(flags['connect-batch']),
      };
      return { cmd: 'connect', config, timeoutMs };
    });
    const open = sum(connected, 'open');
    const fds = readdirSync(`/proc/${serving.child.pid}/fd`).length;
    console.error(`  ${label}: ${open}/${connections} connections open in ${((Date.now() - t0) / 1000).toFixed(1)} s (${fds} file descriptors in use)`);
    const afterConnect = await serving.probe();
    const t1 = Date.now();
    const subscribed = await all(workers, { cmd: 'subscribe', timeoutMs: 60_000 + subscriptions * 2 });
    const live = sum(subscribed, 'live');
    const channelsOk = await channelsSubscribed(publisher, peer, jobIds, 30_000);
    console.error(`  ${label}: ${live}/${subscriptions} subscriptions live in ${((Date.now() - t1) / 1000).toFixed(1)} s${channelsOk ? '' : ' (some job channels have no Redis subscriber!)'}`);
    const afterSubscribe = await serving.probe();

    // Delivery at RATE deliveries/s: events round-robin over the jobs; each reaches subscriptions/jobs subscribers.
    await all(workers, { cmd: 'reset' });
    const eventsPerSecond = (RATE * jobCount) / subscriptions;
    const total = Math.max(1, Math.round(eventsPerSecond * SECONDS));
    const published = jobIds.map(() => 0);
    const offsets = jobIds.map(() => 1000);
    const subsPerJob = jobIds.map(() => 0);
    for (let s = 0; s < subscriptions; s++) subsPerJob[s % jobCount]!++;
    const publishTo = (pipeline: ReturnType<Redis['pipeline']>, job: number) => {
      pipeline.publish(peerChannel(peer, jobIds[job]!), benchEvent(jobIds[job]!, ++offsets[job]!));
      published[job]!++;
    };
    const cpu0 = cpuSeconds(serving.child.pid!);
    const start0 = performance.now();
    let sent = 0;
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - start0) / 1000) * eventsPerSecond));
      if (due > sent) {
        const pipeline = publisher.pipeline();
        for (; sent < due; sent++) publishTo(pipeline, sent % jobCount);
        await pipeline.exec();
      }
      await sleep(5);
    }
    const sendSeconds = (performance.now() - start0) / 1000;
    let windowDeliveries = 0;
    for (let j = 0; j < jobCount; j++) windowDeliveries += published[j]! * subsPerJob[j]!;
    // CPU until the window's events have arrived (a peer that falls behind spends it after the window; it counts).
    const windowReplies = await all(workers, { cmd: 'await', expectedPerJob: published.slice(), timeoutMs: 60_000, quietMs: 5000 });
    const delivered = sum(windowReplies, 'received');
    const cpuSecondsUsed = cpuSeconds(serving.child.pid!) - cpu0;
    const wallSeconds = (performance.now() - start0) / 1000;
    // One more event per job, so every subscription must have received at least one event to count as "received all".
    const pipeline = publisher.pipeline();
    for (let j = 0; j < jobCount; j++) publishTo(pipeline, j);
    await pipeline.exec();
    const final = await all(workers, { cmd: 'await', expectedPerJob: published, timeoutMs: 60_000, quietMs: 5000 });
    const notAll = sum(final, 'connectionsNotAll'); // connections that never opened count too: their subscriptions got nothing
    const receivedAll = notAll === 0 && final.every((r) => r.ok) && live === subscriptions;
    console.error(
      `  ${label}: ${Math.round(delivered / sendSeconds)} deliveries/s (of ${Math.round(windowDeliveries / sendSeconds)} intended) for ${sendSeconds.toFixed(1)} s, CPU ${((cpuSecondsUsed / wallSeconds) * 100).toFixed(0)} %; ` +
        `connections that did not receive all: ${notAll} (subscriptions short ${sum(final, 'subsShort')}, over ${sum(final, 'subsOver')}; ` +
        `ended by the server ${sum(final, 'ended')}, connections closed by it ${sum(final, 'closed')})`,
    );
    const afterDelivery = await serving.probe();
    const gcNote = base.gc ? '' : 'no forced GC';
    return {
      peer, scenario: scenario.name, deflate, connections, subscriptions,
      rssPerConnection: (afterConnect.rssKiB - base.rssKiB) / connections,
      rssPerSubscription: (afterSubscribe.rssKiB - afterConnect.rssKiB) / subscriptions,
      rssPerConnectionAfterDelivery: (afterDelivery.rssKiB - base.rssKiB) / connections,
      heapPerConnection: (afterConnect.heapBytes - base.heapBytes) / 1024 / connections,
      heapPerSubscription: (afterSubscribe.heapBytes - afterConnect.heapBytes) / 1024 / subscriptions,
      deliveriesPerSecond: delivered / sendSeconds,
      // CPU over the send window plus the wait for the last deliveries.
      cpuPercent: (cpuSecondsUsed / wallSeconds) * 100,
      receivedAll, connectionsNotAll: notAll,
      note: gcNote,
    };
  } finally {
    // The server first: its side of each TCP connection takes the TIME_WAIT, not the load generator's ports.
    // With BENCH_CPU_PROF, stop() ends it with SIGTERM so that it writes its CPU profile (else SIGKILL, as before).
    await stop(serving.child);
    children.delete(serving.child);
    for (const w of workers) w.kill();
    publisher.disconnect();
  }
}

const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '-');

async function main() {
  const plan = scenarios.map((s) => ({ scenario: s, connections: fitConnections(s) }));
  redis = await startRedis();
  const token = await signToken(SECRET, { sub: 'bench', inst: 'bench', scope: SCOPES.join(' ') }, 6 * 3600);
  const rows: Row[] = [];
  for (const { scenario, connections } of plan) {
    for (const deflate of DEFLATE) {
      for (const peer of PEERS) {
        try {
          rows.push(await runOne(peer, scenario, deflate, connections, redis.url, token));
        } catch (error) {
          console.error(`  ${peer} ${scenario.name}: failed: ${error instanceof Error ? error.message : error}`);
        }
        await sleep(2000); // let the kernel reap the closed sockets before the next instance
      }
    }
  }
  await redis.stop();
  console.log(
    `\n${RATE} deliveries/s for ${SECONDS} s per run (events published straight to the jobs' Redis channels, at most ${flags.jobs} jobs); ` +
      `memory: VmRSS of the serving instance after a forced GC; heap: V8 heapUsed + external\n`,
  );
  console.log(
    '| peer | scenario | deflate | connections | subscriptions | RSS KiB/connection (idle) | RSS KiB/subscription | RSS KiB/connection after delivery | heap KiB/connection | heap KiB/subscription | deliveries/s | CPU % | received all |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of rows) {
    console.log(
      `| ${r.peer} | ${r.scenario} | ${r.deflate ? 'on' : 'off'} | ${r.connections} | ${r.subscriptions} | ${fmt(r.rssPerConnection)} | ${fmt(r.rssPerSubscription, 2)} | ` +
        `${fmt(r.rssPerConnectionAfterDelivery)} | ${fmt(r.heapPerConnection)} | ${fmt(r.heapPerSubscription, 2)} | ${Math.round(r.deliveriesPerSecond)} | ` +
        `${fmt(r.cpuPercent, 0)} | ${r.receivedAll ? 'yes' : `no (${r.connectionsNotAll} connections)`}${r.note ? ` (${r.note})` : ''} |`,
    );
  }
  process.exit(rows.length === plan.length * DEFLATE.length * PEERS.length ? 0 : 1);
}

main().catch((error) => {
  console.error(error);
  killAll();
  process.exit(1);
});
