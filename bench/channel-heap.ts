/**
 * Heap per shared channel (issue 20, branch `chexec`): one in-process runwatch
 * (memory backend, shared channels on), one raw WebSocket client speaking
 * graphql-transport-ws, N subscriptions on N jobs (one member per channel,
 * so each subscription opens a channel), each waited for its SNAPSHOT. Prints
 * heap-after-GC growth per channel (server and the one client together; the
 * client keeps nothing per subscription but an id). With
 * BENCH_HEAP_SNAPSHOTS=<dir>, writes heap snapshots before and after for
 * bench/heap-diff.ts.
 *
 * Run: `node --expose-gc --import tsx bench/channel-heap.ts [channels=1000]`.
 */
import { writeHeapSnapshot } from 'node:v8';
import { pino } from 'pino';
import WebSocket from 'ws';
import { SCOPES, signToken } from '../src/auth/tokens.js';
import { loadConfig } from '../src/config.js';
import { startServer } from '../src/server.js';

const N = Number(process.argv[2] ?? 1000);
const SECRET = 'runwatch-bench-secret-0123456789abcdef-0123456789';
const QUERY = `subscription($runId: ID!) { runProgress(runId: $runId) { cursor type timestamp job { id status completed total percent rate etaSeconds stage } } }`;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

async function heapAfterGc(): Promise<number> {
  for (let i = 0; i < 4; i++) {
    gc!();
    await new Promise((r) => setImmediate(r));
  }
  return process.memoryUsage().heapUsed;
}

async function main() {
  const config = loadConfig({
    PORT: '0', HOST: '127.0.0.1', RUNWATCH_JWT_SECRET: SECRET, LOG_LEVEL: 'silent', RUNWATCH_RATE_LIMIT_PER_SECOND: '0',
    RUNWATCH_MAX_SUBSCRIPTIONS_PER_CONNECTION: '100000', RUNWATCH_MAX_CONNECTIONS_PER_USER: '100000', RUNWATCH_MEMORY_MAX_JOBS: '100000',
  });
  const server = await startServer(config, { logger: pino({ level: 'silent' }), sharedChannels: true });
  const token = await signToken(SECRET, { sub: 'bench', inst: 'bench', scope: SCOPES.join(' ') }, 3600);
  const gql = async (query: string, variables: object) => {
    const res = await fetch(`${server.url}`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` }, body: JSON.stringify({ query, variables }) });
    const body = (await res.json()) as { data: any; errors?: unknown };
    if (body.errors) throw new Error(JSON.stringify(body.errors));
    return body.data;
  };
  const jobs: string[] = [];
  for (let i = 0; i < N + 1; i++) jobs.push((await gql('mutation($n: String!) { createBatchJob(input: { name: $n, total: 100 }) { id } }', { n: `j${i}` })).createBatchJob.id);
  const socket = new WebSocket(server.url.replace(/^http/, 'ws'), 'graphql-transport-ws');
  const got = new Set<string>();
  let waiter: (() => void) | null = null;
  let want = 0;
  socket.on('message', (data) => {
    const m = JSON.parse(String(data)) as { type: string; id?: string; payload?: unknown };
    if (m.type === 'connection_ack' || (m.type === 'next' && m.id)) {
      if (m.id) got.add(m.id);
      if (m.type === 'connection_ack') got.add('ack');
      if (got.size >= want && waiter) waiter();
    } else if (m.type === 'error') console.error(JSON.stringify(m));
  });
  const until = (n: number) =>
    new Promise<void>((resolve, reject) => {
      want = n;
      if (got.size >= n) return resolve();
      const t = setTimeout(() => reject(new Error(`timed out at ${got.size}/${n}`)), 120_000);
      waiter = () => (clearTimeout(t), resolve());
    });
  await new Promise((r) => socket.once('open', r));
  socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } }));
  await until(1);
  // Prime the document (the first of a text goes through Yoga, which validates and caches it).
  socket.send(JSON.stringify({ type: 'subscribe', id: 'prime', payload: { query: QUERY, variables: { runId: jobs[N] } } }));
  await until(2);
  const before = await heapAfterGc();
  const dir = process.env.BENCH_HEAP_SNAPSHOTS;
  if (dir) writeHeapSnapshot(`${dir}/before.heapsnapshot`);
  const t0 = performance.now();
  for (let i = 0; i < N; i++) socket.send(JSON.stringify({ type: 'subscribe', id: `s${i}`, payload: { query: QUERY, variables: { runId: jobs[i] } } }));
  await until(N + 2);
  const ms = performance.now() - t0;
  const after = await heapAfterGc();
  if (dir) writeHeapSnapshot(`${dir}/after.heapsnapshot`);
  console.log(JSON.stringify({ channels: N, heapKiBPerChannel: +((after - before) / 1024 / N).toFixed(2), openMs: Math.round(ms) }));
  socket.close();
  await server.close();
  process.exit(0);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
