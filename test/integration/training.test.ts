/**
 * Training runs through the public API, on one in-memory instance and on two
 * instances sharing Redis (the trainer talks to one, watchers to the other):
 * a simulated trainer process publishes a few hundred mixed events; filtered
 * subscribers, runProgress, cursors, commands and their scopes.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { errorCode, gql, gqlHttp, subscribeWs, withTimeout, wsClient } from '../helpers/clients.js';
import { freshInstitute, startTestServer, token } from '../helpers/servers.js';
import { SAMPLE_EVERY, VALIDATE_EVERY } from '../fixtures/training-plan.js';

const TRAINER = fileURLToPath(new URL('../fixtures/trainer.ts', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Runs the trainer as a child process; resolves with its stdout lines when it exits 0. */
function runTrainer(args: string[], onLine: (line: string) => void = () => {}): { done: Promise<string[]>; pid: number } {
  const child = spawn(process.execPath, ['--import', 'tsx', TRAINER, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let stderr = '';
  let buffer = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    let nl;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      lines.push(line);
      onLine(line);
    }
  });
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = new Promise<string[]>((resolve, reject) => {
    child.once('exit', (code) => (code === 0 ? resolve(lines) : reject(new Error(`trainer exited ${code}: ${stderr.slice(0, 2000)}`))));
  });
  return { done: withTimeout(done, 60_000, 'the trainer process'), pid: child.pid! };
}

const CREATE = `mutation($name: String!) { createBatchJob(input: { name: $name, kind: TRAINING }) { id status } }`;
const EVENT_FIELDS = `
  __typename
  ... on TrainingEventBase { cursor runId timestamp snapshot }
  ... on TrainingProgress { globalStep maxStep loss }
  ... on TrainingStatusChange { status message error }
  ... on SampleGenerated { sampleId url step }
  ... on TrainingLog { level message droppedBefore }
  ... on SystemStats { gpuMemoryUsedGb }
  ... on ValidationResult { step validationLoss metrics { name value } }`;
const TRAINING = `subscription($runId: ID!, $types: [TrainingEventType!], $after: String, $min: LogLevel) {
  trainingEvents(runId: $runId, types: $types, after: $after, minLogLevel: $min) { ${EVENT_FIELDS} } }`;
const WATCH = `subscription($runId: ID!) { runProgress(runId: $runId) { type cursor job { status completed total } } }`;
const PUBLISH = 'mutation($runId: ID!, $events: [TrainingEventInput!]!) { publishTrainingEvents(runId: $runId, events: $events) }';
const SEND = `mutation($runId: ID!, $command: TrainingCommandKind!, $args: JSON, $ttl: Int) {
  sendTrainingCommand(runId: $runId, command: $command, args: $args, ttlSeconds: $ttl) { id state command runId } }`;
const COMMAND = `query($id: ID!) { trainingCommand(id: $id) { id state message command } }`;

const SETUPS = [
  { name: 'one in-memory instance', backend: 'memory' as const, instances: 1 },
  { name: 'two instances on Redis', backend: 'redis' as const, instances: 2 },
];

describe.each(SETUPS)('training runs on $name', ({ backend, instances }) => {
  let pub: RunningServer; // where the trainer publishes
  let sub: RunningServer; // where people watch
  let inst: string;
  let tok: string;

  beforeAll(async () => {
    pub = await startTestServer({ backend });
    sub = instances === 2 ? await startTestServer({ backend }) : pub;
    inst = freshInstitute();
    tok = await token({ inst });
  });

  const createRun = async (name = 'run') => (await gql(pub.url, tok, CREATE, { name })).createBatchJob.id as string;

  it('delivers exactly the filtered types in order while runProgress follows globalStep to COMPLETED', async () => {
    const runId = await createRun('simulated');
    const maxStep = 200;
    const filtered = subscribeWs(wsClient(sub.url, tok), TRAINING, { runId, types: ['SAMPLE_GENERATED', 'VALIDATION_RESULT'] }, 'trainingEvents');
    const everything = subscribeWs(wsClient(sub.url, tok), TRAINING, { runId }, 'trainingEvents');
    const progress = subscribeWs(wsClient(sub.url, tok), WATCH, { runId }, 'runProgress');
    await everything.waitForCount(1); // the fresh start: the run is IDLE
    expect(everything.items[0]).toMatchObject({ __typename: 'TrainingStatusChange', status: 'IDLE', snapshot: true, runId });
    await progress.waitForCount(1);

    const [summary] = await runTrainer(['publish', pub.url, tok, runId, String(maxStep)]).done;
    const { published, accepted } = JSON.parse(summary!);
    expect(published).toBeGreaterThan(400);
    expect(accepted).toBeLessThanOrEqual(published);

    const got = await filtered.done();
    const expected: string[] = [];
    for (let step = 1; step <= maxStep; step++) {
      if (step % SAMPLE_EVERY === 0) expected.push(`SampleGenerated:${step}`);
      if (step % VALIDATE_EVERY === 0) expected.push(`ValidationResult:${step}`);
    }
    expect(got.map((e) => `${e.__typename}:${e.step}`)).toEqual(expected);
    const offsets = got.map((e) => Number(e.cursor.split('.').pop()));
    for (let i = 1; i < offsets.length; i++) expect(offsets[i]).toBeGreaterThan(offsets[i - 1]!);
    expect(got.every((e) => e.snapshot === false && e.runId === runId)).toBe(true);
    expect(got[0]).toMatchObject({ sampleId: 's-20', url: 'https://samples.example/20.png' });

    const all = await everything.done();
    const last = all.at(-1);
    expect(last).toMatchObject({ __typename: 'TrainingStatusChange', status: 'COMPLETED' });
    const steps = all.filter((e) => e.__typename === 'TrainingProgress').map((e) => e.globalStep);
    expect(steps.at(-1)).toBe(maxStep); // the newest progress goes out before the final status
    for (let i = 1; i < steps.length; i++) expect(steps[i]).toBeGreaterThan(steps[i - 1]);
    expect(steps.length).toBeLessThan(maxStep); // conflated

    const jobEvents = await progress.done();
    expect(jobEvents.at(-1)).toMatchObject({ type: 'COMPLETED', job: { status: 'COMPLETED', completed: maxStep, total: maxStep } });
    const completed = jobEvents.map((e) => e.job.completed);
    for (let i = 1; i < completed.length; i++) expect(completed[i]).toBeGreaterThanOrEqual(completed[i - 1]);
    expect(jobEvents.map((e) => e.type)).toContain('STARTED');
  });

  it('resumes after a cursor with no gap and no duplicate, and filters logs by level', async () => {
    const runId = await createRun('resume');
    const log = (i: number, level = 'INFO') => ({ log: { level, message: `line ${i}` } });
    await gql(pub.url, tok, PUBLISH, { runId, events: [{ status: { status: 'RUNNING' } }, log(1), log(2, 'ERROR'), log(3)] });
    const first = subscribeWs(wsClient(sub.url, tok), TRAINING, { runId }, 'trainingEvents');
    await first.waitForCount(1); // the fresh start: status RUNNING, no history replayed
    expect(first.items).toEqual([expect.objectContaining({ __typename: 'TrainingStatusChange', status: 'RUNNING', snapshot: true })]);
    await gql(pub.url, tok, PUBLISH, { runId, events: [log(4)] });
    await first.waitForCount(2);
    expect(first.items[1]).toMatchObject({ message: 'line 4', snapshot: false });
    first.dispose();
    const cursor = first.items[1].cursor;
    await gql(pub.url, tok, PUBLISH, { runId, events: [log(5, 'DEBUG'), log(6, 'WARNING'), log(7)] });
    const resumed = subscribeWs(wsClient(sub.url, tok), TRAINING, { runId, after: cursor, min: 'WARNING' }, 'trainingEvents');
    await gql(pub.url, tok, PUBLISH, { runId, events: [log(8, 'CRITICAL'), { status: { status: 'STOPPED', message: 'bye' } }] });
    const got = await resumed.done();
    expect(got.map((e) => e.message)).toEqual(['line 6', 'line 8', 'bye']);
    const { batchJob } = await gql(sub.url, tok, `query($id: ID!) { batchJob(id: $id) { status } }`, { id: runId });
    expect(batchJob.status).toBe('CANCELLED');
    // A finished run: the fresh start ends with its final status, then the stream completes.
    const late = await subscribeWs(wsClient(sub.url, tok), TRAINING, { runId }, 'trainingEvents').done();
    expect(late.at(-1)).toMatchObject({ __typename: 'TrainingStatusChange', status: 'STOPPED', snapshot: true });
  });

  it('refuses invalid batches with BAD_USER_INPUT naming the field, and other tenants with NOT_FOUND', async () => {
    const runId = await createRun('invalid');
    const bad = await gqlHttp(pub.url, tok, PUBLISH, { runId, events: [{ log: { message: 'ok' } }, { progress: { globalStep: 5, maxStep: 3 } }] });
    expect(errorCode(bad.body)).toBe('BAD_USER_INPUT');
    expect(bad.body.errors![0]!.extensions!.field).toBe('events[1].progress.globalStep');
    const two = await gqlHttp(pub.url, tok, PUBLISH, { runId, events: [{ log: { message: 'x' }, sample: { sampleId: 'a', url: 'https://x' } }] });
    expect(two.body.errors?.length).toBeGreaterThan(0); // @oneOf: exactly one member
    const other = await token({ inst: freshInstitute() });
    const foreign = await gqlHttp(pub.url, other, PUBLISH, { runId, events: [{ log: { message: 'x' } }] });
    expect(errorCode(foreign.body)).toBe('NOT_FOUND');
    const c = subscribeWs(wsClient(sub.url, other), TRAINING, { runId }, 'trainingEvents');
    await c.done();
    expect(JSON.stringify(c.errors)).toContain('NOT_FOUND');
  });

  it('delivers a PAUSE sent before the trainer subscribes, and the sender sees the acknowledgement', async () => {
    const runId = await createRun('commands');
    await gql(pub.url, tok, PUBLISH, { runId, events: [{ status: { status: 'RUNNING' } }] });
    const controller = await token({ inst, scope: 'jobs:read jobs:control' });
    const trainer = await token({ inst, scope: 'jobs:read jobs:write' });
    const reader = await token({ inst, scope: 'jobs:read' });
    const forbidden = await gqlHttp(sub.url, reader, SEND, { runId, command: 'PAUSE' });
    expect(errorCode(forbidden.body)).toBe('FORBIDDEN');
    const pause = (await gql(sub.url, controller, SEND, { runId, command: 'PAUSE', args: { reason: 'look at samples' } })).sendTrainingCommand;
    const save = (await gql(sub.url, controller, SEND, { runId, command: 'SAVE_CHECKPOINT' })).sendTrainingCommand;
    expect(pause).toMatchObject({ state: 'PENDING', command: 'PAUSE', runId });
    const readerSub = subscribeWs(wsClient(pub.url, reader), 'subscription($runId: ID!) { trainingCommands(runId: $runId) { id } }', { runId }, 'trainingCommands');
    await readerSub.done();
    expect(JSON.stringify(readerSub.errors)).toContain('FORBIDDEN');

    const lines = await runTrainer(['commands', pub.url, trainer, runId, '2']).done;
    const received = lines.map((l) => JSON.parse(l));
    expect(received.map((c) => c.command)).toEqual(['PAUSE', 'SAVE_CHECKPOINT']);
    expect(received[0]).toMatchObject({ id: pause.id, args: { reason: 'look at samples' }, state: 'PENDING' });

    expect((await gql(sub.url, controller, COMMAND, { id: pause.id })).trainingCommand).toMatchObject({ state: 'ACKNOWLEDGED', message: 'ok' });
    expect((await gql(sub.url, controller, COMMAND, { id: save.id })).trainingCommand.state).toBe('ACKNOWLEDGED');
    const { batchJob } = await gql(sub.url, controller, `query($id: ID!) { batchJob(id: $id) { status } }`, { id: runId });
    expect(batchJob.status).toBe('PAUSED');
    // Answered commands are not delivered again; a second answer is a CONFLICT.
    const again = await gqlHttp(sub.url, trainer, 'mutation($id: ID!) { acknowledgeTrainingCommand(id: $id, accepted: false) { state } }', { id: pause.id });
    expect(errorCode(again.body)).toBe('CONFLICT');
    const next = subscribeWs(wsClient(sub.url, trainer), 'subscription($runId: ID!) { trainingCommands(runId: $runId) { command } }', { runId }, 'trainingCommands');
    const resume = (await gql(pub.url, controller, SEND, { runId, command: 'RESUME' })).sendTrainingCommand;
    await next.waitForCount(1);
    expect(next.items.map((c) => c.command)).toEqual(['RESUME']);
    next.dispose();
    const other = await token({ inst: freshInstitute() });
    expect((await gql(sub.url, other, COMMAND, { id: resume.id })).trainingCommand).toBeNull();
  });
});

describe('training commands expire', () => {
  it('shows EXPIRED after the ttl and no longer delivers or accepts an answer', async () => {
    let skewMs = 0;
    const server = await startTestServer({ backend: 'memory', clock: () => Date.now() + skewMs });
    const tok = await token({ inst: freshInstitute() });
    const runId = (await gql(server.url, tok, CREATE, { name: 'expiry' })).createBatchJob.id;
    const old = (await gql(server.url, tok, SEND, { runId, command: 'STOP', ttl: 5 })).sendTrainingCommand;
    skewMs = 6000;
    const fresh = (await gql(server.url, tok, SEND, { runId, command: 'SAMPLE' })).sendTrainingCommand;
    expect((await gql(server.url, tok, COMMAND, { id: old.id })).trainingCommand.state).toBe('EXPIRED');
    const c = subscribeWs(wsClient(server.url, tok), 'subscription($runId: ID!) { trainingCommands(runId: $runId) { id command } }', { runId }, 'trainingCommands');
    await c.waitForCount(1);
    expect(c.items.map((x) => x.id)).toEqual([fresh.id]);
    c.dispose();
    const late = await gqlHttp(server.url, tok, 'mutation($id: ID!) { acknowledgeTrainingCommand(id: $id, accepted: true) { state } }', { id: old.id });
    expect(errorCode(late.body)).toBe('CONFLICT');
  });
});
