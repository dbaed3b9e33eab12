/**
 * The graphql-transport-ws protocol as runwatch's own adapter
 * (src/transport/graphql-ws-server.ts) serves it, against real servers: with
 * the unmodified graphql-ws client where it can provoke the case, and with a
 * raw `ws` socket speaking the protocol where it cannot (bad messages,
 * duplicate ids, a second init, a socket that stops reading).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buildSchema, parse } from 'graphql';
import { SignJWT } from 'jose';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { decodeCursor } from '../../src/domain/cursor.js';
import { sharedExecutionStats } from '../../src/delivery/shared-execution.js';
import type { RunningServer } from '../../src/server.js';
import { createErrorMasker } from '../../src/schema/errors.js';
import { frameHead, serveGraphqlWs, type GraphqlWsServerOptions } from '../../src/transport/graphql-ws-server.js';
import { deferred, gql, subscribeWs, withTimeout, wsClient } from '../helpers/clients.js';
import { freshInstitute, startTestServer, token, viewerOf } from '../helpers/servers.js';
import { scrape } from '../helpers/prometheus.js';
import { waitUntil } from '../helpers/wait.js';

const CREATE = `mutation($input: CreateBatchJobInput!) { createBatchJob(input: $input) { id } }`;
const COMPLETE = `mutation($id: ID!) { completeBatchJob(id: $id) { id } }`;
const GET = `query($id: ID!) { batchJob(id: $id) { id name } }`;
const WATCH = `subscription($runId: ID!, $after: String) { runProgress(runId: $runId, after: $after) { cursor type message job { completed failed status } } }`;
const WATCH_BIG = `subscription($runId: ID!) { runProgress(runId: $runId) { cursor type message job { completed failed metadata } } }`;

type Msg = { type: string; id?: string; payload?: any };

/** A raw graphql-transport-ws socket: every message kept (parsed and as text), waits with timeouts. */
class RawSocket {
  readonly socket: WebSocket;
  readonly messages: Msg[] = [];
  readonly texts: string[] = [];
  readonly closed = deferred<{ code: number; reason: string }>();
  readonly opened = deferred();
  private waiters: (() => void)[] = [];

  constructor(url: string, protocol: string | undefined = 'graphql-transport-ws') {
    this.socket = new WebSocket(url.replace(/^http/, 'ws'), protocol);
    this.socket.on('open', () => this.opened.resolve());
    this.socket.on('error', () => {}); // the close event carries what tests check
    this.socket.on('message', (raw, isBinary) => {
      expect(isBinary).toBe(false); // text frames only: browsers would get a Blob otherwise
      this.texts.push(String(raw));
      this.messages.push(JSON.parse(String(raw)) as Msg);
      for (const wake of this.waiters.splice(0)) wake();
    });
    this.socket.on('close', (code, reason) => {
      this.closed.resolve({ code, reason: String(reason) });
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  send(message: object | string) {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** Resolves with the first message (from index `from`) matching `match`. */
  async waitFor(match: (m: Msg) => boolean, what: string, ms = 10_000, from = 0): Promise<Msg> {
    const find = () => this.messages.slice(from).find(match);
    return withTimeout(
      (async () => {
        for (let found = find(); ; found = find()) {
          if (found) return found;
          await new Promise<void>((wake) => this.waiters.push(wake));
        }
      })(),
      ms,
      () => `${what} (got ${JSON.stringify(this.messages.slice(-3)).slice(0, 400)})`,
    );
  }

  /** Opens, sends connection_init with the token and waits for the ack. */
  async init(tok: string) {
    await withTimeout(this.opened.promise, 5000, 'the socket to open');
    this.send({ type: 'connection_init', payload: { authorization: `Bearer ${tok}` } });
    await this.waitFor((m) => m.type === 'connection_ack', 'connection_ack');
  }

  closeCode(ms = 10_000) {
    return withTimeout(this.closed.promise, ms, 'the socket to close');
  }
}

const sockets: RawSocket[] = [];
const raw = (url: string, protocol?: string) => {
  const s = new RawSocket(url, protocol);
  sockets.push(s);
  return s;
};
afterAll(() => {
  for (const s of sockets) s.socket.terminate();
});

/**
 * A socket that never sends connection_init, to a server with the default settings, opened before
 * every test of the file: the 5 s the server gives it pass while the other tests run, and the test
 * of its 4408 close (the file's last) waits only for what is left of them.
 */
let silent: { socket: RawSocket; openedAt: Promise<number>; closedAt: Promise<number> };
beforeAll(async () => {
  const server = await startTestServer();
  const socket = raw(server.url);
  silent = { socket, openedAt: socket.opened.promise.then(() => Date.now()), closedAt: socket.closed.promise.then(() => Date.now()) };
});

describe('graphql-transport-ws protocol', () => {
  let server: RunningServer;
  let tok: string;
  let jobId: string;
  beforeAll(async () => {
    server = await startTestServer({ backend: 'redis' });
    tok = await token({ inst: freshInstitute() });
    jobId = (await gql(server.url, tok, CREATE, { input: { name: 'protocol', total: 1000 } })).createBatchJob.id;
  });

  it('closes 4400 on an invalid message and 4429 on a second connection_init', async () => {
    const bad = raw(server.url);
    await bad.init(tok);
    bad.send('{"type":"subscribe","id":7}');
    expect(await bad.closeCode()).toEqual({ code: 4400, reason: 'Invalid message received' });
    const notJson = raw(server.url);
    await withTimeout(notJson.opened.promise, 5000, 'open');
    notJson.send('this is not json');
    expect((await notJson.closeCode()).code).toBe(4400);

    const twice = raw(server.url);
    await twice.init(tok);
    twice.send({ type: 'connection_init', payload: { authorization: `Bearer ${tok}` } });
    expect(await twice.closeCode()).toEqual({ code: 4429, reason: 'Too many initialisation requests' });
  });

  it('closes 4401 on a subscribe before the ack, and on a missing or bad token (with the reason); 4403 on an expired one', async () => {
    const early = raw(server.url);
    await withTimeout(early.opened.promise, 5000, 'open');
    early.send({ type: 'subscribe', id: '1', payload: { query: WATCH, variables: { runId: jobId } } });
    expect(await early.closeCode()).toEqual({ code: 4401, reason: 'Unauthorized' });

    const closeOf = async (tokOrNull: string | null) => {
      const closed = deferred<{ code: number; reason: string }>();
      const client = wsClient(server.url, tokOrNull, { onClose: (code, reason) => closed.resolve({ code, reason }) });
      const sub = subscribeWs(client, WATCH, { runId: jobId }, 'runProgress');
      const result = await withTimeout(closed.promise, 5000, 'the socket to close');
      await sub.done();
      return result;
    };
    expect(await closeOf(null)).toEqual({ code: 4401, reason: 'Unauthorized: missing token' });
    expect(await closeOf('not-a-jwt')).toEqual({ code: 4401, reason: 'Unauthorized: invalid token' });
    const expired = await new SignJWT({ scope: 'jobs:read' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('late')
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(new TextEncoder().encode(server.jwtSecret));
    expect((await closeOf(expired)).code).toBe(4403);
  });

  it('closes 4409 when a subscription id is already in use', async () => {
    const s = raw(server.url);
    await s.init(tok);
    s.send({ type: 'subscribe', id: 'dup', payload: { query: WATCH, variables: { runId: jobId } } });
    await s.waitFor((m) => m.type === 'next' && m.id === 'dup', 'the first subscription to deliver');
    s.send({ type: 'subscribe', id: 'dup', payload: { query: WATCH, variables: { runId: jobId } } });
    expect(await s.closeCode()).toEqual({ code: 4409, reason: 'Subscriber for dup already exists' });
  });

  it('refuses a socket without the graphql-transport-ws subprotocol', async () => {
    const s = raw(server.url, 'graphql-ws');
    // ws refuses the handshake (no acceptable subprotocol) or the server closes 4406.
    const closed = await s.closeCode();
    expect([1002, 1006, 4406]).toContain(closed.code);
  });

  it('answers ping with pong echoing the payload, ignores pong, and stays open', async () => {
    const s = raw(server.url);
    await s.init(tok);
    s.send({ type: 'pong', payload: { unsolicited: true } });
    s.send({ type: 'ping', payload: { n: 1 } });
    expect(await s.waitFor((m) => m.type === 'pong', 'pong')).toEqual({ type: 'pong', payload: { n: 1 } });
    const from = s.messages.length;
    s.send({ type: 'ping' });
    expect(await s.waitFor((m) => m.type === 'pong', 'bare pong', 10_000, from)).toEqual({ type: 'pong' });
    expect(s.socket.readyState).toBe(WebSocket.OPEN);
  });

  it('runs a mutation and a query over the graphql-ws client: next, then complete', async () => {
    const client = wsClient(server.url, tok);
    const created = subscribeWs(client, CREATE, { input: { name: 'over ws', total: 3 } }, 'createBatchJob');
    const [job] = await created.done();
    expect(job.id).toEqual(expect.any(String));
    const fetched = await subscribeWs(client, GET, { id: job.id }, 'batchJob').done();
    expect(fetched).toEqual([{ id: job.id, name: 'over ws' }]);
  });

  it('answers a document that fails to parse or validate with an error message and keeps the connection', async () => {
    const s = raw(server.url);
    await s.init(tok);
    s.send({ type: 'subscribe', id: 'v', payload: { query: '{ noSuchField }' } });
    const validation = await s.waitFor((m) => m.id === 'v', 'the validation error');
    expect(validation.type).toBe('error');
    expect(validation.payload[0].message).toMatch(/noSuchField/);
    expect(validation.payload[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    s.send({ type: 'subscribe', id: 'p', payload: { query: '{ batchJob(' } });
    const parse = await s.waitFor((m) => m.id === 'p', 'the parse error');
    expect(parse.type).toBe('error');
    expect(parse.payload[0].message).toMatch(/Syntax Error/);
    // The same connection still runs operations.
    s.send({ type: 'subscribe', id: 'q', payload: { query: GET, variables: { id: jobId } } });
    expect(await s.waitFor((m) => m.id === 'q' && m.type === 'next', 'the query result')).toMatchObject({ payload: { data: { batchJob: { id: jobId } } } });
    await s.waitFor((m) => m.id === 'q' && m.type === 'complete', 'the query complete');
    expect(s.socket.readyState).toBe(WebSocket.OPEN);
    // The graphql-ws client sees the validation error on that operation only.
    const client = wsClient(server.url, tok);
    const failed = deferred<unknown>();
    client.subscribe({ query: '{ noSuchField }' }, { next: () => {}, error: failed.resolve, complete: () => {} });
    const errors = (await withTimeout(failed.promise, 5000, 'the client error')) as { extensions: { code: string } }[];
    expect(errors[0]!.extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });

  it('releases the Redis topic at once when the client completes a subscription, the socket staying open', async () => {
    const quiet = (await gql(server.url, tok, CREATE, { input: { name: 'quiet', total: 5 } })).createBatchJob.id;
    await waitUntil(() => server.backend.bus.topicCount(), (n) => n === 0, 'no topic before the test');
    const s = raw(server.url);
    await s.init(tok);
    s.send({ type: 'subscribe', id: 'w', payload: { query: WATCH, variables: { runId: quiet } } });
    await s.waitFor((m) => m.type === 'next' && m.id === 'w', 'the SNAPSHOT');
    expect(server.backend.bus.topicCount()).toBe(1);
    const active = async () => (await scrape(server.url)).value('runwatch_subscriptions_active', { field: 'runProgress', transport: 'ws' });
    expect(await active()).toBe(1);
    s.send({ type: 'complete', id: 'w' });
    await waitUntil(() => server.backend.bus.topicCount(), (n) => n === 0, 'the topic to be released');
    expect(server.services.jobs.activeStreams).toBe(0);
    await waitUntil(active, (n) => n === 0, 'the active-subscriptions gauge to drop (plugin end hooks ran)');
    expect(s.socket.readyState).toBe(WebSocket.OPEN);
    // The id is free again.
    s.send({ type: 'subscribe', id: 'w', payload: { query: WATCH, variables: { runId: quiet } } });
    await s.waitFor((m) => m.type === 'next' && m.id === 'w', 'the second SNAPSHOT', 10_000, s.messages.length);
  });

  it('keeps delivering to a subscriber after the one it shares an executor with completes', async () => {
    const run = (await gql(server.url, tok, CREATE, { input: { name: 'shared executor', total: 1000 } })).createBatchJob.id;
    const a = raw(server.url);
    const b = raw(server.url);
    await Promise.all([a.init(tok), b.init(tok)]);
    // Same document, variables and scopes: one shared executor, made with a's context.
    a.send({ type: 'subscribe', id: 'a', payload: { query: WATCH, variables: { runId: run } } });
    await a.waitFor((m) => m.type === 'next', 'a SNAPSHOT');
    b.send({ type: 'subscribe', id: 'b', payload: { query: WATCH, variables: { runId: run } } });
    await b.waitFor((m) => m.type === 'next', 'b SNAPSHOT');
    a.send({ id: 'a', type: 'complete' });
    a.socket.close(1000);
    await withTimeout(a.closed.promise, 5000, 'a closed');
    const viewer = await viewerOf(tok);
    await server.services.jobs.report(viewer, run, { completedDelta: 1, failedDelta: 1, message: 'after a left' });
    const next = await b.waitFor((m) => m.type === 'next' && m.payload?.data?.runProgress?.message === 'after a left', 'b gets the event after a left');
    expect(next.payload.data.runProgress).toMatchObject({ type: 'ITEM_FAILED', job: { completed: 1, failed: 1 } });
    await gql(server.url, tok, COMPLETE, { id: run });
    await b.waitFor((m) => m.type === 'complete' && m.id === 'b', 'b complete');
  });

  it('delivers every event in order to two subscribers of one document, with identical payload bytes, then completes', async () => {
    const run = (await gql(server.url, tok, CREATE, { input: { name: 'shared', total: 1000 } })).createBatchJob.id;
    const a = raw(server.url);
    const b = raw(server.url);
    await Promise.all([a.init(tok), b.init(tok)]);
    a.send({ type: 'subscribe', id: 'a', payload: { query: WATCH, variables: { runId: run } } });
    b.send({ type: 'subscribe', id: 'a-much-longer-id-"quoted"', payload: { query: WATCH, variables: { runId: run } } });
    await Promise.all([a.waitFor((m) => m.type === 'next', 'a SNAPSHOT'), b.waitFor((m) => m.type === 'next', 'b SNAPSHOT')]);
    const before = { ...sharedExecutionStats };
    const viewer = await viewerOf(tok);
    const n = 300;
    for (let i = 0; i < n; i++) await server.services.jobs.report(viewer, run, { completedDelta: 1, failedDelta: 1, message: `item ${i} failed` });
    await gql(server.url, tok, COMPLETE, { id: run });
    await Promise.all([a.waitFor((m) => m.type === 'complete', 'a complete', 20_000), b.waitFor((m) => m.type === 'complete', 'b complete', 20_000)]);

    const payloads = (s: RawSocket, id: string) => {
      const prefix = `{"id":${JSON.stringify(id)},"type":"next","payload":`;
      const texts = s.texts.filter((t) => t.includes('"type":"next"'));
      for (const t of texts) expect(t.startsWith(prefix) && t.endsWith('}')).toBe(true);
      return texts.map((t) => t.slice(prefix.length, -1));
    };
    const pa = payloads(a, 'a');
    const pb = payloads(b, 'a-much-longer-id-"quoted"');
    expect(pb).toEqual(pa); // byte for byte, SNAPSHOT included
    const events = pa.map((p) => JSON.parse(p).data.runProgress);
    const failures = events.filter((e) => e.type === 'ITEM_FAILED').map((e) => e.message);
    expect(failures).toEqual(Array.from({ length: n }, (_, i) => `item ${i} failed`));
    expect(events.at(-1)).toMatchObject({ type: 'COMPLETED', job: { status: 'COMPLETED', completed: n, failed: n } });
    // One serialization per event shared by the two subscribers (a shared channel serializes once; on their own
    // streams the second reuses the first's bytes), not one per subscriber: fewer than 2n.
    expect(sharedExecutionStats.serialized - before.serialized).toBeLessThan(2 * n);
    expect(a.socket.readyState).toBe(WebSocket.OPEN);
  }, 60_000);

  it('closes 1012 on shutdown and releases every subscription', async () => {
    const own = await startTestServer({ backend: 'redis' });
    const ownTok = await token({ inst: freshInstitute() });
    const run = (await gql(own.url, ownTok, CREATE, { input: { name: 'shutdown', total: 5 } })).createBatchJob.id;
    const s = raw(own.url);
    await s.init(ownTok);
    s.send({ type: 'subscribe', id: 'x', payload: { query: WATCH, variables: { runId: run } } });
    await s.waitFor((m) => m.type === 'next', 'the SNAPSHOT');
    const closing = own.close(2000);
    expect((await s.closeCode()).code).toBe(1012);
    await closing;
    expect(own.services.jobs.activeStreams).toBe(0);
  });
});

describe('slow consumer', () => {
  it('closes 4008 on a socket that stops reading, releasing its stream, while the producer never blocks', async () => {
    const server = await startTestServer({ closeGraceMs: 120_000, config: { subscriberQueue: 50, historySize: 100 } }) // read its close only after the release: a long grace keeps the 4008 frame;
    const tok = await token({ inst: freshInstitute() });
    // ~17 KB per event on the wire, so socket buffers fill after a few hundred events.
    const metadata = { notes: 'm'.repeat(15_000) };
    const run = (await gql(server.url, tok, CREATE, { input: { name: 'stuck', total: 100_000, metadata } })).createBatchJob.id;
    const s = raw(server.url);
    await s.init(tok);
    s.send({ type: 'subscribe', id: 's', payload: { query: WATCH_BIG, variables: { runId: run } } });
    await s.waitFor((m) => m.type === 'next', 'the SNAPSHOT');
    s.socket.pause(); // stops reading: the server's socket buffer fills, then the stream's queue
    const viewer = await viewerOf(tok);
    let closed = false;
    void s.closed.promise.then(() => (closed = true));
    for (let i = 0; i < 20_000 && !closed && server.services.jobs.activeStreams > 0; i++) {
      await server.services.jobs.report(viewer, run, { completedDelta: 1, failedDelta: 1, message: `item ${i}` });
    }
    await waitUntil(() => server.services.jobs.activeStreams, (n) => n === 0, 'the stuck stream to be released', 10_000);
    s.socket.resume();
    const close = await s.closeCode();
    expect(close).toEqual({ code: 4008, reason: 'Slow consumer: resume from your last cursor' });
    // What it did receive is in order, without gaps.
    const offsets = s.messages.filter((m) => m.type === 'next').map((m) => decodeCursor(m.payload.data.runProgress.cursor as string).offset);
    expect(offsets.length).toBeGreaterThan(1);
    for (let i = 1; i < offsets.length; i++) expect(offsets[i]).toBe(offsets[i - 1]! + 1);
  }, 90_000);
});

/** The adapter alone on a port-0 HTTP server, with the given hooks. */
async function adapterServer(hooks: Pick<GraphqlWsServerOptions<unknown>, 'onConnect' | 'prepare' | 'keepAliveMs'> & { lines?: string[] }) {
  const log = pino({ level: 'info' }, { write: (line: string) => void hooks.lines?.push(line) });
  const http = createServer();
  const wss = new WebSocketServer({ server: http, path: '/graphql' });
  const served = serveGraphqlWs(wss, { log, maskError: createErrorMasker(log), ...hooks });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/graphql`,
    close: async () => {
      await served.dispose();
      await new Promise((resolve) => http.close(resolve));
    },
  };
}

describe('frames', () => {
  it('delivers payloads copied into one frame and spliced (over 1 KiB) intact to the unmodified client, the same to every subscriber', async () => {
    const server = await startTestServer();
    const tok = await token({ inst: freshInstitute() });
    const run = (await gql(server.url, tok, CREATE, { input: { name: 'frames', total: 10 } })).createBatchJob.id;
    const a = subscribeWs(wsClient(server.url, tok), WATCH, { runId: run }, 'runProgress');
    const b = subscribeWs(wsClient(server.url, tok), WATCH, { runId: run }, 'runProgress');
    await Promise.all([a.waitForCount(1), b.waitForCount(1)]);
    const viewer = await viewerOf(tok);
    // Frames of about 100 B (7-bit length, one buffer) and 3 KB (16-bit length; a header, the prefix and the shared payload).
    const messages = ['m', 'é'.repeat(1500), 'ü', 'x'.repeat(2000)];
    for (const message of messages) await server.services.jobs.report(viewer, run, { failedDelta: 1, message });
    // SNAPSHOT, STARTED, then an ITEM_FAILED carrying each message.
    await Promise.all([a.waitForCount(2 + messages.length), b.waitForCount(2 + messages.length)]);
    expect(a.items.filter((e) => e.type === 'ITEM_FAILED').map((e) => e.message)).toEqual(messages);
    expect(b.items.slice(1)).toEqual(a.items.slice(1));
  });
});

describe('frameHead', () => {
  it('writes the RFC 6455 header of an unmasked final text frame for each length form', () => {
    expect([...frameHead(125, 0)]).toEqual([0x81, 125]);
    expect([...frameHead(126, 0)]).toEqual([0x81, 126, 0, 126]);
    expect([...frameHead(65_535, 0)]).toEqual([0x81, 126, 0xff, 0xff]);
    expect([...frameHead(65_536, 0)]).toEqual([0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]);
    expect([...frameHead(2 ** 32 + 5, 0)]).toEqual([0x81, 127, 0, 0, 0, 1, 0, 0, 0, 5]);
    expect(frameHead(10, 3)).toHaveLength(2 + 3);
  });
});

describe('keep-alive', () => {
  it('pings every connection on one interval: one that answers stays open, one that stops answering is terminated', async () => {
    const server = await adapterServer({ onConnect: () => ({ accept: 1 }), prepare: () => [], keepAliveMs: 300 });
    try {
      const alive = new WebSocket(server.url, 'graphql-transport-ws');
      const silent = new WebSocket(server.url, 'graphql-transport-ws', { autoPong: false }); // never answers a ping
      let pings = 0;
      const thirdPing = deferred<void>();
      alive.on('ping', () => {
        if (++pings === 3) thirdPing.resolve();
      });
      const silentClosed = deferred<number>();
      silent.on('close', (code) => silentClosed.resolve(code));
      await Promise.all([alive, silent].map((s) => withTimeout(new Promise((r) => s.once('open', r)), 5000, 'the sockets to open')));
      // Terminated, not closed: the client sees an abnormal closure (1006) after an unanswered ping.
      expect(await withTimeout(silentClosed.promise, 5000, 'the silent socket to be terminated')).toBe(1006);
      await withTimeout(thirdPing.promise, 5000, 'three pings to the socket that answers');
      expect(alive.readyState).toBe(WebSocket.OPEN);
      alive.close();
    } finally {
      await server.close();
    }
  });
});

describe('streams without push mode', () => {
  it('are iterated: every result in order then complete; a failure is masked; a client complete ends the iterator', async () => {
    const schema = buildSchema('type Query { x: Int } type Subscription { n: Int }');
    let finalized = 0;
    async function* numbers(count: number, failAt?: number) {
      try {
        for (let i = 1; i <= count; i++) {
          if (i === failAt) throw new Error('secret internal detail');
          await new Promise((r) => setTimeout(r, 5));
          yield { data: { n: i } };
        }
      } finally {
        finalized++;
      }
    }
    const server = await adapterServer({
      onConnect: () => ({ accept: 'someone' }),
      prepare: (_connection, _id, payload) => ({
        args: { schema, document: parse(payload.query), variableValues: payload.variables, contextValue: {} },
        execute: () => ({ data: { x: 1 } }),
        subscribe: () => numbers(Number(payload.variables?.count), payload.variables?.failAt as number | undefined),
      }),
    });
    try {
      const s = raw(server.url);
      await withTimeout(s.opened.promise, 5000, 'open');
      s.send({ type: 'connection_init' });
      await s.waitFor((m) => m.type === 'connection_ack', 'ack');
      s.send({ type: 'subscribe', id: 'ok', payload: { query: 'subscription { n }', variables: { count: 3 } } });
      await s.waitFor((m) => m.id === 'ok' && m.type === 'complete', 'complete');
      expect(s.messages.filter((m) => m.id === 'ok').map((m) => m.payload?.data?.n ?? m.type)).toEqual([1, 2, 3, 'complete']);

      s.send({ type: 'subscribe', id: 'bad', payload: { query: 'subscription { n }', variables: { count: 3, failAt: 2 } } });
      const error = await s.waitFor((m) => m.id === 'bad' && m.type === 'error', 'the error');
      expect(error.payload).toEqual([{ message: 'Unexpected error.', extensions: { code: 'INTERNAL_SERVER_ERROR' } }]);
      expect(s.texts.join('')).not.toContain('secret');

      s.send({ type: 'subscribe', id: 'long', payload: { query: 'subscription { n }', variables: { count: 1_000_000 } } });
      await s.waitFor((m) => m.id === 'long' && m.type === 'next', 'a first result');
      const before = finalized;
      s.send({ type: 'complete', id: 'long' });
      await waitUntil(() => finalized, (n) => n === before + 1, 'the iterator to end');
      expect(s.socket.readyState).toBe(WebSocket.OPEN);
    } finally {
      await server.close();
    }
  });
});

describe('unexpected errors', () => {
  it('closes 4500 with a fixed reason and logs the error, never sending its message', async () => {
    const lines: string[] = [];
    const server = await adapterServer({
      lines,
      onConnect: () => {
        throw new Error('db password is hunter2');
      },
      prepare: () => [],
    });
    try {
      const s = raw(server.url);
      await withTimeout(s.opened.promise, 5000, 'open');
      s.send({ type: 'connection_init', payload: {} });
      const closed = await s.closeCode();
      expect(closed).toEqual({ code: 4500, reason: 'Internal server error' });
      expect(lines.join('\n')).toContain('hunter2');
    } finally {
      await server.close();
    }
  });
});

describe('connection_init timeout', () => {
  it('closes 4408 when connection_init does not come within 5 s', async () => {
    const opened = await withTimeout(silent.openedAt, 5000, 'open');
    expect(await silent.socket.closeCode(10_000)).toEqual({ code: 4408, reason: 'Connection initialisation timeout' });
    expect((await silent.closedAt) - opened).toBeGreaterThanOrEqual(4500);
  }, 15_000);
});
