/**
 * Share links: a job-view token reads its one job and nothing else, cannot
 * write or mint tokens, and expires (HTTP 401, graphql-ws 4403).
 */
import { describe, expect, it } from 'vitest';
import { RunwatchClient } from '../../clients/typescript/src/client/index.js';
import { deferred, errorCode, gql, gqlHttp, subscribeWs, withTimeout, wsClient } from '../helpers/clients.js';
import { freshInstitute, startTestServer, token } from '../helpers/servers.js';

const CREATE = `mutation($name: String!) { createBatchJob(input: { name: $name, total: 10 }) { id } }`;
const SHARE = `mutation($id: ID!, $ttl: Int) { createJobViewToken(jobId: $id, ttlSeconds: $ttl) { token jobId expiresAt dashboardPath } }`;
const GET = `query($id: ID!) { batchJob(id: $id) { id name } }`;
const LIST = `{ batchJobs(first: 50) { nodes { id } } }`;
const WATCH = `subscription($runId: ID!) { runProgress(runId: $runId) { type job { id status } } }`;

describe('createJobViewToken', () => {
  it('gives a read-only token that sees its one job and no other', async () => {
    const server = await startTestServer({ backend: 'redis' });
    const inst = freshInstitute();
    const owner = await token({ inst });
    const shared = (await gql(server.url, owner, CREATE, { name: 'shared' })).createBatchJob.id;
    const sibling = (await gql(server.url, owner, CREATE, { name: 'sibling, same tenant' })).createBatchJob.id;
    const before = Date.now();
    const view = (await gql(server.url, owner, SHARE, { id: shared, ttl: 600 })).createJobViewToken;
    expect(view.jobId).toBe(shared);
    expect(Date.parse(view.expiresAt) - before).toBeGreaterThan(598_000);
    expect(Date.parse(view.expiresAt) - before).toBeLessThanOrEqual(601_000);
    expect(view.dashboardPath).toBe(`/jobs/${shared}#token=${view.token}`);

    expect((await gql(server.url, view.token, GET, { id: shared })).batchJob).toEqual({ id: shared, name: 'shared' });
    expect((await gql(server.url, view.token, GET, { id: sibling })).batchJob).toBeNull();
    expect((await gql(server.url, view.token, LIST)).batchJobs.nodes).toEqual([{ id: shared }]);
    const otherStream = subscribeWs(wsClient(server.url, view.token), WATCH, { runId: sibling }, 'runProgress');
    await otherStream.done();
    expect(JSON.stringify(otherStream.errors)).toContain('NOT_FOUND');
    const ownStream = subscribeWs(wsClient(server.url, view.token), WATCH, { runId: shared }, 'runProgress');
    await ownStream.waitFor((items) => items[0]?.type === 'SNAPSHOT' && items[0].job.id === shared, 'SNAPSHOT of the shared job');
    ownStream.dispose();

    // read-only: no writes, no new tokens (a link cannot outlive itself)
    const write = await gqlHttp(server.url, view.token, `mutation($id: ID!) { completeBatchJob(id: $id) { id } }`, { id: shared });
    expect(errorCode(write.body)).toBe('FORBIDDEN');
    const reshare = await gqlHttp(server.url, view.token, SHARE, { id: shared });
    expect(errorCode(reshare.body)).toBe('FORBIDDEN');
  });

  it("treats another tenant's job as NOT_FOUND and checks the TTL bounds", async () => {
    const server = await startTestServer();
    const owner = await token({ inst: freshInstitute() });
    const id = (await gql(server.url, owner, CREATE, { name: 'private' })).createBatchJob.id;
    const stranger = await token({ inst: freshInstitute() });
    expect(errorCode((await gqlHttp(server.url, stranger, SHARE, { id })).body)).toBe('NOT_FOUND');
    expect(errorCode((await gqlHttp(server.url, owner, SHARE, { id, ttl: 0 })).body)).toBe('BAD_USER_INPUT');
    expect(errorCode((await gqlHttp(server.url, owner, SHARE, { id, ttl: 8 * 24 * 3600 })).body)).toBe('BAD_USER_INPUT');
    const writeOnly = await token({ inst: freshInstitute(), scope: 'jobs:write' });
    expect(errorCode((await gqlHttp(server.url, writeOnly, SHARE, { id })).body)).toBe('FORBIDDEN');
  });

  it('expires: HTTP 401 UNAUTHENTICATED and graphql-ws close 4403 after ttlSeconds', async () => {
    const server = await startTestServer();
    const owner = await token({ inst: freshInstitute() });
    const id = (await gql(server.url, owner, CREATE, { name: 'brief' })).createBatchJob.id;
    const client = new RunwatchClient({ url: server.url, token: owner });
    // 3 s, not 1: exp has one-second resolution, and on a busy machine the first request may take over a second.
    const view = await client.createJobViewToken(id, 3);
    expect((await gqlHttp(server.url, view.token, GET, { id })).status).toBe(200);
    // Wait for the expiry to be observable (exp has one-second resolution), polling with a deadline.
    const expired = deferred<{ status: number; code?: string }>();
    const poll = async () => {
      const r = await gqlHttp(server.url, view.token, GET, { id });
      if (r.status === 401) expired.resolve({ status: r.status, code: errorCode(r.body) });
      else setTimeout(poll, 100);
    };
    void poll();
    expect(await withTimeout(expired.promise, 10_000, 'the view token to expire')).toEqual({ status: 401, code: 'UNAUTHENTICATED' });
    const closed = deferred<number>();
    const ws = wsClient(server.url, view.token, { onClose: (code) => closed.resolve(code) });
    subscribeWs(ws, WATCH, { runId: id }, 'runProgress');
    expect(await withTimeout(closed.promise, 5_000, 'graphql-ws close')).toBe(4403);
    await client.close();
  });
});
