/**
 * Bad input never reaches an unexpected error: deeply nested JSON, variables
 * graphql-js cannot coerce, and tokens the policy refuses each get a coded
 * refusal (BAD_USER_INPUT, UNAUTHENTICATED), malformed request bodies (JSON or
 * multipart) get BAD_REQUEST, and no job changes.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { SignJWT } from 'jose';
import { ConfigError, loadConfig } from '../../src/config.js';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { MAX_JSON_DEPTH } from '../../src/schema/json-input.js';
import { deferred, errorCode, gql, gqlHttp, subscribeSse, subscribeWs, withTimeout, wsClient, type GqlResult } from '../helpers/clients.js';
import { freshInstitute, startTestServer, token } from '../helpers/servers.js';

const CREATE = `mutation($input: CreateBatchJobInput!) { createBatchJob(input: $input) { id } }`;
const GET = `query($id: ID!) { batchJob(id: $id) { id status completed failed total metadata } }`;
const LIST = `{ batchJobs(first: 100) { edges { node { id } } } }`;
const REPORT = `mutation($id: ID!, $c: Int) { reportProgress(input: { jobId: $id, completed: $c }) { completed } }`;
const COMMAND = `mutation($runId: ID!, $args: JSON) { sendTrainingCommand(runId: $runId, command: SAMPLE, args: $args) { id } }`;
const PUBLISH = `mutation($runId: ID!, $events: [TrainingEventInput!]!) { publishTrainingEvents(runId: $runId, events: $events) }`;
const WATCH = `subscription($runId: ID!) { runProgress(runId: $runId) { type job { completed } } }`;

/** An object nested `depth` levels: {"a":{"a":...{}}}. */
const nested = (depth: number): unknown => {
  let value: unknown = {};
  for (let i = 1; i < depth; i++) value = { a: value };
  return value;
};
/** A list literal / JSON array text nested `depth` levels: [[[...]]]. */
const nestedListText = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;
/** JSON text of an object nested `depth` levels (too deep for this process's JSON.stringify). */
const nestedObjectText = (depth: number) => `${'{"a":'.repeat(depth - 1)}{}${'}'.repeat(depth - 1)}`;

/** POSTs a raw JSON body (for numbers JSON.stringify cannot write, like 2^53+1 or 1e400). */
async function rawPost(url: string, tok: string, body: string): Promise<{ status: number; body: GqlResult }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${tok}` }, body });
  return { status: res.status, body: (await res.json()) as GqlResult };
}

describe('bad input gets a coded refusal and changes nothing', () => {
  let server: RunningServer;
  let tok: string;
  let jobId: string;
  let runId: string;
  let before: unknown;

  const jobNow = async () => (await gql(server.url, tok, GET, { id: jobId })).batchJob;
  const jobCount = async () => (await gql(server.url, tok, LIST)).batchJobs.edges.length;

  beforeAll(async () => {
    server = await startTestServer();
    tok = await token({ inst: freshInstitute() });
    jobId = (await gql(server.url, tok, CREATE, { input: { name: 'target', total: 100, metadata: { team: 'search' } } })).createBatchJob.id;
    await gql(server.url, tok, REPORT, { id: jobId, c: 7 });
    runId = (await gql(server.url, tok, CREATE, { input: { name: 'run', kind: 'TRAINING', total: 10 } })).createBatchJob.id;
    before = await jobNow();
  });

  describe('deeply nested JSON', () => {
    it('refuses metadata nested 2,500 levels (well under 16 KiB) with BAD_USER_INPUT naming the limit', async () => {
      const count = await jobCount();
      const text = nestedObjectText(2500);
      expect(text.length).toBeLessThan(16 * 1024);
      const { body } = await rawPost(server.url, tok, `{"query":${JSON.stringify(CREATE)},"variables":{"input":{"name":"deep","metadata":${text}}}}`);
      expect(errorCode(body)).toBe('BAD_USER_INPUT');
      expect(body.errors![0]!.message).toMatch(/nested deeper than \d+ levels/);
      expect(await jobCount()).toBe(count);
    });

    it(`refuses metadata one level over the limit (${MAX_JSON_DEPTH + 1}) and accepts it at the limit`, async () => {
      const over = await gqlHttp(server.url, tok, CREATE, { input: { name: 'over', metadata: nested(MAX_JSON_DEPTH + 1) } });
      expect(errorCode(over.body)).toBe('BAD_USER_INPUT');
      expect(over.body.errors![0]!.message).toContain(`${MAX_JSON_DEPTH} levels`);
      const at = await gqlHttp(server.url, tok, CREATE, { input: { name: 'at limit', metadata: nested(MAX_JSON_DEPTH) } });
      expect(at.body.errors).toBeUndefined();
    });

    it('refuses a deep JSON array in command args, and sends no command', async () => {
      const { body } = await rawPost(server.url, tok, `{"query":${JSON.stringify(COMMAND)},"variables":{"runId":"${runId}","args":${nestedListText(4000)}}}`);
      expect(errorCode(body)).toBe('BAD_USER_INPUT');
      const commands = await gql(server.url, tok, `query($id: ID!) { recentTrainingCommands(runId: $id) { id } }`, { id: runId });
      expect(commands.recentTrainingCommands).toEqual([]);
    });

    it('refuses a deep JSON literal written in the query text before parsing it (document nesting limit)', async () => {
      const count = await jobCount();
      const query = `mutation { createBatchJob(input: { name: "literal", metadata: ${nestedListText(MAX_JSON_DEPTH + 10)} }) { id } }`;
      const { body } = await gqlHttp(server.url, tok, query);
      expect(errorCode(body)).toBe('GRAPHQL_PARSE_FAILED');
      expect(body.errors![0]!.message).toContain('Nesting limit of 64');
      expect(await jobCount()).toBe(count);
    });

    it('refuses a deep variable the operation does not even use, before anything runs', async () => {
      const { body } = await rawPost(
        server.url,
        tok,
        `{"query":${JSON.stringify(REPORT)},"variables":{"id":"${jobId}","c":50,"junk":${nestedListText(5000)}}}`,
      );
      expect(errorCode(body)).toBe('BAD_USER_INPUT');
      expect(body.errors![0]!.message).toContain('$junk');
      expect(await jobNow()).toEqual(before);
    });

    it('refuses deep JSON over graphql-ws too', async () => {
      const client = wsClient(server.url, tok);
      const result = deferred<GqlResult>();
      client.subscribe({ query: CREATE, variables: { input: { name: 'deep ws', metadata: nested(3000) } } }, {
        next: (r) => result.resolve(r as GqlResult),
        error: (e) => result.resolve({ errors: e as GqlResult['errors'] }),
        complete: () => {},
      });
      const r = await withTimeout(result.promise, 5000, 'the refusal over graphql-ws');
      expect(errorCode(r)).toBe('BAD_USER_INPUT');
    });
  });

  describe('variables graphql-js cannot coerce', () => {
    const intCases: [string, string][] = [
      ['2^31', '2147483648'],
      ['2^53+1', '9007199254740993'],
      ['1.5', '1.5'],
      ['"12" (a string)', '"12"'],
      ['1e400 (Infinity)', '1e400'],
    ];
    for (const [label, text] of intCases) {
      it(`refuses the Int ${label} over HTTP with BAD_USER_INPUT and graphql-js's message`, async () => {
        const { body } = await rawPost(server.url, tok, `{"query":${JSON.stringify(REPORT)},"variables":{"id":"${jobId}","c":${text}}}`);
        expect(errorCode(body)).toBe('BAD_USER_INPUT');
        expect(body.errors![0]!.message).toMatch(/^Variable "\$c" got invalid value .*Int cannot represent/);
        expect(await jobNow()).toEqual(before);
      });
    }

    it('refuses the Float "NaN" with BAD_USER_INPUT', async () => {
      const query = `mutation($id: ID!, $cpu: Float!) { reportProgress(input: { jobId: $id, resources: { containers: 1, cpuCores: $cpu, memoryGb: 1, gpus: 0 } }) { completed } }`;
      const { body } = await gqlHttp(server.url, tok, query, { id: jobId, cpu: 'NaN' });
      expect(errorCode(body)).toBe('BAD_USER_INPUT');
      expect(body.errors![0]!.message).toContain('Float cannot represent');
      expect(await jobNow()).toEqual(before);
    });

    it('refuses an unknown enum value with BAD_USER_INPUT', async () => {
      const count = await jobCount();
      const { body } = await gqlHttp(server.url, tok, CREATE, { input: { name: 'x', kind: 'NOPE' } });
      expect(errorCode(body)).toBe('BAD_USER_INPUT');
      expect(body.errors![0]!.message).toContain('"NOPE"');
      expect(await jobCount()).toBe(count);
    });

    it('refuses a @oneOf input with two fields with BAD_USER_INPUT, and publishes nothing', async () => {
      const events = [{ progress: { globalStep: 3, maxStep: 10 }, log: { level: 'INFO', message: 'two at once' } }];
      const { body } = await gqlHttp(server.url, tok, PUBLISH, { runId, events });
      expect(errorCode(body)).toBe('BAD_USER_INPUT');
      expect(body.errors![0]!.message).toMatch(/exactly one key/i);
      expect((await gql(server.url, tok, GET, { id: runId })).batchJob.completed).toBe(0);
    });

    it('refuses a missing required field and a missing required variable with BAD_USER_INPUT', async () => {
      const count = await jobCount();
      const missingField = await gqlHttp(server.url, tok, CREATE, { input: { total: 3 } });
      expect(errorCode(missingField.body)).toBe('BAD_USER_INPUT');
      expect(missingField.body.errors![0]!.message).toContain('Field "name" of required type "String!" was not provided');
      const missingVariable = await gqlHttp(server.url, tok, CREATE, {});
      expect(errorCode(missingVariable.body)).toBe('BAD_USER_INPUT');
      expect(await jobCount()).toBe(count);
    });

    it('refuses a bad variable over graphql-ws (mutation and subscription) with BAD_USER_INPUT', async () => {
      const client = wsClient(server.url, tok);
      const result = deferred<GqlResult>();
      client.subscribe({ query: REPORT, variables: { id: jobId, c: 2 ** 31 } }, {
        next: (r) => result.resolve(r as GqlResult),
        error: (e) => result.resolve({ errors: e as GqlResult['errors'] }),
        complete: () => {},
      });
      const r = await withTimeout(result.promise, 5000, 'the refusal over graphql-ws');
      expect(errorCode(r)).toBe('BAD_USER_INPUT');
      expect(r.errors![0]!.message).toContain('Int cannot represent');

      const watch = subscribeWs(client, WATCH, { runId: 1.5 }, 'runProgress');
      await watch.done(5000);
      expect((watch.errors[0] as GqlResult['errors'])?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(await jobNow()).toEqual(before);
    });

    it('refuses a bad variable over SSE with BAD_USER_INPUT', async () => {
      const watch = subscribeSse(server.url, tok, WATCH, { runId: { not: 'an id' } }, 'runProgress');
      await watch.done(5000);
      expect((watch.errors[0] as GqlResult['errors'])?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    });
  });

  describe('malformed request bodies', () => {
    /** POSTs `body` with `contentType` (none: fetch sets it, e.g. a FormData boundary); status, code and message. */
    const post = async (body: BodyInit, contentType?: string) => {
      const res = await fetch(server.url, { method: 'POST', headers: { authorization: `Bearer ${tok}`, ...(contentType ? { 'content-type': contentType } : {}) }, body });
      const result = (await res.json()) as GqlResult;
      return { status: res.status, code: result.errors?.[0]?.extensions?.code, message: result.errors?.[0]?.message };
    };
    const form = (fields: Record<string, string>) => {
      const data = new FormData();
      for (const [name, value] of Object.entries(fields)) data.append(name, value);
      return data;
    };
    const mutation = JSON.stringify({ query: REPORT, variables: { id: jobId, c: 99 } });

    it('refuses a multipart body whose operations or map is not JSON, or that has no operations, with BAD_REQUEST (HTTP 400), and changes nothing', async () => {
      expect(await post(form({ operations: 'not json', map: '{}' }))).toEqual({ status: 400, code: 'BAD_REQUEST', message: 'Multipart form field "operations" must be a valid JSON string' });
      expect(await post(form({ operations: mutation, map: '[' }))).toEqual({ status: 400, code: 'BAD_REQUEST', message: 'Multipart form field "map" must be a valid JSON string' });
      expect(await post(form({ map: '{}' }))).toEqual({ status: 400, code: 'BAD_REQUEST', message: 'Missing multipart form field "operations"' });
      expect(await post('garbage', 'multipart/form-data; boundary=x')).toMatchObject({ status: 400, code: 'BAD_REQUEST' });
      expect(await jobNow()).toEqual(before);
    });

    it('still runs a well-formed multipart request', async () => {
      const res = await fetch(server.url, { method: 'POST', headers: { authorization: `Bearer ${tok}` }, body: form({ operations: JSON.stringify({ query: GET, variables: { id: jobId } }), map: '{}' }) });
      expect(res.status).toBe(200);
      expect(((await res.json()) as GqlResult).data?.batchJob).toEqual(before);
    });

    it('keeps the codes of the other malformed bodies (JSON, params, batching)', async () => {
      const json = 'application/json';
      expect(await post('not json', json)).toMatchObject({ status: 400, code: 'BAD_REQUEST', message: 'POST body sent invalid JSON.' });
      expect(await post('[1]', json)).toMatchObject({ status: 400, code: 'BAD_REQUEST' });
      expect(await post('{"query":5}', json)).toMatchObject({ status: 400, code: 'BAD_REQUEST' });
      expect(await post(JSON.stringify({ query: GET, variables: 5 }), json)).toMatchObject({ status: 400, code: 'BAD_REQUEST' });
      expect(await post('{}', json)).toMatchObject({ code: 'BAD_REQUEST', message: 'Must provide query string.' });
      expect(await post('query=%7B', 'application/x-www-form-urlencoded')).toMatchObject({ code: 'GRAPHQL_PARSE_FAILED' });
      expect(await jobNow()).toEqual(before);
    });
  });
});

describe('token policy', () => {
  let server: RunningServer;

  beforeAll(async () => {
    server = await startTestServer();
  });

  const sign = (claims: Record<string, unknown>, build: (jwt: SignJWT) => SignJWT = (j) => j) =>
    build(new SignJWT({ scope: 'jobs:read jobs:write', ...claims }).setProtectedHeader({ alg: 'HS256' }).setSubject(String(claims.sub ?? 'mallory'))).sign(
      new TextEncoder().encode(server.jwtSecret),
    );

  it("refuses an `inst` claim naming someone's personal institute (user:<sub>), and their job stays hidden", async () => {
    const alice = await token({ sub: 'alice' });
    const personalJob = (await gql(server.url, alice, CREATE, { input: { name: "alice's private run" } })).createBatchJob.id;
    const forged = await sign({ sub: 'mallory', inst: 'user:alice' }, (j) => j.setIssuedAt().setExpirationTime('1h'));
    const { status, body } = await gqlHttp(server.url, forged, GET, { id: personalJob });
    expect(status).toBe(401);
    expect(body.errors![0]!.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'invalid' });
    expect(body.errors![0]!.message).toContain('user:');
    expect(body.data?.batchJob ?? null).toBeNull();
    // graphql-ws: closed 4401 (not retried by clients).
    const closed = deferred<number>();
    const client = wsClient(server.url, forged, { onClose: (code) => closed.resolve(code) });
    subscribeWs(client, WATCH, { runId: personalJob }, 'runProgress');
    expect(await withTimeout(closed.promise, 5000, 'the socket to close')).toBe(4401);
    expect((await gql(server.url, alice, GET, { id: personalJob })).batchJob.id).toBe(personalJob);
  });

  it('refuses a token without exp by default (401 invalid)', async () => {
    const noExp = await sign({ sub: 'worker', inst: freshInstitute() }, (j) => j.setIssuedAt());
    const { status, body } = await gqlHttp(server.url, noExp, LIST);
    expect(status).toBe(401);
    expect(body.errors![0]!.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'invalid' });
    expect(body.errors![0]!.message).toContain('exp');
  });

  it('refuses a token living longer than the maximum lifetime (default 365 days), also with an iat in the future', async () => {
    const longLived = await sign({ sub: 'worker', inst: freshInstitute() }, (j) => j.setIssuedAt().setExpirationTime('400d'));
    const { status, body } = await gqlHttp(server.url, longLived, LIST);
    expect(status).toBe(401);
    expect(body.errors![0]!.message).toContain('lifetime');
    const nowSeconds = Math.floor(Date.now() / 1000);
    const backdated = await sign({ sub: 'worker', inst: freshInstitute() }, (j) => j.setIssuedAt(nowSeconds + 400 * 86_400).setExpirationTime(nowSeconds + 401 * 86_400));
    expect((await gqlHttp(server.url, backdated, LIST)).status).toBe(401);
    const yearly = await sign({ sub: 'worker', inst: freshInstitute() }, (j) => j.setIssuedAt().setExpirationTime('360d'));
    expect((await gqlHttp(server.url, yearly, LIST)).status).toBe(200);
  });

  it('accepts tokens without exp when the operator allows them', async () => {
    const lenient = await startTestServer({ config: { allowTokensWithoutExp: true } });
    const noExp = await new SignJWT({ scope: 'jobs:read', inst: freshInstitute() })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('worker')
      .sign(new TextEncoder().encode(lenient.jwtSecret));
    const { status, body } = await gqlHttp(lenient.url, noExp, LIST);
    expect(status).toBe(200);
    expect(body.data.batchJobs.edges).toEqual([]);
  });

  it('validates the token settings at start, naming the variable', () => {
    expect(loadConfig({ RUNWATCH_ALLOW_TOKENS_WITHOUT_EXP: 'true', RUNWATCH_MAX_TOKEN_TTL_DAYS: '0.5' })).toMatchObject({
      allowTokensWithoutExp: true,
      maxTokenTtlSeconds: 43_200,
    });
    for (const [name, value] of [
      ['RUNWATCH_ALLOW_TOKENS_WITHOUT_EXP', 'yes'],
      ['RUNWATCH_MAX_TOKEN_TTL_DAYS', '-1'],
      ['RUNWATCH_MAX_TOKEN_TTL_DAYS', 'forever'],
    ]) {
      expect(() => loadConfig({ [name!]: value })).toThrow(ConfigError);
      expect(() => loadConfig({ [name!]: value })).toThrow(name);
    }
  });

  it('`runwatch-server token` mints tokens the server accepts, and refuses a user: institute or a lifetime over the maximum', async () => {
    const bin = fileURLToPath(new URL('../../bin/runwatch-server.js', import.meta.url));
    const run = (args: string[]) =>
      promisify(execFile)(process.execPath, [bin, 'token', ...args], { env: { ...process.env, RUNWATCH_JWT_SECRET: server.jwtSecret }, timeout: 60_000 }).then(
        (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
        (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
      );
    const [minted, personal, forever] = await Promise.all([
      run(['--sub', 'carol', '--inst', freshInstitute()]),
      run(['--sub', 'mallory', '--inst', 'user:carol']),
      run(['--sub', 'carol', '--ttl', String(400 * 24 * 3600)]),
    ]);
    expect(minted.code, minted.stderr).toBe(0);
    expect((await gqlHttp(server.url, minted.stdout.trim(), LIST)).status).toBe(200);
    expect(personal.code).toBe(2);
    expect(personal.stderr).toContain('reserved');
    expect(forever.code).toBe(2);
    expect(forever.stderr).toContain('RUNWATCH_MAX_TOKEN_TTL_DAYS');
  });

  it('share tokens of a user in their personal institute still work', async () => {
    const bob = await token({ sub: `bob-${Date.now()}` });
    const id = (await gql(server.url, bob, CREATE, { input: { name: "bob's run" } })).createBatchJob.id;
    const share = (await gql(server.url, bob, `mutation($id: ID!) { createJobViewToken(jobId: $id) { token } }`, { id })).createJobViewToken.token;
    expect((await gql(server.url, share, GET, { id })).batchJob.id).toBe(id);
  });
});
