/**
 * Closed-loop fan-out benchmark: server CPU per delivered event (the side-by-side
 * benchmark with latency and saturation is bench/fanout.ts).
 *
 * One job channel, N WebSocket subscribers, E events published straight to
 * the job's Redis channel (so only delivery is measured, not reporting).
 * For each server under test, the CPU time (user + system, from
 * /proc/<pid>/stat) it spends while delivering E × N messages, divided by
 * E × N. Servers:
 * - raw:      bytes forwarded as received (bench/peers/raw.ts) — the floor;
 * - naive:    graphql-ws + graphql-js + RedisPubSub.asyncIterator (bench/peers/recipe.ts);
 * - runwatch: `src/main.ts` on Redis.
 * Events are published in batches of 100, each after every client got the
 * previous batch, so no server conflates or buffers.
 *
 * Run by hand (needs redis-server): `npx tsx bench/cpu-per-delivery.ts [subscribers=100] [events=2000] [servers=raw,naive,runwatch]`
 * (raw always runs: it is the floor the others are divided by).
 * With BENCH_PROFILE=<dir>, the runwatch server writes a V8 CPU profile there.
 * Results are recorded in docs/benchmarks.md.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createClient } from 'graphql-ws';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { SCOPES, signToken } from '../src/auth/tokens.js';
import { startRedis } from '../test/helpers/redis.js';
import { benchEvent, BENCH_SECRET as SECRET, cpuSeconds, peerChannel } from './lib/procs.js';

const SUBSCRIBERS = Number(process.argv[2] ?? 100);
const EVENTS = Number(process.argv[3] ?? 2000);
const SERVERS = (process.argv[4] ?? 'raw,naive,runwatch').split(',');
const BATCH = 100;
const QUERY = `subscription($runId: ID!) { runProgress(runId: $runId) { cursor type timestamp job { id status completed total percent rate etaSeconds stage } } }`;

function start(args: string[], env: Record<string, string> = {}): Promise<{ child: ChildProcess; line: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n').find((l) => /listening \d+|runwatch is running at/.test(l));
      if (line) resolve({ child, line });
    });
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}: ${out}`)));
  });
}

/** Counts messages per client; resolves `until(n)` when every client has n. */
class Counter {
  counts: number[] = [];
  private waiters: { n: number; resolve: () => void }[] = [];
  /** Counts from here on (stragglers of warm-up events may still arrive: at most a few per client). */
  rebase() {
    this.counts = this.counts.map(() => 0);
  }
  add(i: number) {
    this.counts[i] = (this.counts[i] ?? 0) + 1;
    this.waiters = this.waiters.filter((w) => (this.min() >= w.n ? (w.resolve(), false) : true));
  }
  min() {
    let m = Infinity;
    for (let i = 0; i < SUBSCRIBERS; i++) m = Math.min(m, this.counts[i] ?? 0);
    return m;
  }
  until(n: number) {
    return this.min() >= n ? Promise.resolve() : new Promise<void>((resolve) => this.waiters.push({ n, resolve }));
  }
}

/** Publishes warm-up events until every client got one (subscriptions are live); returns the count each has. */
async function warmUp(redis: Redis, channel: string, runId: string, counter: Counter): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    await redis.publish(channel, benchEvent(runId, 1));
    const got = await Promise.race([counter.until(1).then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 200))]);
    if (got) {
      await new Promise((r) => setTimeout(r, 300)); // let stragglers of the last warm-up arrive
      counter.rebase();
      return 0;
    }
  }
  throw new Error('subscriptions did not become live');
}

async function measure(name: string, pid: number, channel: string, redis: Redis, runId: string, counter: Counter, base: number) {
  const before = cpuSeconds(pid);
  const t0 = process.hrtime.bigint();
  for (let sent = 0; sent < EVENTS; sent += BATCH) {
    const pipeline = redis.pipeline();
    for (let i = 1; i <= BATCH; i++) pipeline.publish(channel, benchEvent(runId, 1_000 + sent + i));
    await pipeline.exec();
    await counter.until(base + sent + BATCH);
  }
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = cpuSeconds(pid) - before;
  const delivered = EVENTS * SUBSCRIBERS;
  const row = { server: name, subscribers: SUBSCRIBERS, events: EVENTS, delivered, cpuSeconds: cpu, cpuMicrosPerDelivery: (cpu * 1e6) / delivered, wallMs: Math.round(wallMs) };
  console.log(JSON.stringify(row));
  return row;
}

async function main() {
  const redisServer = await startRedis();
  const redis = new Redis(redisServer.url);
  const children: ChildProcess[] = [];
  const rows = [];
  try {
    // raw
    {
      const channel = 'runwatch:job:raw';
      const { child, line } = await start(['bench/peers/raw.ts', redisServer.url]);
      children.push(child);
      const port = Number(/listening (\d+)/.exec(line)![1]);
      const counter = new Counter();
      await Promise.all(
        Array.from({ length: SUBSCRIBERS }, (_, i) => new Promise<void>((resolve) => {
          const socket = new WebSocket(`ws://127.0.0.1:${port}`);
          socket.on('open', () => { socket.send('raw'); resolve(); }); // listens to runwatch:job:raw
          socket.on('message', (data) => {
            if (String(data) !== '{"ready":true}') counter.add(i); // the peer's registration answer is not an event
          });
        })),
      );
      const base = await warmUp(redis, channel, 'raw', counter);
      rows.push(await measure('raw', child.pid!, channel, redis, 'raw', counter, base));
      child.kill('SIGKILL');
    }
    // naive and runwatch use graphql-ws clients
    for (const name of (['naive', 'runwatch'] as const).filter((n) => SERVERS.includes(n))) {
      let url: string;
      let child: ChildProcess;
      let runId = 'naive';
      const token = await signToken(SECRET, { sub: 'bench', scope: SCOPES.join(' ') }, 3600);
      if (name === 'naive') {
        const started = await start(['bench/peers/recipe.ts', redisServer.url]);
        child = started.child;
        url = `ws://127.0.0.1:${/listening (\d+)/.exec(started.line)![1]}/graphql`;
      } else {
        const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
        const started = await start([...profile, 'src/main.ts'], { PORT: '0', REDIS_URL: redisServer.url, RUNWATCH_JWT_SECRET: SECRET, LOG_LEVEL: 'warn', RUNWATCH_SUBSCRIBER_QUEUE: '1000000', RUNWATCH_MAX_CONNECTIONS_PER_USER: '100000' });
        child = started.child;
        const httpUrl = /running at (\S+)/.exec(started.line)![1]!;
        url = httpUrl.replace(/^http/, 'ws');
        const res = await fetch(httpUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ query: 'mutation { createBatchJob(input: { name: "bench", total: 1000000 }) { id } }' }),
        });
        runId = ((await res.json()) as any).data.createBatchJob.id;
      }
      children.push(child);
      const counter = new Counter();
      const clients = Array.from({ length: SUBSCRIBERS }, () =>
        createClient({ url, webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${token}` }, retryAttempts: 0 }),
      );
      // runwatch sends a SNAPSHOT first; naive sends nothing until an event.
      clients.forEach((client, i) => client.subscribe({ query: QUERY, variables: { runId } }, { next: () => counter.add(i), error: (e) => console.error(e), complete: () => {} }));
      let base = 0;
      // runwatch's channels carry a hash tag; the baselines (naive, recipe, raw) use the plain name.
      const channel = peerChannel(name, runId);
      if (name === 'runwatch') {
        await counter.until(1); // the SNAPSHOT
        counter.rebase();
      } else {
        base = await warmUp(redis, channel, runId, counter);
      }
      rows.push(await measure(name, child.pid!, channel, redis, runId, counter, base));
      await Promise.all(clients.map((c) => c.dispose()));
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM'); // lets --cpu-prof write its profile
      await exited;
    }
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    redis.disconnect();
    await redisServer.stop();
  }
  const raw = rows.find((r) => r.server === 'raw')!.cpuMicrosPerDelivery;
  console.log('\n| server | subscribers | events | CPU µs per delivered event | × raw |\n| --- | --- | --- | --- | --- |');
  for (const r of rows) console.log(`| ${r.server} | ${r.subscribers} | ${r.events} | ${r.cpuMicrosPerDelivery.toFixed(2)} | ${(r.cpuMicrosPerDelivery / raw).toFixed(2)} |`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
