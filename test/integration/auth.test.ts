/**
 * Authentication, scopes, tenancy and document limits, as clients see them.
 */
import { SignJWT } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { LIMITS } from '../../src/transport/yoga.js';
import { deferred, errorCode, gql, gqlHttp, subscribeSse, subscribeWs, withTimeout, wsClient } from '../helpers/clients.js';
import { freshInstitute, startTestServer, token } from '../helpers/servers.js';

const CREATE = `mutation($name: String!) { createBatchJob(input: { name: $name, total: 10 }) { id } }`;
const GET = `query($id: ID!) { batchJob(id: $id) { id name } }`;
const WATCH = `subscription($runId: ID!) { runProgress(runId: $runId) { type job { completed } } }`;

describe('authentication and tenancy', () => {
  let server: RunningServer;
  let ownerTok: string;
  let jobId: string;

  beforeAll(async () => {
    server = await startTestServer();
    const inst = freshInstitute();
    ownerTok = await token({ inst });
    jobId = (await gql(server.url, ownerTok, CREATE, { name: 'secret run' })).createBatchJob.id;
  });

  it('answers 401 UNAUTHENTICATED without a token', async () => {
    const { status, body } = await gqlHttp(server.url, null, GET, { id: jobId });
    expect(status).toBe(401);
    expect(errorCode(body)).toBe('UNAUTHENTICATED');
  });

  it('refuses a token with a bad signature', async () => {
    const forged = await token({}, 3600, 'another-secret-that-is-long-enough-0123456789');
    const { status, body } = await gqlHttp(server.url, forged, GET, { id: jobId });
    expect(status).toBe(401);
    expect(body.errors?.[0]?.extensions?.reason).toBe('invalid');
  });

  it('refuses an expired token', async () => {
    const expired = await new SignJWT({ scope: 'jobs:read' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('late')
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(new TextEncoder().encode(server.jwtSecret));
    const { status, body } = await gqlHttp(server.url, expired, GET, { id: jobId });
    expect(status).toBe(401);
    expect(body.errors?.[0]?.extensions?.reason).toBe('expired');
  });

  it('refuses a token that is not HS256 (alg none)', async () => {
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"sub":"x","scope":"admin"}').toString('base64url')}.`;
    expect((await gqlHttp(server.url, none, GET, { id: jobId })).status).toBe(401);
  });

  it('answers FORBIDDEN for a field whose scope the token lacks, and changes nothing', async () => {
    const reader = await token({ inst: freshInstitute(), scope: 'jobs:read' });
    const { body } = await gqlHttp(server.url, reader, CREATE, { name: 'nope' });
    expect(errorCode(body)).toBe('FORBIDDEN');
    const list = await gql(server.url, reader, `{ batchJobs { edges { node { id } } } }`);
    expect(list.batchJobs.edges).toEqual([]);
    const cancel = await gqlHttp(server.url, ownerTok.replace(/.*/, reader), `mutation($id: ID!) { cancelBatchJob(id: $id) { id } }`, { id: jobId });
    expect(errorCode(cancel.body)).toBe('FORBIDDEN');
  });

  it("hides another tenant's job exactly like a missing one (query, list, mutation, subscription)", async () => {
    const other = await token({ inst: freshInstitute() });
    const seen = await gql(server.url, other, GET, { id: jobId });
    const missing = await gql(server.url, other, GET, { id: 'j_does_not_exist' });
    expect(seen).toEqual({ batchJob: null });
    expect(missing).toEqual({ batchJob: null });
    const list = await gql(server.url, other, `{ batchJobs { edges { node { id } } } }`);
    expect(list.batchJobs.edges).toEqual([]);
    const report = await gqlHttp(server.url, other, `mutation($id: ID!) { reportProgress(input: { jobId: $id, completedDelta: 1 }) { id } }`, { id: jobId });
    const reportMissing = await gqlHttp(server.url, other, `mutation($id: ID!) { reportProgress(input: { jobId: $id, completedDelta: 1 }) { id } }`, {
      id: 'j_does_not_exist',
    });
    expect(errorCode(report.body)).toBe('NOT_FOUND');
    expect(report.body.errors![0]!.message.replace(jobId, 'ID')).toBe(reportMissing.body.errors![0]!.message.replace('j_does_not_exist', 'ID'));
    const sub = subscribeWs(wsClient(server.url, other), WATCH, { runId: jobId }, 'runProgress');
    await sub.done();
    expect(sub.items).toEqual([]);
    expect(JSON.stringify(sub.errors)).toContain('NOT_FOUND');
    const sse = subscribeSse(server.url, other, WATCH, { runId: jobId }, 'runProgress');
    await sse.done();
    expect(sse.items).toEqual([]);
    const owner = await gql(server.url, ownerTok, GET, { id: jobId });
    expect(owner.batchJob.name).toBe('secret run');
  });

  it('closes graphql-ws with 4401 for a missing or bad token and 4403 for an expired one', async () => {
    const closeCode = async (tok: string | null) => {
      const closed = deferred<number>();
      const client = wsClient(server.url, tok, { onClose: (code) => closed.resolve(code) });
      const sub = subscribeWs(client, WATCH, { runId: jobId }, 'runProgress');
      const code = await withTimeout(closed.promise, 5000, 'the socket to close');
      await sub.done();
      return code;
    };
    expect(await closeCode(null)).toBe(4401);
    expect(await closeCode('not-a-jwt')).toBe(4401);
    const expired = await new SignJWT({ scope: 'jobs:read' })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('late')
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(new TextEncoder().encode(server.jwtSecret));
    expect(await closeCode(expired)).toBe(4403);
  });
});

describe('limits', () => {
  let server: RunningServer;
  let tok: string;
  beforeAll(async () => {
    server = await startTestServer();
    tok = await token({ inst: freshInstitute() });
  });

  const stillServes = async () => {
    const { body } = await gqlHttp(server.url, tok, `{ batchJobs(first: 1) { pageInfo { hasNextPage } } }`);
    expect(body.errors).toBeUndefined();
  };

  it('refuses too many aliases', async () => {
    const aliases = Array.from({ length: 50 }, (_, i) => `a${i}: batchJob(id: "x") { id }`).join(' ');
    const { body } = await gqlHttp(server.url, tok, `{ ${aliases} }`);
    expect(body.errors?.[0]?.message).toMatch(/alias/i);
    await stillServes();
  });

  it('refuses a deeply nested document', async () => {
    const deep = `{ batchJobs { edges { node { resources { containers } } } pageInfo { hasNextPage } } }`;
    expect((await gqlHttp(server.url, tok, deep)).body.errors).toBeUndefined();
    const bomb = `{ __schema { types { fields { type ${'{ ofType '.repeat(20)}{ name }${' }'.repeat(20)} } } } }`;
    const { body } = await gqlHttp(server.url, tok, bomb);
    expect(body.errors?.[0]?.message).toMatch(/depth/i);
    await stillServes();
  });

  it('refuses a document with too many tokens', async () => {
    const fields = Array.from({ length: 3000 }, () => '__typename').join(' ');
    const { body } = await gqlHttp(server.url, tok, `{ ${fields} }`);
    expect(body.errors?.[0]?.message).toMatch(/token/i);
    await stillServes();
  });

  it('refuses an oversized body with 413', async () => {
    const res = await fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${tok}` },
      body: JSON.stringify({ query: `{ __typename }`, variables: { pad: 'x'.repeat(2_000_000) } }),
    });
    expect(res.status).toBe(413);
    await stillServes();
  });

  it('refuses an oversized chunked body (no Content-Length) with 413, and takes a small chunked one', async () => {
    const chunked = (text: string) => {
      const bytes = new TextEncoder().encode(text);
      return fetch(server.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${tok}` },
        body: new ReadableStream({
          start(controller) {
            for (let i = 0; i < bytes.length; i += 64 * 1024) controller.enqueue(bytes.subarray(i, i + 64 * 1024));
            controller.close();
          },
        }),
        duplex: 'half',
      } as RequestInit);
    };
    // Just over the limit, so the refusal comes as the last chunk is read (a client still sending a bigger body gets its connection reset).
    const overhead = JSON.stringify({ query: `{ __typename }`, variables: { pad: '' } }).length;
    const big = await chunked(JSON.stringify({ query: `{ __typename }`, variables: { pad: 'x'.repeat(LIMITS.maxBodyBytes + 1 - overhead) } }));
    expect(big.status).toBe(413);
    expect(((await big.json()) as { errors: { extensions: { code: string } }[] }).errors[0]!.extensions.code).toBe('REQUEST_ENTITY_TOO_LARGE');
    const small = await chunked(JSON.stringify({ query: `{ __typename }` }));
    expect(small.status).toBe(200);
    expect(await small.json()).toEqual({ data: { __typename: 'Query' } });
    await stillServes();
  });

  it('answers a malformed document with a syntax error over HTTP and over graphql-ws, and keeps the socket', async () => {
    const { body } = await gqlHttp(server.url, tok, `{ batchJobs( }`);
    expect(body.errors?.[0]?.message).toMatch(/Syntax Error/);
    const client = wsClient(server.url, tok);
    const bad = subscribeWs(client, `subscription { runProgress( }`, {}, 'runProgress');
    await bad.done();
    expect(JSON.stringify(bad.errors)).toMatch(/Syntax Error/);
    const ok = await new Promise<any>((resolve, reject) =>
      client.subscribe({ query: `{ batchJobs(first: 1) { pageInfo { hasNextPage } } }` }, { next: resolve, error: reject, complete: () => {} }),
    );
    expect(ok.data.batchJobs.pageInfo.hasNextPage).toBe(false);
    await stillServes();
  });

  it('masks unexpected errors and never sends a stack trace', async () => {
    const { body } = await gqlHttp(server.url, tok, `{ batchJobs(after: "%%%") { pageInfo { hasNextPage } } }`);
    expect(errorCode(body)).toBe('BAD_USER_INPUT');
    expect(JSON.stringify(body)).not.toMatch(/at \w+ \(|\.ts:\d+/);
  });
});
