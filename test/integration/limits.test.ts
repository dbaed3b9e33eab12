/**
 * Protection as clients meet it: per-token mutation rate limits shared by two
 * instances on one Redis, live token expiry (WebSocket 4403, SSE error),
 * browser origin checks and CORS, and the connection and subscription caps.
 */
import type { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { deferred, gql, subscribeSse, subscribeWs, withTimeout, wsClient } from '../helpers/clients.js';
import { DEFAULT_CLOSE_GRACE_MS } from '../../src/transport/close-grace.js';
import { scrape } from '../helpers/prometheus.js';
import { freshInstitute, startTestServer, token } from '../helpers/servers.js';

const CREATE = `mutation($input: CreateBatchJobInput!) { createBatchJob(input: $input) { id } }`;
const WATCH = `subscription($runId: ID!) { runProgress(runId: $runId) { type cursor } }`;

/** POSTs a mutation and returns status, Retry-After and body. */
async function post(url: string, tok: string, query: string, variables: Record<string, unknown>) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${tok}` },
    body: JSON.stringify({ query, variables }),
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as any };
}

describe('mutation rate limit (Redis-backed)', () => {
  it('holds across two instances: a burst beyond the limit gets RATE_LIMITED with retry-after, then recovers', async () => {
    // A slow refill (one token per 2 s), so a loaded machine cannot earn tokens back during the burst.
    const limits = { rateLimitPerSecond: 0.5, rateLimitBurst: 4 };
    const a = await startTestServer({ backend: 'redis', config: limits });
    const b = await startTestServer({ backend: 'redis', config: limits });
    const tok = await token({ inst: freshInstitute() });
    const create = (server: typeof a, i: number) => post(server.url, tok, CREATE, { input: { name: `burst ${i}` } });

    // The bucket holds 4: spread over both instances, 4 pass and the 5th is refused wherever it lands.
    const results = [];
    for (let i = 0; i < 6; i++) results.push(await create(i % 2 ? b : a, i));
    const ok = results.filter((r) => r.body.data?.createBatchJob?.id);
    const refused = results.filter((r) => r.body.errors?.[0]?.extensions?.code === 'RATE_LIMITED');
    // A very slow machine (over 2 s for the burst) may earn one token back.
    expect(ok.length).toBeGreaterThanOrEqual(4);
    expect(ok.length).toBeLessThanOrEqual(5);
    expect(refused.length).toBe(6 - ok.length);
    expect(results.slice(0, 4).every((r) => r.body.data?.createBatchJob?.id)).toBe(true);

    const last = refused.at(-1)!;
    expect(last.status).toBe(429);
    const retryAfterSeconds = last.body.errors[0].extensions.retryAfterSeconds as number;
    expect(retryAfterSeconds).toBeGreaterThan(0);
    expect(retryAfterSeconds).toBeLessThanOrEqual(2.001); // one token at 0.5/s
    expect(Number(last.retryAfter)).toBe(Math.ceil(retryAfterSeconds));
    expect(last.body.data?.createBatchJob ?? null).toBeNull();

    // Another user is not affected.
    const other = await token({ inst: freshInstitute() });
    expect((await post(b.url, other, CREATE, { input: { name: 'other user' } })).body.data.createBatchJob.id).toBeTruthy();

    // Waiting the hinted time is enough, on either instance (bounded: the hint is at most 2 s).
    await new Promise((resolve) => setTimeout(resolve, Math.ceil(retryAfterSeconds * 1000) + 20));
    const recovered = await create(b, 99);
    expect(recovered.status).toBe(200);
    expect(recovered.body.data.createBatchJob.id).toBeTruthy();

    const metricsA = await scrape(a.url);
    const metricsB = await scrape(b.url);
    const limited = (m: typeof metricsA) => m.value('runwatch_rate_limited_total', { limit: 'mutations' });
    expect(limited(metricsA) + limited(metricsB)).toBe(refused.length);
    expect(metricsA.value('runwatch_graphql_operations_total', { outcome: 'RATE_LIMITED' }) + metricsB.value('runwatch_graphql_operations_total', { outcome: 'RATE_LIMITED' })).toBe(
      refused.length,
    );
  });

  it('does not limit queries', async () => {
    const server = await startTestServer({ config: { rateLimitPerSecond: 1, rateLimitBurst: 1 } });
    const tok = await token({ inst: freshInstitute() });
    for (let i = 0; i < 5; i++) expect((await gql(server.url, tok, `{ batchJobs(first: 1) { nodes { id } } }`)).batchJobs).toBeTruthy();
  });
});

// Each test has its own server and waits out a token's lifetime (whole seconds, as JWT `exp` is):
// they run at the same time, so the file waits about 4 s instead of the sum of their waits.
describe.concurrent('live token expiry', () => {
  it('closes a WebSocket with 4403 when its token expires during a subscription', async () => {
    const server = await startTestServer();
    const institute = freshInstitute();
    const owner = await token({ inst: institute });
    const { createBatchJob: job } = await gql(server.url, owner, CREATE, { input: { name: 'long', total: 10 } });
    const shortLived = await token({ sub: 'short-lived', inst: institute }, 2);
    const closed = deferred<{ code: number; reason: string }>();
    const events = subscribeWs(wsClient(server.url, shortLived, { onClose: (code, reason) => closed.resolve({ code, reason }) }), WATCH, { runId: job.id }, 'runProgress');
    await events.waitForCount(1);
    expect(events.items[0].type).toBe('SNAPSHOT');
    const { code, reason } = await withTimeout(closed.promise, 6000, 'the 4403 close at token expiry');
    expect(code).toBe(4403);
    expect(reason).toMatch(/expired/);
    const metrics = await scrape(server.url);
    expect(metrics.value('runwatch_token_expiry_closes_total', { transport: 'ws' })).toBe(1);
  });

  it('terminates the socket of an expired WebSocket whose client stopped reading, within the close grace (not ws\'s 30 s)', async () => {
    const server = await startTestServer();
    const serverSockets = new Map<number, Socket>();
    server.httpServer.on('connection', (socket: Socket) => serverSockets.set(socket.remotePort!, socket));
    const institute = freshInstitute();
    const owner = await token({ inst: institute });
    const { createBatchJob: job } = await gql(server.url, owner, CREATE, { input: { name: 'stalled expiry', total: 10 } });
    const shortLived = await token({ sub: 'stalled-expiry', inst: institute }, 2);
    const exp = (JSON.parse(Buffer.from(shortLived.split('.')[1]!, 'base64url').toString()) as { exp: number }).exp * 1000;
    const stuck = new WebSocket(server.url.replace(/^http/, 'ws'), 'graphql-transport-ws');
    const snapshot = deferred();
    stuck.on('open', () => stuck.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${shortLived}` } })));
    stuck.on('message', (raw) => {
      const msg = JSON.parse(String(raw));
      if (msg.type === 'connection_ack') stuck.send(JSON.stringify({ id: 's', type: 'subscribe', payload: { query: WATCH, variables: { runId: job.id } } }));
      if (msg.type === 'next') snapshot.resolve();
    });
    stuck.on('error', () => {}); // it is terminated
    await withTimeout(snapshot.promise, 5000, 'the SNAPSHOT');
    const clientSocket = (stuck as unknown as { _socket: Socket })._socket;
    clientSocket.pause(); // never reads its close frame, so never answers it
    const serverSide = serverSockets.get(clientSocket.localPort!)!;
    expect(serverSide).toBeTruthy();
    const gone = deferred<number>();
    serverSide.once('close', () => gone.resolve(Date.now()));
    // Expiry (at `exp`, one timer per server) + the close grace (3 s, swept every 0.75 s); ws alone would wait 30 s.
    const goneAt = await withTimeout(gone.promise, 15_000, 'the expired, unread socket to be terminated');
    expect(goneAt).toBeGreaterThanOrEqual(exp + DEFAULT_CLOSE_GRACE_MS - 100);
    expect(goneAt - exp).toBeLessThan(DEFAULT_CLOSE_GRACE_MS + 4000);
    const metrics = await scrape(server.url);
    expect(metrics.value('runwatch_token_expiry_closes_total', { transport: 'ws' })).toBe(1);
    clientSocket.destroy();
  });

  it("closes each WebSocket at its own token's expiry, never before it, and leaves a long-lived token's connection subscribed", async () => {
    const server = await startTestServer();
    const institute = freshInstitute();
    const owner = await token({ inst: institute });
    const { createBatchJob: job } = await gql(server.url, owner, CREATE, { input: { name: 'long', total: 10 } });
    const expOf = (tok: string) => (JSON.parse(Buffer.from(tok.split('.')[1]!, 'base64url').toString()) as { exp: number }).exp * 1000;
    const open = (tok: string) => {
      const closed = deferred<{ code: number; at: number }>();
      const events = subscribeWs(wsClient(server.url, tok, { onClose: (code) => closed.resolve({ code, at: Date.now() }) }), WATCH, { runId: job.id }, 'runProgress');
      return { tok, closed, events };
    };
    const soon = open(await token({ sub: 'soon', inst: institute }, 2));
    const later = open(await token({ sub: 'later', inst: institute }, 4));
    const long = open(await token({ sub: 'long', inst: institute }, 3600));
    await Promise.all([soon, later, long].map((c) => c.events.waitForCount(1)));
    const first = await withTimeout(soon.closed.promise, 6000, 'the first 4403 close');
    const second = await withTimeout(later.closed.promise, 8000, 'the second 4403 close');
    expect([first.code, second.code]).toEqual([4403, 4403]);
    expect(first.at).toBeGreaterThanOrEqual(expOf(soon.tok));
    expect(second.at).toBeGreaterThanOrEqual(expOf(later.tok));
    // The long-lived connection is still open and subscribed: it gets the next event.
    await gql(server.url, owner, `mutation($input: ReportProgressInput!) { reportProgress(input: $input) { completed } }`, {
      input: { jobId: job.id, completedDelta: 1, stage: 'after the expiries' },
    });
    await long.events.waitFor((items) => items.some((e) => e.type !== 'SNAPSHOT'), 'an event after the other connections expired');
    const metrics = await scrape(server.url);
    expect(metrics.value('runwatch_token_expiry_closes_total', { transport: 'ws' })).toBe(2);
  });

  it("ends a view token's SSE subscription with UNAUTHENTICATED (expired) when the token expires", async () => {
    const server = await startTestServer();
    const institute = freshInstitute();
    const owner = await token({ inst: institute });
    const { createBatchJob: job } = await gql(server.url, owner, CREATE, { input: { name: 'shared view', total: 10 } });
    const view = await token({ inst: institute, scope: 'jobs:read', job: job.id }, 2);
    const events = subscribeSse(server.url, view, WATCH, { runId: job.id }, 'runProgress');
    await events.waitForCount(1);
    await events.done(6000);
    expect(events.items.map((e) => e.type)).toEqual(['SNAPSHOT']);
    expect(JSON.stringify(events.errors)).toContain('UNAUTHENTICATED');
    expect(JSON.stringify(events.errors)).toContain('expired');
    const metrics = await scrape(server.url);
    expect(metrics.value('runwatch_token_expiry_closes_total', { transport: 'sse' })).toBe(1);
    expect(metrics.value('runwatch_connections_open', { transport: 'sse' })).toBe(0);
  });
});

/** Opens a raw WebSocket with the graphql-ws subprotocol and resolves with how the upgrade went. */
function upgrade(url: string, headers: Record<string, string>): Promise<{ opened: boolean; status?: number }> {
  return withTimeout(
    new Promise((resolve) => {
      const socket = new WebSocket(url.replace(/^http/, 'ws'), 'graphql-transport-ws', { headers });
      socket.once('open', () => {
        socket.close(1000);
        resolve({ opened: true });
      });
      socket.once('unexpected-response', (_req, res) => {
        resolve({ opened: false, status: res.statusCode });
        socket.terminate();
      });
      socket.once('error', () => resolve({ opened: false }));
    }),
    5000,
    'the WebSocket upgrade',
  );
}

describe('origins', () => {
  it('refuses a WebSocket from a browser origin that is not allowed, and accepts allowed, same-origin and non-browser clients', async () => {
    const server = await startTestServer({ config: { allowedOrigins: ['https://app.example.com'] } });
    const self = new URL(server.url).origin;
    expect(await upgrade(server.url, { Origin: 'https://evil.example.net' })).toEqual({ opened: false, status: 403 });
    expect(await upgrade(server.url, { Origin: 'https://app.example.com' })).toEqual({ opened: true });
    expect(await upgrade(server.url, { Origin: self })).toEqual({ opened: true });
    expect(await upgrade(server.url, {})).toEqual({ opened: true });
    const metrics = await scrape(server.url);
    expect(metrics.value('runwatch_connections_refused_total', { transport: 'ws', reason: 'origin' })).toBe(1);
  });

  it('sends CORS headers only to allowed origins', async () => {
    const server = await startTestServer({ config: { allowedOrigins: ['https://app.example.com'] } });
    const preflight = (origin: string) =>
      fetch(server.url, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' } });
    const allowed = await preflight('https://app.example.com');
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(allowed.headers.get('access-control-allow-headers')).toContain('authorization');
    const refused = await preflight('https://evil.example.net');
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('caps', () => {
  it('refuses a subscription over the per-connection cap with RATE_LIMITED and keeps the connection', async () => {
    const server = await startTestServer({ config: { maxSubscriptionsPerConnection: 2 } });
    const tok = await token({ inst: freshInstitute() });
    const { createBatchJob: job } = await gql(server.url, tok, CREATE, { input: { name: 'capped' } });
    const client = wsClient(server.url, tok);
    const first = subscribeWs(client, WATCH, { runId: job.id }, 'runProgress');
    const second = subscribeWs(client, WATCH, { runId: job.id }, 'runProgress');
    await first.waitForCount(1);
    await second.waitForCount(1);
    const third = subscribeWs(client, WATCH, { runId: job.id }, 'runProgress');
    await third.done();
    expect(JSON.stringify(third.errors)).toContain('RATE_LIMITED');
    // The connection is still up: the first two still get events.
    await gql(server.url, tok, `mutation($id: ID!) { completeBatchJob(id: $id) { status } }`, { id: job.id });
    expect((await first.done()).at(-1).type).toBe('COMPLETED');
    expect((await second.done()).at(-1).type).toBe('COMPLETED');
  });

  it('closes a WebSocket over the per-user connection cap with 1013 (try again later)', async () => {
    const server = await startTestServer({ config: { maxConnectionsPerUser: 1 } });
    const tok = await token({ inst: freshInstitute() });
    const { createBatchJob: job } = await gql(server.url, tok, CREATE, { input: { name: 'one socket' } });
    const first = subscribeWs(wsClient(server.url, tok), WATCH, { runId: job.id }, 'runProgress');
    await first.waitForCount(1);
    const closed = deferred<number>();
    const second = subscribeWs(wsClient(server.url, tok, { onClose: (code) => closed.resolve(code) }), WATCH, { runId: job.id }, 'runProgress');
    expect(await withTimeout(closed.promise, 5000, 'the second socket to close')).toBe(1013);
    await second.done();
    expect(second.items).toHaveLength(0);
    // SSE streams count against the same cap: refused with RATE_LIMITED, HTTP 429.
    const sse = await post(server.url, tok, WATCH, { runId: job.id });
    expect(sse.status).toBe(429);
    expect(sse.body.errors[0].extensions).toMatchObject({ code: 'RATE_LIMITED', limit: 'connections_per_user' });
  });
});
