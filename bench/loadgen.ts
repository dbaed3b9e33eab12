/**
 * The load generator of the side-by-side fan-out benchmark (bench/fanout.ts),
 * a process of its own: it opens the subscribers on instance B, sends reports
 * to instance A at a fixed rate, and measures what arrives.
 *
 * Every report carries its send time (`performance.now()` of this process, in
 * milliseconds) inside the stage text, `s<seq>@<ms>`, so latency is measured
 * end to end — loadgen → A (HTTP) → Redis → B → WebSocket → loadgen — on one
 * clock. Subscribers are plain `ws` sockets speaking just enough of each
 * peer's protocol (graphql-transport-ws for runwatch and the recipe), so the
 * client side costs the same for every peer.
 *
 * Input: one JSON argument ({@link LoadgenConfig}). Output: JSON lines on
 * stdout, one {@link StepResult} per step, then `{"done":true}`.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { cpuSeconds } from './lib/procs.js';
import { Waiter } from './lib/waiter.js';

/** What bench/fanout.ts passes in. */
export interface LoadgenConfig {
  peer: 'raw' | 'recipe' | 'runwatch';
  /** Base HTTP URL of instance A (ingress) and B (subscribers), e.g. http://127.0.0.1:4000 */
  ingressUrl: string;
  serveUrl: string;
  /** Process ids of A and B, for CPU and RSS readings from /proc. */
  ingressPid: number;
  servePid: number;
  token: string;
  jobIds: string[];
  subscribers: number;
  /** The steady step: reports per second (over all jobs) and seconds. */
  rate: number;
  seconds: number;
  /** Saturation search: seconds per step (0: skip the search). */
  stepSeconds: number;
  /** A step passes when p99 latency stays under this many milliseconds and nothing is lost. */
  p99BoundMs: number;
  /**
   * What each runwatch report carries: `stage` (default) a new stage every
   * report (the fan-out benches need it: the stage text carries the sequence
   * number and send time; each opens a step, so a job holds 100 of them), or
   * `progress` one more item completed (`completedDelta: 1`), no stage.
   */
  reportShape?: 'stage' | 'progress';
}

/** One measured step. Latencies in milliseconds; CPU in percent of one core. */
export interface StepResult {
  kind: 'steady' | 'search';
  rate: number;
  sent: number;
  expected: number;
  delivered: number;
  duplicates: number;
  lost: number;
  deliveredPerSecond: number;
  p50: number;
  p99: number;
  max: number;
  serveCpuPercent: number;
  ingressCpuPercent: number;
  /** CPU milliseconds A spent per report. */
  ingressCpuMsPerReport: number;
  /** CPU microseconds B spent per delivered event. */
  serveCpuMicrosPerDelivery: number;
  /** B's resident memory growth per subscriber (KiB) after the subscribers connected. */
  rssKiBPerSubscriber: number;
  passed: boolean;
}

const config = JSON.parse(process.argv[2]!) as LoadgenConfig;

/** Resident set size of a process in KiB, from /proc/<pid>/status. */
function rssKiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

/** Per-subscriber receive state. */
interface Subscriber {
  job: number;
  live: boolean;
  /** Sequence numbers of the current step seen so far (1: seen), indexed from the step's first. */
  seen: Uint8Array;
  received: number;
}

const subscribers: Subscriber[] = [];
let latencies: number[] = [];
let stepFirstSeq = 0;
let duplicates = 0;
let liveCount = 0;
const waiter = new Waiter();

/** Extracts the stage text from one message of the peer's protocol; null for anything else. */
function stageOf(data: string, socket: WebSocket, index: number): string | null | undefined {
  if (config.peer === 'raw') {
    const event = JSON.parse(data) as { message?: string; ready?: boolean };
    return event.ready ? undefined : (event.message ?? null);
  }
  const msg = JSON.parse(data) as { type: string; payload?: any };
  if (msg.type === 'connection_ack') {
    socket.send(
      JSON.stringify({
        id: String(index),
        type: 'subscribe',
        payload: {
          query:
            'subscription($runId: ID!) { runProgress(runId: $runId) { type cursor message job { status completed total percent rate etaSeconds stage } } }',
          variables: { runId: config.jobIds[subscribers[index]!.job] },
        },
      }),
    );
    return undefined;
  }
  if (msg.type === 'ping') {
    socket.send('{"type":"pong"}');
    return undefined;
  }
  if (msg.type !== 'next') {
    if (msg.type === 'error' || msg.type === 'complete') process.stderr.write(`subscriber ${index}: ${data}\n`);
    return undefined;
  }
  return msg.payload?.data?.runProgress?.message ?? null;
}

function onMessage(index: number, socket: WebSocket, data: string): void {
  const stage = stageOf(data, socket, index);
  if (stage === undefined) return;
  const now = performance.now();
  const sub = subscribers[index]!;
  if (!sub.live) {
    sub.live = true;
    liveCount++;
  }
  if (stage === null || stage[0] !== 's') return;
  const at = stage.indexOf('@');
  const seq = Number(stage.slice(1, at));
  // Reports sent concurrently may commit in another order than sent, so dedupe by a bitmap, not by order.
  const slot = seq - stepFirstSeq;
  if (slot < 0 || slot >= sub.seen.length) return; // a straggler of an earlier step
  if (sub.seen[slot]) {
    duplicates++;
    return;
  }
  sub.seen[slot] = 1;
  sub.received++;
  latencies.push(now - Number(stage.slice(at + 1)));
  waiter.wake();
}

function connect(index: number): Promise<void> {
  const wsUrl = config.serveUrl.replace(/^http/, 'ws') + (config.peer === 'raw' ? '/' : '/graphql');
  const socket = new WebSocket(wsUrl, config.peer === 'raw' ? undefined : 'graphql-transport-ws');
  return new Promise((resolve, reject) => {
    socket.on('open', () => {
      if (config.peer === 'raw') socket.send(config.jobIds[subscribers[index]!.job]!);
      else socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${config.token}` } }));
      resolve();
    });
    socket.on('message', (data) => onMessage(index, socket, String(data)));
    socket.on('error', reject);
    socket.on('close', (code) => {
      if (!finished) process.stderr.write(`subscriber ${index} closed: ${code}\n`);
    });
  });
}

let seq = 0;
let inFlight = 0;
const MAX_IN_FLIGHT = 512;

/** Sends one report for job `job` with the next sequence number. */
function report(job: number): void {
  const id = config.jobIds[job]!;
  const stage = `s${seq++}@${performance.now().toFixed(3)}`;
  let url: string;
  let body: string;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (config.peer === 'raw') {
    url = `${config.ingressUrl}/publish/${id}`;
    const completed = seq;
    body = JSON.stringify({
      cursor: `raw.${completed}`, type: 'STAGE', timestamp: Date.now(), message: stage,
      job: { status: 'RUNNING', completed, total: 1_000_000, percent: completed / 10_000, rate: 123.4, etaSeconds: 987.6, stage },
    });
  } else if (config.peer === 'recipe') {
    url = `${config.ingressUrl}/graphql`;
    body = JSON.stringify({ query: 'mutation($r: ID!, $s: String!) { report(runId: $r, stage: $s) }', variables: { r: id, s: stage } });
  } else {
    url = `${config.ingressUrl}/graphql`;
    headers.authorization = `Bearer ${config.token}`;
    const input = config.reportShape === 'progress' ? { jobId: id, completedDelta: 1 } : { jobId: id, stage };
    body = JSON.stringify({ query: 'mutation($i: ReportProgressInput!) { reportProgress(input: $i) { id } }', variables: { i: input } });
  }
  inFlight++;
  fetch(url, { method: 'POST', headers, body })
    .then(async (res) => {
      const text = await res.text();
      if (!res.ok || text.includes('"errors"')) process.stderr.write(`report failed: ${res.status} ${text.slice(0, 200)}\n`);
    })
    .catch((error) => process.stderr.write(`report failed: ${error}\n`))
    .finally(() => inFlight--);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


const percentile = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]! : NaN);

/** Runs one step at `rate` reports per second for `seconds`, then waits for stragglers. */
async function step(kind: StepResult['kind'], rate: number, seconds: number, rssPerSub: number): Promise<StepResult> {
  stepFirstSeq = seq;
  latencies = [];
  duplicates = 0;
  const total = Math.round(rate * seconds);
  for (const sub of subscribers) {
    sub.received = 0;
    sub.seen = new Uint8Array(total);
  }
  const sentPerJob = config.jobIds.map(() => 0);
  const cpuA = cpuSeconds(config.ingressPid);
  const cpuB = cpuSeconds(config.servePid);
  const t0 = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * rate));
    while (sent < due && inFlight < MAX_IN_FLIGHT) {
      const job = sent % config.jobIds.length;
      report(job);
      sentPerJob[job]!++;
      sent++;
    }
    await sleep(2);
  }
  const sendEnd = performance.now();
  // A's CPU counts every report of the step: wait for the last responses.
  await waiter.until(() => inFlight === 0, 30_000);
  let expected = 0;
  for (const sub of subscribers) expected += sentPerJob[sub.job]!;
  const received = () => subscribers.reduce((n, s) => n + s.received, 0);
  // Wait for stragglers while they keep coming (a peer that fell behind is slow, not lossy), at most 60 s;
  // what has not arrived 3 s after the last arrival is lost.
  for (let before = -1, waited = 0; received() < expected && received() !== before && waited < 60_000; waited += 3000) {
    before = received();
    await waiter.until(() => received() >= expected, 3000);
  }
  const wallSeconds = (performance.now() - t0) / 1000;
  const cpuAUsed = cpuSeconds(config.ingressPid) - cpuA;
  const cpuBUsed = cpuSeconds(config.servePid) - cpuB;
  const delivered = received();
  const sorted = latencies.sort((a, b) => a - b);
  const result: StepResult = {
    kind,
    rate,
    sent,
    expected,
    delivered,
    duplicates,
    lost: expected - delivered,
    deliveredPerSecond: delivered / ((sendEnd - t0) / 1000),
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    max: sorted.at(-1) ?? NaN,
    serveCpuPercent: (cpuBUsed / wallSeconds) * 100,
    ingressCpuPercent: (cpuAUsed / wallSeconds) * 100,
    ingressCpuMsPerReport: (cpuAUsed * 1000) / Math.max(1, sent),
    serveCpuMicrosPerDelivery: (cpuBUsed * 1e6) / Math.max(1, delivered),
    rssKiBPerSubscriber: rssPerSub,
    passed: false,
  };
  result.passed = result.lost === 0 && result.duplicates === 0 && result.p99 < config.p99BoundMs;
  process.stdout.write(`${JSON.stringify(result)}\n`);
  return result;
}

let finished = false;
async function main() {
  const rssBefore = rssKiB(config.servePid);
  for (let i = 0; i < config.subscribers; i++) subscribers.push({ job: i % config.jobIds.length, live: false, seen: new Uint8Array(0), received: 0 });
  for (let i = 0; i < config.subscribers; i += 100) await Promise.all(subscribers.slice(i, i + 100).map((_, j) => connect(i + j)));
  // Warm-up: a report per job until every subscriber saw something (runwatch: its SNAPSHOT), so every subscription is live.
  while (liveCount < config.subscribers) {
    for (let job = 0; job < config.jobIds.length; job++) report(job);
    await waiter.until(() => liveCount >= config.subscribers, 300);
  }
  await sleep(500);
  const rssPerSub = (rssKiB(config.servePid) - rssBefore) / config.subscribers;
  const steady = await step('steady', config.rate, config.seconds, rssPerSub);
  if (config.stepSeconds > 0) {
    // Saturation: from the steady rate, double while steps pass, or halve until one does; that brackets it
    // between a passing and a failing rate, and two bisection steps narrow the bracket to a quarter of its width.
    const up = steady.passed;
    let pass = up ? config.rate : 0;
    let fail = up ? Infinity : config.rate;
    for (let rate = up ? config.rate * 2 : config.rate / 2, n = 0; n < 6 && rate >= 5; rate = up ? rate * 2 : rate / 2, n++) {
      const result = await step('search', rate, config.stepSeconds, rssPerSub);
      if (result.passed) pass = rate;
      else fail = rate;
      if (result.passed !== up) break; // going up: the first failure; going down: the first pass
    }
    for (let n = 0; n < 2 && pass > 0 && Number.isFinite(fail); n++) {
      const rate = Math.round((pass + fail) / 2);
      if (rate === pass || rate === fail) break;
      if ((await step('search', rate, config.stepSeconds, rssPerSub)).passed) pass = rate;
      else fail = rate;
    }
  }
  finished = true;
  process.stdout.write('{"done":true}\n');
  process.exit(0);
}

main().catch((error) => {
  process.stderr.write(`loadgen: ${error instanceof Error ? error.stack : error}\n`);
  process.exit(1);
});
