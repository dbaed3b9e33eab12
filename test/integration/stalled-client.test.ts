/**
 * A subscriber that stops reading and never reads again (WebSocket and SSE)
 * costs the server at most its stream's queue bound and its socket's buffer
 * bound: once its queue overflows it is dropped (WebSocket: close 4008), and
 * its socket is destroyed when the close has not completed within the grace
 * period (src/transport/close-grace.ts, 3 s), while another subscriber of the
 * same job gets every event; the heap after GC returns near where it started.
 */
import { request, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { DEFAULT_CLOSE_GRACE_MS } from '../../src/transport/close-grace.js';
import { deferred, gql, withTimeout, wsClient } from '../helpers/clients.js';
import { freshInstitute, startTestServer, token, viewerOf } from '../helpers/servers.js';
import { waitUntil } from '../helpers/wait.js';

const CREATE = `mutation($input: CreateBatchJobInput!) { createBatchJob(input: $input) { id } }`;
const COMPLETE = `mutation($id: ID!) { completeBatchJob(id: $id) { id } }`;
const WATCH = `subscription($runId: ID!) { runProgress(runId: $runId) { cursor type } }`;
const WATCH_ALL = `subscription($runId: ID!) { runProgress(runId: $runId) { cursor type message job { completed failed metadata } } }`;

/** The socket is gone this long after its stream was dropped, at most (the bound; the grace is 3 s, the sweep adds up to a quarter). */
const GONE_WITHIN_MS = 5000;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/**
 * A server with ~17 KiB events on one job, a healthy graphql-ws subscriber
 * that counts, and an in-process producer the healthy one paces; `stall`
 * opens the stalled subscriber and returns its client-side socket.
 */
async function scenario(stall: (url: string, tok: string, runId: string) => Promise<Socket>) {
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
  const server = await startTestServer({ config: { subscriberQueue: 100, historySize: 100 }, logger });
  const serverSockets = new Map<number, Socket>();
  server.httpServer.on('connection', (socket: Socket) => serverSockets.set(socket.remotePort!, socket));
  const tok = await token({ inst: freshInstitute() });
  const metadata = { notes: 'm'.repeat(15_000) };
  const { createBatchJob: job } = await gql(server.url, tok, CREATE, { input: { name: 'stalled reader', total: 100_000, metadata } });

  let healthy = 0;
  const healthyDone = deferred();
  const onHealthy: (() => void)[] = [];
  wsClient(server.url, tok).subscribe(
    { query: WATCH, variables: { runId: job.id } },
    {
      next: () => {
        healthy++;
        for (const wake of onHealthy.splice(0)) wake();
      },
      error: healthyDone.reject,
      complete: healthyDone.resolve,
    },
  );
  await waitUntil(() => healthy, (n) => n >= 1, 'the healthy SNAPSHOT');

  const clientSocket = await stall(server.url, tok, job.id);
  const serverSide = (await waitUntil(() => serverSockets.get(clientSocket.localPort!), Boolean, "the stalled client's server-side socket"))!;
  const gone = deferred<number>();
  serverSide.once('close', () => gone.resolve(Date.now()));

  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const n = 3000;
  let produced = 0;
  const viewer = await viewerOf(tok);
  const message = (i: number) => `item ${i} failed: ${'x'.repeat(1900)}`;
  let droppedAt = 0;
  const producer = Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let i = produced++; i < n; i = produced++) {
        // The healthy reader stays within 50 events of the producer.
        while (healthy < i - 50) await withTimeout(new Promise<void>((wake) => onHealthy.push(wake)), 10_000, 'the healthy subscriber to keep up');
        await server.services.jobs.report(viewer, job.id, { completedDelta: 1, failedDelta: 1, message: message(i) });
        if (!droppedAt && server.services.jobs.activeStreams === 1) droppedAt = Date.now();
      }
    }),
  );
  await waitUntil(() => server.services.jobs.activeStreams, (open) => open === 1, 'the stalled stream to be dropped', 30_000);
  droppedAt ||= Date.now();
  const goneAt = await withTimeout(gone.promise, GONE_WITHIN_MS + 5000, 'the stalled socket to be destroyed');
  await producer;
  await gql(server.url, tok, COMPLETE, { id: job.id });
  await withTimeout(healthyDone.promise, 20_000, 'the healthy subscriber to finish');
  gc();
  const grownMb = (process.memoryUsage().heapUsed - heapBefore) / 1e6;
  return { healthy, n, lines, goneAfterMs: goneAt - droppedAt, grownMb, clientSocket };
}

describe('a subscriber that stops reading for good', () => {
  it('WebSocket: closed 4008, its socket destroyed within the grace period, the other subscriber gets every event, memory returns', async () => {
    const closing = deferred<void>();
    const result = await scenario(async (url, tok, runId) => {
      const stuck = new WebSocket(url.replace(/^http/, 'ws'), 'graphql-transport-ws');
      const snapshot = deferred();
      stuck.on('open', () => stuck.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${tok}` } })));
      stuck.on('message', (raw) => {
        const msg = JSON.parse(String(raw));
        if (msg.type === 'connection_ack') stuck.send(JSON.stringify({ id: 's', type: 'subscribe', payload: { query: WATCH_ALL, variables: { runId } } }));
        if (msg.type === 'next') snapshot.resolve();
      });
      stuck.on('error', () => {}); // it is terminated
      stuck.on('close', () => closing.resolve());
      await withTimeout(snapshot.promise, 5000, 'the stalled subscriber to get its SNAPSHOT');
      const socket = (stuck as unknown as { _socket: Socket })._socket;
      socket.pause(); // stops reading, for good
      return socket;
    });
    expect(result.healthy).toBe(1 + 1 + result.n + 1); // SNAPSHOT, STARTED, ITEM_FAILED × n, COMPLETED
    const closeLine = result.lines.map((l) => JSON.parse(l)).find((l) => l.event === 'connection_closing');
    expect(closeLine).toMatchObject({ code: 4008, reason: 'Slow consumer: resume from your last cursor' });
    expect(result.goneAfterMs).toBeGreaterThanOrEqual(DEFAULT_CLOSE_GRACE_MS - 1000); // it had its grace (less the time the drop took to observe)
    expect(result.goneAfterMs).toBeLessThan(GONE_WITHIN_MS);
    expect(result.grownMb).toBeLessThan(8);
    result.clientSocket.destroy();
  }, 120_000);

  it('SSE: its response ended and its socket destroyed within the grace period, the other subscriber gets every event, memory returns', async () => {
    const result = await scenario(async (url, tok, runId) => {
      const response = deferred<IncomingMessage>();
      const req = request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${tok}` },
      });
      req.on('response', response.resolve);
      req.on('error', () => {}); // it is destroyed
      req.end(JSON.stringify({ query: WATCH_ALL, variables: { runId } }));
      const res = await withTimeout(response.promise, 5000, 'the SSE response');
      expect(res.statusCode).toBe(200);
      res.on('error', () => {});
      const first = deferred();
      let text = '';
      const onData = (chunk: Buffer) => {
        text += String(chunk);
        if (text.includes('event: next')) first.resolve();
      };
      res.on('data', onData);
      await withTimeout(first.promise, 5000, 'the stalled SSE subscriber to get its SNAPSHOT');
      res.off('data', onData);
      res.pause(); // stops reading, for good
      return res.socket as Socket;
    });
    expect(result.healthy).toBe(1 + 1 + result.n + 1);
    expect(result.goneAfterMs).toBeGreaterThanOrEqual(DEFAULT_CLOSE_GRACE_MS - 1000);
    expect(result.goneAfterMs).toBeLessThan(GONE_WITHIN_MS);
    expect(result.grownMb).toBeLessThan(8);
    result.clientSocket.destroy();
  }, 120_000);
});
