/**
 * The HTTP plan path (src/transport/planned-http.ts): a query or mutation
 * whose document was validated before is answered without Yoga's per-request
 * HTTP machinery — and the answer is the one Yoga gives. Each case sends the
 * same request twice to one server: once with a `Content-Length` (the plan
 * path, once the document is known) and once chunked (which always goes to
 * Yoga), and compares status, headers that matter and body. A counting
 * plugin proves which path each request took (the plan path asks no plugin to parse).
 */
import { request } from 'node:http';
import type { Plugin } from 'graphql-yoga';
import { describe, expect, it } from 'vitest';
import { freshInstitute, startTestServer, token } from '../helpers/servers.js';

const CREATE = `mutation($input: CreateBatchJobInput!) { createBatchJob(input: $input) { id name status } }`;
const REPORT = `mutation($input: ReportProgressInput!) { reportProgress(input: $input) { completed } }`;

interface Reply {
  status: number;
  contentType: string | undefined;
  retryAfter: string | undefined;
  wwwAuthenticate: string | undefined;
  /** Every response header but those of the moment and the framing (date, connection, keep-alive, content-length, transfer-encoding). */
  headers: Record<string, unknown>;
  body: string;
}

const PER_RESPONSE = new Set(['date', 'connection', 'keep-alive', 'content-length', 'transfer-encoding']);

/** POSTs `body` to `url`, with a Content-Length or chunked, and the given headers. */
function post(url: string, body: string, opts: { chunked?: boolean; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...opts.headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode!,
          contentType: res.headers['content-type'],
          retryAfter: res.headers['retry-after'] as string | undefined,
          wwwAuthenticate: res.headers['www-authenticate'] as string | undefined,
          headers: Object.fromEntries(Object.entries(res.headers).filter(([name]) => !PER_RESPONSE.has(name))),
          body: text,
        }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    if (opts.chunked) {
      req.setHeader('transfer-encoding', 'chunked');
      req.write(body.slice(0, 5));
      req.end(body.slice(5));
    } else {
      req.setHeader('content-length', Buffer.byteLength(body));
      req.end(body);
    }
  });
}

/** A server with a plugin counting the parses the envelop is asked for. */
async function countingServer(config: Parameters<typeof startTestServer>[0] = {}) {
  const counts = { parses: 0 };
  const counting: Plugin = {
    onParse: () => {
      counts.parses++;
    },
  };
  const server = await startTestServer({ ...config, plugins: [counting] });
  return { server, counts };
}

describe('HTTP plan path', () => {
  it('answers a known mutation without parsing it again, exactly as Yoga does, errors and status codes included', async () => {
    const { server, counts } = await countingServer();
    const institute = freshInstitute();
    const tok = await token({ inst: institute });
    const auth = { authorization: `Bearer ${tok}` };
    const send = async (body: object, headers: Record<string, string> = auth) => {
      const text = JSON.stringify(body);
      const before = counts.parses;
      const viaYoga = await post(server.url, text, { chunked: true, headers });
      const yogaParsed = counts.parses - before;
      const planned = await post(server.url, text, { headers });
      return { viaYoga, planned, yogaParsed, plannedParsed: counts.parses - before - yogaParsed };
    };

    // A success: the same shape and status; the plan path parsed nothing.
    const created = await send({ query: CREATE, variables: { input: { name: 'planned' } } });
    expect(created.yogaParsed).toBe(1);
    expect(created.plannedParsed).toBe(0);
    expect(created.planned.status).toBe(200);
    expect(created.planned.contentType).toBe(created.viaYoga.contentType);
    expect(created.planned.headers).toEqual(created.viaYoga.headers);
    const job = JSON.parse(created.planned.body).data.createBatchJob;
    expect(job).toMatchObject({ name: 'planned', status: 'QUEUED' });
    expect(JSON.parse(created.viaYoga.body).data.createBatchJob.id).not.toBe(job.id);

    // A report to the job: both change it, in order.
    const reported = await send({ query: REPORT, variables: { input: { jobId: job.id, completedDelta: 2 } } });
    expect(JSON.parse(reported.viaYoga.body)).toEqual({ data: { reportProgress: { completed: 2 } } });
    expect(JSON.parse(reported.planned.body)).toEqual({ data: { reportProgress: { completed: 4 } } });
    expect(reported.plannedParsed).toBe(0);

    const same = (r: { viaYoga: Reply; planned: Reply }) => expect(r.planned).toEqual(r.viaYoga);
    // Another tenant's job looks missing (NOT_FOUND), both ways.
    const missing = await send({ query: REPORT, variables: { input: { jobId: 'nope', completedDelta: 1 } } });
    same(missing);
    expect(missing.planned.body).toContain('NOT_FOUND');
    expect(missing.plannedParsed).toBe(0);
    // Bad variables (coercion), bad input (domain), a token without the scope.
    same(await send({ query: REPORT, variables: { input: { jobId: job.id, completedDelta: 'many' } } }));
    const negative = await send({ query: REPORT, variables: { input: { jobId: job.id, completedDelta: -1 } } });
    same(negative);
    expect(negative.planned.body).toContain('BAD_USER_INPUT');
    const reader = await token({ inst: institute, scope: 'jobs:read' });
    const forbidden = await send({ query: REPORT, variables: { input: { jobId: job.id, completedDelta: 1 } } }, { authorization: `Bearer ${reader}` });
    same(forbidden);
    expect(forbidden.planned.body).toContain('FORBIDDEN');

    // What goes to Yoga: no or a bad token (401), a body that is not JSON, params Yoga refuses, an unknown operation name.
    const unauthenticated = await send({ query: REPORT, variables: { input: { jobId: job.id, completedDelta: 1 } } }, {});
    same(unauthenticated);
    expect(unauthenticated.planned.status).toBe(401);
    expect(unauthenticated.planned.wwwAuthenticate).toBe('Bearer');
    same(await send({ query: REPORT, variables: { input: { jobId: job.id, completedDelta: 1 } } }, { authorization: 'Bearer not-a-token' }));
    const badJson = await Promise.all([post(server.url, '{"query": ', { chunked: true, headers: auth }), post(server.url, '{"query": ', { headers: auth })]);
    expect(badJson[1]).toEqual(badJson[0]);
    expect(badJson[1].status).toBe(400);
    same(await send({ query: REPORT, variables: { input: { jobId: job.id, completedDelta: 1 } }, surprise: 1 }));
    same(await send({ query: REPORT, operationName: 'Other', variables: { input: { jobId: job.id, completedDelta: 1 } } }));
    // Nothing above changed the job after the two good reports.
    const after = await send({ query: `query($id: ID!) { batchJob(id: $id) { completed } }`, variables: { id: job.id } });
    expect(JSON.parse(after.planned.body)).toEqual({ data: { batchJob: { completed: 4 } } });
    same(after);
  });

  it('keeps the mutation rate limit: a refused report gets the same 429 and Retry-After as through Yoga', async () => {
    const { server } = await countingServer({ config: { rateLimitPerSecond: 0.01, rateLimitBurst: 2 } });
    const tok = await token({ inst: freshInstitute() });
    const auth = { authorization: `Bearer ${tok}` };
    const body = JSON.stringify({ query: CREATE, variables: { input: { name: 'limited' } } });
    const first = await post(server.url, body, { chunked: true, headers: auth }); // Yoga: the document becomes known
    const second = await post(server.url, body, { headers: auth }); // the plan path, the bucket's last token
    expect([first.status, second.status]).toEqual([200, 200]);
    const refusedPlanned = await post(server.url, body, { headers: auth });
    const refusedYoga = await post(server.url, body, { chunked: true, headers: auth });
    expect(refusedPlanned.status).toBe(429);
    expect(refusedPlanned.body).toContain('RATE_LIMITED');
    expect(Number(refusedPlanned.retryAfter)).toBeGreaterThan(0);
    // The same answer but for the seconds left, which run on between the two.
    const timeless = (r: Reply) => ({ ...r, retryAfter: undefined, headers: { ...r.headers, 'retry-after': 'N' }, body: r.body.replace(/\d+\.\d+/g, 'N') });
    expect(timeless(refusedPlanned)).toEqual(timeless(refusedYoga));
  });
});
