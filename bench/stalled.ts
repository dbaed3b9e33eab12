/**
 * A subscriber that stops reading: what it costs the serving instance, and how
 * long its socket outlives the drop. `npm run bench:stalled`.
 *
 * One serving process on a redis-server of its own; one job; two WebSocket
 * subscribers of it: a healthy one that counts, and a stalled one that stops
 * reading (its TCP socket paused) after its first message and never reads
 * again. Then `--events` events of about `--kib` KiB each (default 3,000 of
 * 18 KiB) are published straight to the job's Redis channel over `--seconds` (9).
 *
 * Peers (`--peers`, default `raw,runwatch`; runs alternate between them):
 * - `runwatch`: bench/peers/runwatch.ts of this checkout, graphql-transport-ws
 *   spoken by hand over `ws`;
 * - `base=<dir>`: the same from another checkout at `<dir>` (e.g. the branch's
 *   base commit, `git archive <commit> | tar -x -C <dir>` with a node_modules
 *   link), for before/after in one run;
 * - `raw`: the floor, bench/peers/raw.ts — one ioredis subscriber writing each
 *   message's bytes as received to both sockets, with the same bound on the
 *   stalled one: past `--queue` events' bytes (runwatch's RUNWATCH_SUBSCRIBER_QUEUE,
 *   default 1,000) plus 64 KiB (runwatch's socket bound) unsent, it is closed
 *   4008 and terminated 3 s later.
 * A peer may carry node flags of its own after a colon, comma-separated
 * (`runwatch:--max-semi-space-size=2`), to compare V8 settings in one run.
 *
 * Reported: the process's RSS (VmRSS, sampled every 50 ms) before publishing,
 * at its peak and at the end (after a forced GC: the process runs with
 * bench/lib/mem-probe.ts), and V8's heapUsed + external after GC; when the
 * stalled subscriber was dropped and when its socket was gone (runwatch:
 * `runwatch_events_dropped_total` rose, `runwatch_connections_open{transport="ws"}`
 * fell to 1; raw: it prints `dropped` and `gone`), in seconds after publishing
 * began; and whether the healthy subscriber got every event.
 *
 * Flags: --events N, --kib K, --seconds S, --runs R (default 1), --peers LIST,
 * --queue N (default 1000), --no-stall (the baseline: both subscribers read).
 * Extra node flags for the serving process: BENCH_NODE_ARGS (space-separated,
 * e.g. `--max-semi-space-size=2`).
 */
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { SCOPES, signToken } from '../src/auth/tokens.js';
import { startRedis } from '../test/helpers/redis.js';
import { BENCH_SECRET as SECRET, createJobs, jobChannel, rssKiB, start, stop } from './lib/procs.js';
import type { ChildProcess } from 'node:child_process';
import { loadavg } from 'node:os';

const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const EVENTS = arg('events', 3000);
const KIB = arg('kib', 18);
const SECONDS = arg('seconds', 9);
const RUNS = arg('runs', 1);
const QUEUE = arg('queue', 1000);
const peersAt = process.argv.indexOf('--peers');
const PEERS = (peersAt >= 0 ? process.argv[peersAt + 1]! : 'raw,runwatch').split(',');
const NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
/** --no-stall: both subscribers read (the baseline the stalled one is compared with). */
const STALL = !process.argv.includes('--no-stall');
const WATCH = `subscription($runId: ID!) { runProgress(runId: $runId) { cursor type message job { completed stage metadata } } }`;

/** A STAGE event at `offset` with a message of about `kib` KiB, as runwatch's Redis backend publishes it. */
function bigEvent(runId: string, offset: number, filler: string): string {
  const job = {
    id: runId, kind: 'BATCH', name: 'bench', status: 'RUNNING', total: 1_000_000, completed: offset, failed: 0,
    percent: 0, rate: 1, etaSeconds: 1, stage: `stage-${offset}`, message: null, errorMessage: null,
    metadata: null, resources: null, createdAt: 1, startedAt: 2, finishedAt: null, updatedAt: 3, lastCursor: `bench.${offset}`,
  };
  return JSON.stringify({
    cursor: `bench.${offset}`, offset, runId, type: 'STAGE', timestamp: Date.now(), job, message: `${offset} ${filler}`,
    owner: { tenant: { institute: 'bench', environment: 'default' }, userId: 'bench' },
  });
}

/** Opens a graphql-transport-ws subscription; resolves after its first `next` with the socket and a counter. */
async function subscribe(url: string, token: string, runId: string) {
  const ws = new WebSocket(url.replace(/^http/, 'ws') + '/graphql', 'graphql-transport-ws');
  const state = { ws, next: 0, closed: null as number | null };
  const first = new Promise<void>((resolve, reject) => {
    ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } })));
    ws.on('message', (raw) => {
      const msg = JSON.parse(String(raw));
      if (msg.type === 'connection_ack') ws.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: WATCH, variables: { runId } } }));
      else if (msg.type === 'next') {
        state.next++;
        resolve();
      } else if (msg.type === 'error') reject(new Error(JSON.stringify(msg.payload)));
    });
    ws.on('error', () => {});
    ws.on('close', (code) => {
      state.closed = code;
      reject(new Error(`closed ${code}`));
    });
  });
  await Promise.race([first, new Promise((_, reject) => setTimeout(() => reject(new Error('no first event in 10 s')), 10_000))]);
  return state;
}

async function metric(url: string, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(pattern.exec(text)?.[1] ?? 0);
}


/** Subscribes to raw forwarding (bench/peers/raw.ts): sends the run id, counts every message after `{"ready":true}`. */
async function subscribeRaw(url: string, runId: string) {
  const ws = new WebSocket(url.replace(/^http/, 'ws'));
  const state = { ws, next: 0, closed: null as number | null };
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('raw peer: no ready in 10 s')), 10_000);
    ws.on('open', () => ws.send(runId));
    ws.on('message', (raw) => {
      if (String(raw) === '{"ready":true}') {
        clearTimeout(timer);
        resolve();
      } else state.next++;
    });
    ws.on('error', () => {});
    ws.on('close', (code) => {
      state.closed = code;
      reject(new Error(`closed ${code}`));
    });
  });
  return state;
}

/** A serving process under test: its subscribers, where to publish, and how it tells a drop and a socket gone. */
interface Served {
  child: ChildProcess;
  channel: string;
  healthy: { ws: WebSocket; next: number };
  stalled: { ws: WebSocket; next: number };
  /** Events the healthy subscriber gets besides the published ones (runwatch: the SNAPSHOT). */
  extra: number;
  /** Called every 50 ms while publishing: whether the stalled subscriber has been dropped, and its socket closed. */
  poll(): Promise<{ dropped: boolean; gone: boolean }>;
}

/** Starts `peer` (see the file comment) with the memory probe and subscribes both clients. */
async function serve(spec: string, redisUrl: string, token: string, eventBytes: number): Promise<Served> {
  const probe = ['--import', './bench/lib/mem-probe.ts'];
  const colon = spec.indexOf(':');
  const peer = colon < 0 ? spec : spec.slice(0, colon);
  const nodeArgs = ['--expose-gc', ...NODE_ARGS, ...(colon < 0 ? [] : spec.slice(colon + 1).split(','))];
  if (peer === 'raw') {
    const dropAbove = QUEUE * eventBytes + 64 * 1024;
    const { child, url } = await start([...probe, 'bench/peers/raw.ts', redisUrl, '--drop-above', String(dropAbove)], {}, nodeArgs);
    const seen = { dropped: false, gone: false };
    child.stdout!.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      if (/^dropped$/m.test(text)) seen.dropped = true;
      if (/^gone$/m.test(text)) seen.gone = true;
    });
    const runId = 'bench-stalled';
    const healthy = await subscribeRaw(url, runId);
    const stalled = await subscribeRaw(url, runId);
    return { child, channel: `runwatch:job:${runId}`, healthy, stalled, extra: 0, poll: async () => seen };
  }
  const dir = peer === 'runwatch' ? '.' : peer.replace(/^base=/, '');
  const { child, url } = await start([...probe, `${dir}/bench/peers/runwatch.ts`], {
    PORT: '0', HOST: '127.0.0.1', REDIS_URL: redisUrl, RUNWATCH_JWT_SECRET: SECRET, LOG_LEVEL: 'warn', RUNWATCH_RATE_LIMIT_PER_SECOND: '0',
    RUNWATCH_SUBSCRIBER_QUEUE: String(QUEUE),
  }, nodeArgs);
  const [runId] = await createJobs(url, token, 1);
  const healthy = await subscribe(url, token, runId!);
  const stalled = await subscribe(url, token, runId!);
  const droppedBase = await metric(url, /runwatch_events_dropped_total\{reason="slow_consumer"\} (\d+)/);
  let dropped = false;
  return {
    child, channel: jobChannel(runId!), healthy, stalled, extra: 1,
    poll: async () => {
      dropped ||= (await metric(url, /runwatch_events_dropped_total\{reason="slow_consumer"\} (\d+)/)) > droppedBase;
      const gone = dropped && (await metric(url, /runwatch_connections_open\{transport="ws"\} (\d+)/)) <= 1;
      return { dropped, gone };
    },
  };
}

async function runOnce(peer: string, redisUrl: string, token: string) {
  const filler = 'x'.repeat(KIB * 1024 - 700);
  const eventBytes = Buffer.byteLength(bigEvent('bench-stalled', 1000, filler));
  const served = await serve(peer, redisUrl, token, eventBytes);
  const { child, healthy, stalled } = served;
  let probe = '';
  const probed: ((mem: { rss: number; heap: number }) => void)[] = [];
  child.stdout!.on('data', (chunk: Buffer) => {
    probe += chunk.toString();
    for (let nl = probe.indexOf('\n'); nl >= 0; nl = probe.indexOf('\n')) {
      const line = probe.slice(0, nl);
      probe = probe.slice(nl + 1);
      if (!line.startsWith('mem ')) continue;
      const mem = JSON.parse(line.slice(4)) as { rssKiB: number; heapUsed: number; external: number };
      probed.shift()?.({ rss: mem.rssKiB, heap: (mem.heapUsed + mem.external) / 1024 });
    }
  });
  const gcMem = () => new Promise<{ rss: number; heap: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no memory probe answer in 20 s')), 20_000);
    probed.push((mem) => {
      clearTimeout(timer);
      resolve(mem);
    });
    child.kill('SIGUSR2');
  });
  const publisher = new Redis(redisUrl);
  try {
    if (STALL) (stalled.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const before = await gcMem();
    let peak = before.rss;
    let droppedAt: number | null = null;
    let goneAt: number | null = null;
    const t0 = Date.now();
    let polling = false;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssKiB(child.pid!));
      if (polling || goneAt !== null) return;
      polling = true;
      void served.poll().then(({ dropped, gone }) => {
        if (dropped && droppedAt === null) droppedAt = (Date.now() - t0) / 1000;
        if (gone && goneAt === null) goneAt = (Date.now() - t0) / 1000;
      }).finally(() => (polling = false));
    }, 50);
    const interval = (SECONDS * 1000) / EVENTS;
    for (let i = 1; i <= EVENTS; i++) {
      await publisher.publish(served.channel, bigEvent(served.channel, 1000 + i, filler));
      const due = t0 + i * interval;
      if (due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
    }
    const expected = EVENTS + served.extra;
    const deadline = Date.now() + 30_000;
    while ((healthy.next < expected || (STALL && goneAt === null)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    clearInterval(sampler);
    const after = await gcMem();
    healthy.ws.terminate();
    stalled.ws.terminate();
    return { before: before.rss, peak, after: after.rss, heapGrowth: after.heap - before.heap, droppedAt, goneAt, healthyAll: healthy.next === expected, healthy: healthy.next };
  } finally {
    publisher.disconnect();
    await stop(child);
  }
}

const redis = await startRedis();
try {
  const token = await signToken(SECRET, { sub: 'bench', inst: 'bench', scope: SCOPES.join(' ') }, 3600);
  const load = () => loadavg()[0]!.toFixed(1);
  console.log(`${STALL ? 'stalled' : 'no stalled (baseline)'} subscriber: ${EVENTS} events of ~${KIB} KiB over ${SECONDS} s, one healthy and one ${STALL ? 'stalled' : 'reading'} WebSocket subscriber; queue bound ${QUEUE}; node args: ${NODE_ARGS.join(' ') || 'none'}`);
  console.log('| run | peer | load (1 min) | RSS before (MiB) | RSS peak growth (MiB) | RSS after GC growth (MiB) | heap + external after GC growth (MiB) | dropped at (s) | socket gone at (s) | gone after drop (s) | healthy got all |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (let run = 1; run <= RUNS; run++) {
    for (const peer of PEERS) {
      const r = await runOnce(peer, redis.url, token);
      const mib = (kib: number) => (kib / 1024).toFixed(1);
      const gone = r.goneAt !== null && r.droppedAt !== null ? (r.goneAt - r.droppedAt).toFixed(1) : 'not gone';
      console.log(
        `| ${run} | ${peer} | ${load()} | ${mib(r.before)} | ${mib(r.peak - r.before)} | ${mib(r.after - r.before)} | ${mib(r.heapGrowth)} | ${r.droppedAt ?? 'never'} | ${r.goneAt ?? 'not gone'} | ${gone} | ${r.healthyAll ? 'yes' : `no (${r.healthy})`} |`,
      );
    }
  }
} finally {
  await redis.stop();
}
process.exit(0);
