/**
 * Stall detection through the public API: with `heartbeatSeconds: 1`, a
 * RUNNING job that stops reporting gets exactly one STALLED (across two
 * instances sharing Redis, each sweeping) and `stalled: true`; its next report
 * emits RECOVERED and clears it; activity shows JOB_STALLED; a negative
 * heartbeat is refused and creates nothing.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { errorCode, gql, gqlHttp, subscribeWs, wsClient } from '../helpers/clients.js';
import { freshInstitute, startTestServer, token } from '../helpers/servers.js';

const CREATE = `mutation($name: String!, $hb: Int) { createBatchJob(input: { name: $name, heartbeatSeconds: $hb }) { id heartbeatSeconds stalled } }`;
const REPORT = `mutation($id: ID!) { reportProgress(input: { jobId: $id, completedDelta: 1 }) { status stalled } }`;
const WATCH = `subscription($id: ID!) { runProgress(runId: $id) { type message job { status stalled completed } } }`;
const JOB = `query($id: ID!) { batchJob(id: $id) { status stalled heartbeatSeconds } }`;
const ACTIVITY = `subscription { activity(scope: ENVIRONMENT) { __typename ... on ActivityHint { kind jobId } } }`;

const SETUPS = [
  { name: 'one in-memory instance', backend: 'memory' as const, instances: 1 },
  { name: 'two instances sharing Redis', backend: 'redis' as const, instances: 2 },
];

describe.each(SETUPS)('stall detection on $name', ({ backend, instances }) => {
  let servers: RunningServer[];
  let tok: string;
  beforeAll(async () => {
    servers = [];
    for (let i = 0; i < instances; i++) servers.push(await startTestServer({ backend, config: { stallSweepMs: 100 } }));
    tok = await token({ inst: freshInstitute() });
  });

  it('a silent RUNNING job gets exactly one STALLED, then RECOVERED on its next report', async () => {
    const [a, b] = [servers[0]!, servers[servers.length - 1]!];
    const hints = subscribeWs(wsClient(b.url, tok), ACTIVITY, {}, 'activity');
    await hints.waitForCount(1);
    const job = (await gql(a.url, tok, CREATE, { name: 'silent worker', hb: 1 })).createBatchJob;
    expect(job).toMatchObject({ heartbeatSeconds: 1, stalled: false });
    const events = subscribeWs(wsClient(b.url, tok), WATCH, { id: job.id }, 'runProgress');
    await events.waitForCount(1);
    await gql(a.url, tok, REPORT, { id: job.id });
    await events.waitFor((items) => items.some((e) => e.type === 'STALLED'), 'STALLED', 15_000);
    const stalled = events.items.find((e) => e.type === 'STALLED');
    expect(stalled).toMatchObject({ message: 'no report for 1 s', job: { status: 'RUNNING', stalled: true } });
    expect((await gql(a.url, tok, JOB, { id: job.id })).batchJob).toMatchObject({ status: 'RUNNING', stalled: true });
    await hints.waitFor((items) => items.some((h) => h.kind === 'JOB_STALLED' && h.jobId === job.id), 'the JOB_STALLED hint');

    // A barrier instead of a sleep: a second job stalls a heartbeat later, so every instance has swept the
    // first job again (its next check is due a heartbeat after the stall) before it reports.
    const barrier = (await gql(b.url, tok, CREATE, { name: 'barrier', hb: 1 })).createBatchJob;
    const barrierEvents = subscribeWs(wsClient(a.url, tok), WATCH, { id: barrier.id }, 'runProgress');
    await barrierEvents.waitForCount(1);
    await gql(b.url, tok, REPORT, { id: barrier.id });
    await barrierEvents.waitFor((items) => items.some((e) => e.type === 'STALLED'), 'the barrier job STALLED', 15_000);
    barrierEvents.dispose();

    expect((await gql(b.url, tok, REPORT, { id: job.id })).reportProgress).toEqual({ status: 'RUNNING', stalled: false });
    await events.waitFor((items) => items.some((e) => e.type === 'RECOVERED'), 'RECOVERED');
    await gql(a.url, tok, `mutation($id: ID!) { completeBatchJob(id: $id) { status } }`, { id: job.id });
    const all = await events.done(15_000);
    const types = all.map((e) => e.type);
    expect(types.filter((t) => t === 'STALLED')).toHaveLength(1);
    expect(types.slice(types.indexOf('STALLED'))).toEqual(['STALLED', 'RECOVERED', 'COMPLETED']);
    expect(all.find((e) => e.type === 'RECOVERED').job.stalled).toBe(false);
    await hints.waitFor((items) => items.some((h) => h.kind === 'JOB_RECOVERED' && h.jobId === job.id), 'the JOB_RECOVERED hint');
    hints.dispose();
  });

  it('heartbeatSeconds defaults to RUNWATCH_STALL_SECONDS; 0 turns it off; negative is BAD_USER_INPUT and creates nothing', async () => {
    const [a] = servers;
    const inst = freshInstitute();
    const mine = await token({ inst });
    expect((await gql(a!.url, mine, CREATE, { name: 'default' })).createBatchJob.heartbeatSeconds).toBe(300);
    expect((await gql(a!.url, mine, CREATE, { name: 'off', hb: 0 })).createBatchJob.heartbeatSeconds).toBe(0);
    const refused = await gqlHttp(a!.url, mine, CREATE, { name: 'negative', hb: -1 });
    expect(errorCode(refused.body)).toBe('BAD_USER_INPUT');
    expect(refused.body.errors?.[0]?.extensions?.field).toBe('heartbeatSeconds');
    const { batchJobs } = await gql(a!.url, mine, `{ batchJobs { nodes { name } } }`);
    expect(batchJobs.nodes.map((j: { name: string }) => j.name).sort()).toEqual(['default', 'off']);
  });
});
