/**
 * Commands for every job through the public API: a CANCEL sent to a BATCH job
 * reaches a worker subscribed to `jobCommands` (on another instance when two
 * share Redis) and its acknowledgement cancels the job; unanswered commands
 * expire; bad input is refused with the contract's code and changes nothing;
 * training commands are the same commands under their training names.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { errorCode, gql, gqlHttp, subscribeWs, wsClient } from '../helpers/clients.js';
import { freshInstitute, startTestServer, token } from '../helpers/servers.js';

const CREATE = `mutation($name: String!, $kind: JobKind) { createBatchJob(input: { name: $name, kind: $kind }) { id } }`;
const REPORT = `mutation($id: ID!) { reportProgress(input: { jobId: $id, completedDelta: 1 }) { status } }`;
const SEND = `mutation($jobId: ID!, $command: JobCommandKind!, $name: String, $args: JSON, $ttl: Int) {
  sendJobCommand(jobId: $jobId, command: $command, name: $name, args: $args, ttlSeconds: $ttl) { id jobId command name state args } }`;
const ACK = `mutation($id: ID!, $accepted: Boolean!, $message: String) {
  acknowledgeJobCommand(id: $id, accepted: $accepted, message: $message) { id state message } }`;
const LIST = `query($jobId: ID!) { jobCommands(jobId: $jobId) { id command name state message } }`;
const WORKER = `subscription($jobId: ID!) { jobCommands(jobId: $jobId) { id command name args state } }`;
const JOB = `query($id: ID!) { batchJob(id: $id) { status message } }`;

const SETUPS = [
  { name: 'one in-memory instance', backend: 'memory' as const, instances: 1 },
  { name: 'two instances sharing Redis', backend: 'redis' as const, instances: 2 },
];

describe.each(SETUPS)('job commands on $name', ({ backend, instances }) => {
  let pub: RunningServer; // where people send commands
  let sub: RunningServer; // where the worker listens
  let inst: string;
  let controller: string;
  let worker: string;
  beforeAll(async () => {
    pub = await startTestServer({ backend });
    sub = instances === 2 ? await startTestServer({ backend }) : pub;
    inst = freshInstitute();
    controller = await token({ inst, scope: 'jobs:read jobs:control' });
    worker = await token({ inst, scope: 'jobs:read jobs:write' });
  });

  it('a CANCEL sent to a BATCH job reaches its worker; the acknowledgement cancels the job', async () => {
    const jobId = (await gql(pub.url, worker, CREATE, { name: 'embed' })).createBatchJob.id;
    await gql(pub.url, worker, REPORT, { id: jobId });
    const listening = subscribeWs(wsClient(sub.url, worker), WORKER, { jobId }, 'jobCommands');
    // Sent before and after the worker's stream opens: both arrive, in order.
    const custom = (await gql(pub.url, controller, SEND, { jobId, command: 'CUSTOM', name: 'flush-cache', args: { level: 2 } })).sendJobCommand;
    expect(custom).toMatchObject({ jobId, command: 'CUSTOM', name: 'flush-cache', state: 'PENDING', args: { level: 2 } });
    await listening.waitForCount(1);
    const cancel = (await gql(pub.url, controller, SEND, { jobId, command: 'CANCEL', args: { reason: 'wrong model' } })).sendJobCommand;
    await listening.waitForCount(2);
    expect(listening.items.map((c) => [c.id, c.command])).toEqual([
      [custom.id, 'CUSTOM'],
      [cancel.id, 'CANCEL'],
    ]);
    expect(listening.items[1]).toMatchObject({ args: { reason: 'wrong model' }, state: 'PENDING' });

    await gql(sub.url, worker, ACK, { id: custom.id, accepted: false, message: 'no cache here' });
    const acked = (await gql(sub.url, worker, ACK, { id: cancel.id, accepted: true, message: 'stopped after item 1' })).acknowledgeJobCommand;
    expect(acked).toMatchObject({ state: 'ACKNOWLEDGED', message: 'stopped after item 1' });
    listening.dispose();
    expect((await gql(pub.url, controller, JOB, { id: jobId })).batchJob).toMatchObject({ status: 'CANCELLED', message: 'stopped after item 1' });
    expect((await gql(pub.url, controller, LIST, { jobId })).jobCommands).toEqual([
      { id: cancel.id, command: 'CANCEL', name: null, state: 'ACKNOWLEDGED', message: 'stopped after item 1' },
      { id: custom.id, command: 'CUSTOM', name: 'flush-cache', state: 'REJECTED', message: 'no cache here' },
    ]);
    // Answered is answered: a second answer is a CONFLICT; a finished job takes no new command.
    expect(errorCode((await gqlHttp(sub.url, worker, ACK, { id: cancel.id, accepted: true })).body)).toBe('CONFLICT');
    expect(errorCode((await gqlHttp(pub.url, controller, SEND, { jobId, command: 'PAUSE' })).body)).toBe('CONFLICT');
  });

  it('PAUSE and RESUME acknowledged move the job; training names and job names are one command log', async () => {
    const jobId = (await gql(pub.url, worker, CREATE, { name: 'train', kind: 'TRAINING' })).createBatchJob.id;
    await gql(pub.url, worker, REPORT, { id: jobId });
    const pause = (await gql(pub.url, controller, SEND, { jobId, command: 'PAUSE' })).sendJobCommand;
    await gql(sub.url, worker, ACK, { id: pause.id, accepted: true });
    expect((await gql(pub.url, controller, JOB, { id: jobId })).batchJob.status).toBe('PAUSED');
    const resume = (await gql(pub.url, controller, SEND, { jobId, command: 'RESUME' })).sendJobCommand;
    await gql(sub.url, worker, ACK, { id: resume.id, accepted: true });
    expect((await gql(pub.url, controller, JOB, { id: jobId })).batchJob.status).toBe('RUNNING');

    // A training STOP is a CANCEL to a jobCommands worker; a CUSTOM without a training name stays off trainingCommands.
    const trainingSend = `mutation($runId: ID!) { sendTrainingCommand(runId: $runId, command: STOP) { id command } }`;
    const stop = (await gql(pub.url, controller, trainingSend, { runId: jobId })).sendTrainingCommand;
    await gql(pub.url, controller, SEND, { jobId, command: 'CUSTOM', name: 'reload' });
    const asJob = subscribeWs(wsClient(sub.url, worker), WORKER, { jobId }, 'jobCommands');
    await asJob.waitForCount(2);
    expect(asJob.items.map((c) => [c.command, c.name])).toEqual([
      ['CANCEL', null],
      ['CUSTOM', 'reload'],
    ]);
    expect(asJob.items[0].id).toBe(stop.id);
    asJob.dispose();
    const recent = (await gql(pub.url, controller, `query($runId: ID!) { recentTrainingCommands(runId: $runId) { command } }`, { runId: jobId }))
      .recentTrainingCommands;
    expect(recent.map((c: { command: string }) => c.command)).toEqual(['STOP', 'RESUME', 'PAUSE']);
  });

  it('refuses bad input with the contract code and sends nothing', async () => {
    const jobId = (await gql(pub.url, worker, CREATE, { name: 'refusals' })).createBatchJob.id;
    const refused = async (vars: Record<string, unknown>, tok = controller) => errorCode((await gqlHttp(pub.url, tok, SEND, { jobId, ...vars })).body);
    expect(await refused({ command: 'CUSTOM' })).toBe('BAD_USER_INPUT');
    expect(await refused({ command: 'CANCEL', name: 'why' })).toBe('BAD_USER_INPUT');
    expect(await refused({ command: 'CUSTOM', name: 'x'.repeat(101) })).toBe('BAD_USER_INPUT');
    expect(await refused({ command: 'CANCEL', ttl: 0 })).toBe('BAD_USER_INPUT');
    expect(await refused({ command: 'CANCEL', jobId: 'j_missing' })).toBe('NOT_FOUND');
    expect(await refused({ command: 'CANCEL' }, worker)).toBe('FORBIDDEN');
    const other = await token({ inst: freshInstitute() });
    const foreign = await gqlHttp(pub.url, other, SEND, { jobId, command: 'CANCEL' });
    expect(errorCode(foreign.body)).toBe('NOT_FOUND');
    expect(foreign.body.errors?.[0]?.message).toBe(`no job with id "${jobId}"`);
    const otherWorker = subscribeWs(wsClient(sub.url, other), WORKER, { jobId }, 'jobCommands');
    await otherWorker.done();
    expect(JSON.stringify(otherWorker.errors)).toContain('NOT_FOUND');
    expect((await gql(pub.url, controller, LIST, { jobId })).jobCommands).toEqual([]);
  });
});

describe('job commands expire', () => {
  it('an unanswered command is EXPIRED after its ttl: no longer delivered, too late to answer', async () => {
    let skewMs = 0;
    const server = await startTestServer({ backend: 'memory', clock: () => Date.now() + skewMs });
    const tok = await token({ inst: freshInstitute() });
    const jobId = (await gql(server.url, tok, CREATE, { name: 'expiry' })).createBatchJob.id;
    const old = (await gql(server.url, tok, SEND, { jobId, command: 'CANCEL', ttl: 5 })).sendJobCommand;
    skewMs = 6000;
    const fresh = (await gql(server.url, tok, SEND, { jobId, command: 'PAUSE' })).sendJobCommand;
    const states = (await gql(server.url, tok, LIST, { jobId })).jobCommands.map((c: { state: string }) => c.state);
    expect(states).toEqual(['PENDING', 'EXPIRED']);
    const c = subscribeWs(wsClient(server.url, tok), WORKER, { jobId }, 'jobCommands');
    await c.waitForCount(1);
    expect(c.items.map((x) => x.id)).toEqual([fresh.id]);
    c.dispose();
    expect(errorCode((await gqlHttp(server.url, tok, ACK, { id: old.id, accepted: true })).body)).toBe('CONFLICT');
    expect((await gql(server.url, tok, JOB, { id: jobId })).batchJob.status).toBe('QUEUED');
  });
});
