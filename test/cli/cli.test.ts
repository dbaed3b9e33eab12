/**
 * The `runwatch` CLI as people run it: a real child process of clients/typescript/bin/runwatch.js
 * against a real server, output through pipes (so stdout is not a TTY).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { deferred, gql, subscribeWs, withTimeout, wsClient } from '../helpers/clients.js';
import { freshInstitute, startTestServer, token } from '../helpers/servers.js';
import { waitUntil } from '../helpers/wait.js';

const BIN = fileURLToPath(new URL('../../clients/typescript/bin/runwatch.js', import.meta.url));
const CREATE = `mutation($name: String!, $total: Int) { createBatchJob(input: { name: $name, total: $total }) { id } }`;
const REPORT = `mutation($input: ReportProgressInput!) { reportProgress(input: $input) { id } }`;
const COMPLETE = `mutation($id: ID!) { completeBatchJob(id: $id) { id } }`;
const LIST = `{ batchJobs(first: 5) { nodes { id name kind status completed total stage errorMessage } } }`;

/** The id of the tenant's newest job, once `runwatch run` has created one (there is no event to wait on). */
async function newestJobId(server: RunningServer, tok: string, what: string): Promise<string> {
  const id = await waitUntil(async () => (await gql(server.url, tok, LIST)).batchJobs.nodes[0]?.id as string | undefined, (found) => found !== undefined, what, 15_000);
  return id!;
}
const WATCH = `subscription($runId: ID!) { runProgress(runId: $runId) { type job { status completed total stage } } }`;

const children: ChildProcess[] = [];
afterAll(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** Runs the CLI; `waitForStdout` resolves once stdout matches. */
function cli(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  children.push(child);
  let stdout = '';
  let stderr = '';
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  child.stdout!.setEncoding('utf8').on('data', (c: string) => {
    stdout += c;
    for (const w of waiters.filter((w) => w.re.test(stdout))) w.resolve();
  });
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return {
    child,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    waitForStdout(re: RegExp, what: string, ms = 20_000) {
      if (re.test(stdout)) return Promise.resolve();
      const d = deferred();
      waiters.push({ re, resolve: d.resolve });
      return withTimeout(d.promise, ms, `${what} on stdout (have: ${JSON.stringify(stdout.slice(-400))}; stderr: ${JSON.stringify(stderr.slice(-400))})`);
    },
    exit: (ms = 30_000) => withTimeout(exited, ms, `the CLI to exit (stdout: ${JSON.stringify(stdout.slice(-400))}; stderr: ${JSON.stringify(stderr.slice(-600))})`),
  };
}

describe('runwatch watch', () => {
  let server: RunningServer;
  let tok: string;
  const env = () => ({ RUNWATCH_URL: server.url.replace('/graphql', ''), RUNWATCH_TOKEN: tok });

  const startJob = async (name: string) => (await gql(server.url, tok, CREATE, { name, total: 40 })).createBatchJob.id as string;
  const runJob = async (id: string) => {
    for (const completed of [10, 20, 30, 40]) await gql(server.url, tok, REPORT, { input: { jobId: id, completed, stage: completed > 20 ? 'late' : 'early' } });
    await gql(server.url, tok, COMPLETE, { id });
  };

  it('--json prints one JSON event per line, SNAPSHOT to COMPLETED, and exits 0', async () => {
    server ??= await startTestServer();
    tok ??= await token({ inst: freshInstitute() });
    const id = await startJob('json watch');
    const run = cli(['watch', id, '--json'], env());
    await run.waitForStdout(/"SNAPSHOT"/, 'the SNAPSHOT line');
    await runJob(id);
    expect(await run.exit()).toBe(0);
    const events = run.stdout.trim().split('\n').map((line) => JSON.parse(line));
    expect(events[0]).toMatchObject({ type: 'SNAPSHOT', runId: id, job: { status: 'QUEUED', completed: 0, total: 40 } });
    expect(events.at(-1)).toMatchObject({ type: 'COMPLETED', job: { status: 'COMPLETED', completed: 40 } });
    expect(events.map((e) => e.type)).toContain('STARTED');
    expect(events.filter((e) => e.type === 'STAGE').map((e) => e.job.stage)).toEqual(['early', 'late']);
    for (const e of events) expect(typeof e.cursor).toBe('string');
  });

  it('prints plain lines and a summary when stdout is not a terminal; exits 1 when a job failed', async () => {
    server ??= await startTestServer();
    tok ??= await token({ inst: freshInstitute() });
    const ok = await startJob('plain ok');
    const bad = await startJob('plain bad');
    const run = cli(['watch', ok, bad], env());
    await run.waitForStdout(new RegExp(`plain bad \\(${bad}\\)\\s+SNAPSHOT`), 'both SNAPSHOT lines');
    await run.waitForStdout(new RegExp(`plain ok \\(${ok}\\)\\s+SNAPSHOT`), 'both SNAPSHOT lines');
    await runJob(ok);
    await gql(server.url, tok, REPORT, { input: { jobId: bad, completed: 5 } });
    await gql(server.url, tok, `mutation($id: ID!) { failBatchJob(id: $id, error: "disk full") { id } }`, { id: bad });
    expect(await run.exit()).toBe(1);
    const out = run.stdout;
    expect(out).not.toMatch(/\u001b\[/); // no bars, no colour codes in a pipe
    expect(out).toMatch(new RegExp(`plain ok \\(${ok}\\)\\s+STARTED\\s+10/40\\s+25%`));
    expect(out).toMatch(new RegExp(`plain ok \\(${ok}\\)\\s+COMPLETED\\s+40/40\\s+100%.*COMPLETED`));
    expect(out).toMatch(new RegExp(`plain bad \\(${bad}\\)\\s+FAILED\\s+5/40.*FAILED\\s+- disk full`));
    expect(out).toContain('Summary of 2 jobs:');
    expect(out).toMatch(/✔\s+plain ok\s+COMPLETED\s+40\/40/);
    expect(out).toMatch(/✖\s+plain bad\s+FAILED\s+5\/40.*error: disk full/);
  });
});

describe('runwatch watch: stalls', () => {
  it('marks a job that stopped reporting STALLED, and RUNNING again once it recovers', async () => {
    const server = await startTestServer({ config: { stallSweepMs: 100 } });
    const tok = await token({ inst: freshInstitute() });
    const id = (await gql(server.url, tok, `mutation { createBatchJob(input: { name: "quiet worker", total: 10, heartbeatSeconds: 1 }) { id } }`)).createBatchJob.id as string;
    const run = cli(['watch', id], { RUNWATCH_URL: server.url, RUNWATCH_TOKEN: tok });
    await run.waitForStdout(/SNAPSHOT/, 'the SNAPSHOT line');
    await gql(server.url, tok, REPORT, { input: { jobId: id, completed: 2 } });
    await run.waitForStdout(new RegExp(`quiet worker \\(${id}\\)\\s+STALLED\\s+2/10.*\\sSTALLED\\s+- no report for 1 s`), 'the STALLED line, marked');
    await gql(server.url, tok, REPORT, { input: { jobId: id, completed: 3 } });
    await run.waitForStdout(new RegExp(`quiet worker \\(${id}\\)\\s+RECOVERED\\s+3/10.*\\sRUNNING`), 'the RECOVERED line');
    await gql(server.url, tok, COMPLETE, { id });
    expect(await run.exit()).toBe(0);
  });
});

describe('runwatch watch --all', () => {
  const CREATE_TAGGED = `mutation($name: String!, $tags: [String!], $hb: Int) { createBatchJob(input: { name: $name, total: 10, tags: $tags, heartbeatSeconds: $hb }) { id } }`;
  const STALLS = `subscription($runId: ID!) { runProgress(runId: $runId) { type job { stalled } } }`;

  it('follows the tagged jobs live (created, started, finished) with a stalled one marked STALLED, and never shows untagged jobs', async () => {
    const server = await startTestServer({ config: { stallSweepMs: 100 } });
    const tok = await token({ inst: freshInstitute() });
    const env = { RUNWATCH_URL: server.url.replace('/graphql', ''), RUNWATCH_TOKEN: tok };
    const create = async (name: string, tags: string[], hb?: number) => (await gql(server.url, tok, CREATE_TAGGED, { name, tags, hb })).createBatchJob.id as string;
    // A tagged job that goes silent for more than its 1 s heartbeat: stalled before the list opens.
    const silent = await create('silent shard', ['nightly'], 1);
    const stalls = subscribeWs(wsClient(server.url, tok), STALLS, { runId: silent }, 'runProgress');
    await gql(server.url, tok, REPORT, { input: { jobId: silent, completed: 1 } });
    await stalls.waitFor((items) => items.some((e) => e.type === 'STALLED'), 'the silent job to stall');
    const other = await create('untagged job', []);

    const lines = cli(['watch', '--all', '--tag', 'nightly'], env);
    const json = cli(['watch', '--all', '--tag', 'nightly', '--json'], env);
    await lines.waitForStdout(new RegExp(`SNAPSHOT\\s+silent shard \\(${silent}\\)\\s+STALLED\\s+1/10`), 'the stalled job in the snapshot, marked');
    await json.waitForStdout(/"SNAPSHOT"/, 'the JSON snapshot');

    const fresh = await create('fresh shard', ['nightly', 'gpu']);
    await lines.waitForStdout(new RegExp(`CREATED\\s+fresh shard \\(${fresh}\\)\\s+QUEUED\\s+0/10.*tags nightly,gpu`), 'the created job');
    await gql(server.url, tok, REPORT, { input: { jobId: fresh, completed: 4 } });
    await lines.waitForStdout(new RegExp(`STATUS\\s+fresh shard \\(${fresh}\\)\\s+RUNNING\\s+\\(was QUEUED\\)\\s+4/10`), 'the job starting');
    await gql(server.url, tok, REPORT, { input: { jobId: other, completed: 3 } });
    await gql(server.url, tok, REPORT, { input: { jobId: fresh, completed: 10 } });
    await gql(server.url, tok, COMPLETE, { id: fresh });
    await lines.waitForStdout(new RegExp(`STATUS\\s+fresh shard \\(${fresh}\\)\\s+COMPLETED\\s+\\(was RUNNING\\)\\s+10/10`), 'the job finishing');
    await json.waitForStdout(/"previousStatus":"RUNNING"/, 'the finish in JSON');

    lines.child.kill('SIGINT');
    json.child.kill('SIGINT');
    expect(await lines.exit()).toBe(0);
    expect(await json.exit()).toBe(0);
    expect(lines.stdout).not.toContain(other);
    const updates = json.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(updates.some((u) => u.job.id === other)).toBe(false);
    expect(updates[0]).toMatchObject({ type: 'SNAPSHOT', job: { id: silent, stalled: true, tags: ['nightly'] } });
    expect(updates.filter((u) => u.job.id === fresh && u.type !== 'PROGRESS').map((u) => [u.type, u.job.status])).toEqual([
      ['CREATED', 'QUEUED'],
      ['STATUS', 'RUNNING'],
      ['STATUS', 'COMPLETED'],
    ]);
    const cursors = updates.filter((u) => u.type !== 'SNAPSHOT').map((u) => u.cursor);
    expect(new Set(cursors).size).toBe(cursors.length);
  });

  it('refuses job ids together with --all, and --tag without it (exit 2)', async () => {
    const run = cli(['watch', '--all', 'j_1'], { RUNWATCH_URL: 'http://127.0.0.1:9', RUNWATCH_TOKEN: 'x' });
    expect(await run.exit()).toBe(2);
    expect(run.stderr).toContain('--all watches every job: give no job ids with it');
    const tagOnly = cli(['watch', 'j_1', '--tag', 'nightly'], { RUNWATCH_URL: 'http://127.0.0.1:9', RUNWATCH_TOKEN: 'x' });
    expect(await tagOnly.exit()).toBe(2);
    expect(tagOnly.stderr).toContain('--tag and --status go with --all');
  });
});

describe('runwatch run', () => {
  // Prints tqdm-style bars on stderr (\r-redrawn), stops at 20/50 until a line arrives on stdin, then finishes.
  const TQDM_SCRIPT = `
    const bar = (n) => process.stderr.write('\\rembedding: ' + String(Math.floor(n * 2)).padStart(3) + '%|' + '#'.repeat(n / 5) + '| ' + n + '/50 [00:01<00:01, 42.00it/s]');
    console.log('loading model');
    for (let n = 0; n <= 20; n++) bar(n);
    process.stdin.once('data', () => {
      for (let n = 21; n <= 50; n++) bar(n);
      process.stderr.write('\\n');
      console.log('wrote 50 vectors');
      process.exit(0);
    });`;

  it('turns a child’s tqdm output into a live job and completes it with exit code 0', async () => {
    const server = await startTestServer();
    const tok = await token({ inst: freshInstitute() });
    const run = cli(['run', '--name', 'embed docs', '--', process.execPath, '-e', TQDM_SCRIPT], { RUNWATCH_URL: server.url, RUNWATCH_TOKEN: tok });
    await run.waitForStdout(/loading model/, 'the child’s own stdout');
    // The job appears and reaches 20/50 while the child waits.
    const id = await newestJobId(server, tok, 'the job of runwatch run');
    const stream = subscribeWs(wsClient(server.url, tok), WATCH, { runId: id }, 'runProgress');
    await stream.waitFor((items) => items.some((e) => e.job.completed === 20 && e.job.total === 50 && e.job.stage === 'embedding'), 'progress 20/50 mid-run');
    expect(stream.items.at(-1).job.status).toBe('RUNNING');
    run.child.stdin!.write('go\n');
    expect(await run.exit()).toBe(0);
    await stream.done();
    expect(stream.items.at(-1)).toMatchObject({ type: 'COMPLETED', job: { status: 'COMPLETED', completed: 50, total: 50 } });
    expect(run.stdout).toBe('loading model\nwrote 50 vectors\n'); // passed through untouched
    expect(run.stderr).toContain('50/50 [00:01<00:01, 42.00it/s]');
    expect(run.stderr).toContain(`runwatch: job ${id}`);
    const [job] = (await gql(server.url, tok, LIST)).batchJobs.nodes;
    expect(job).toMatchObject({ id, name: 'embed docs', status: 'COMPLETED', completed: 50, total: 50 });
  });

  it('fails the job with the exit code and the last stderr lines, and exits with the same code', async () => {
    const server = await startTestServer();
    const tok = await token({ inst: freshInstitute() });
    const script = `console.log('3/10 done'); console.error('warming up'); console.error('Traceback: ValueError: bad row 4'); process.exit(3);`;
    const run = cli(['run', '--', process.execPath, '-e', script], { RUNWATCH_URL: server.url, RUNWATCH_TOKEN: tok });
    expect(await run.exit()).toBe(3);
    expect(run.stdout).toBe('3/10 done\n');
    const [job] = (await gql(server.url, tok, LIST)).batchJobs.nodes;
    expect(job).toMatchObject({ status: 'FAILED', completed: 3, total: 10 });
    expect(job.errorMessage).toMatch(/^command exited with code 3: /);
    expect(job.errorMessage).toContain('last lines of stderr:\nwarming up\nTraceback: ValueError: bad row 4');
  });
});

describe('runwatch run: commands and logs', () => {
  // Waits for a line on stdin, then writes stderr lines (one progress line among them), then runs until stopped.
  const WORKER = `
    console.log('ready');
    process.stdin.once('data', () => {
      console.error('WARNING: disk almost full');
      console.error('2/10 done');
      console.error('plain note from the worker');
      console.log('working');
    });
    setInterval(() => {}, 1000);`;
  const LOGS = `subscription($runId: ID!) { runProgress(runId: $runId, logs: true) {
    type job { status completed } logs { level message source } } }`;
  const SEND = `mutation($jobId: ID!) { sendJobCommand(jobId: $jobId, command: CANCEL, args: { reason: "test" }) { id state } }`;
  const COMMANDS = `query($jobId: ID!) { jobCommands(jobId: $jobId) { id command state message } }`;

  it('sends the child’s stderr lines as LOG events, and a CANCEL stops the child (SIGTERM), is acknowledged and cancels the job', async () => {
    const server = await startTestServer();
    const tok = await token({ inst: freshInstitute() });
    const run = cli(['run', '--name', 'cancel me', '--', process.execPath, '-e', WORKER], { RUNWATCH_URL: server.url, RUNWATCH_TOKEN: tok });
    await run.waitForStdout(/ready/, 'the child’s first line');
    const id = await newestJobId(server, tok, 'the job of runwatch run');
    const stream = subscribeWs(wsClient(server.url, tok), LOGS, { runId: id }, 'runProgress');
    await stream.waitForCount(1);
    const watcher = cli(['watch', id, '--logs'], { RUNWATCH_URL: server.url, RUNWATCH_TOKEN: tok });
    await watcher.waitForStdout(/SNAPSHOT/, 'runwatch watch --logs to start');
    run.child.stdin!.write('go\n');
    await run.waitForStdout(/working/, 'the child to write its stderr lines');
    const lines = () => stream.items.filter((e) => e.type === 'LOG').flatMap((e) => e.logs);
    await stream.waitFor(() => lines().length >= 2, 'both stderr lines as LOG events');
    expect(lines()).toEqual([
      { level: 'WARNING', message: 'WARNING: disk almost full', source: 'stderr' },
      { level: 'INFO', message: 'plain note from the worker', source: 'stderr' },
    ]);
    await stream.waitFor((items) => items.some((e) => e.job.completed === 2), 'the progress line as progress, not a log line');

    const sent = (await gql(server.url, tok, SEND, { jobId: id })).sendJobCommand;
    expect(sent.state).toBe('PENDING');
    expect(await run.exit()).toBe(128 + 15); // the child was killed by SIGTERM, and runwatch run exits like it
    await stream.done();
    expect(stream.items.at(-1)).toMatchObject({ type: 'CANCELLED', job: { status: 'CANCELLED', completed: 2 } });
    const [command] = (await gql(server.url, tok, COMMANDS, { jobId: id })).jobCommands;
    expect(command).toMatchObject({ id: sent.id, command: 'CANCEL', state: 'ACKNOWLEDGED', message: 'stopped: the command was killed by SIGTERM' });
    expect(run.stderr).toContain('CANCEL from');
    expect(run.stderr).not.toContain('some progress reports failed');
    // runwatch watch --logs showed the lines as they came, and ends with the job.
    expect(await watcher.exit()).toBe(1);
    expect(watcher.stdout).toMatch(new RegExp(`cancel me \\(${id}\\)  LOG +WARNING  \\[stderr\\]  WARNING: disk almost full\\n`));
    expect(watcher.stdout).toMatch(/LOG +INFO  \[stderr\]  plain note from the worker\n/);
  });
});

describe('runwatch run --kind TRAINING', () => {
  // A trainer driven by the test through stdin, one output per line received: `step` prints the next tqdm
  // redraw with `loss=` in its postfix (on stderr), `hf` a Hugging Face–style log line, `end` an eval line
  // and exits. The test waits for each value on the stream before the next, so none is conflated away.
  const TRAINER = `
    const losses = [2.5, 1.75, 1.25, 0.5];
    let n = 0;
    console.log('loading model');
    require('node:readline').createInterface({ input: process.stdin }).on('line', (cmd) => {
      if (cmd === 'step') {
        n++;
        process.stderr.write('\\rtrain: ' + String(n * 25).padStart(3) + '%|' + '#'.repeat(n * 2) + '| ' + n + '/4 [00:01<00:01, 2.00it/s, loss=' + losses[n - 1] + ']');
      } else if (cmd === 'hf') {
        console.log("{'loss': 1.7, 'learning_rate': 5e-05, 'epoch': 0.5}");
      } else {
        process.stderr.write('\\n');
        console.log("{'eval_loss': 0.9, 'eval_accuracy': 0.75, 'epoch': 1.0}");
        process.exit(0);
      }
    });`;
  const EVENTS = `subscription($runId: ID!) { trainingEvents(runId: $runId) {
    __typename ... on TrainingProgress { globalStep maxStep loss learningRate epoch snapshot }
    ... on ValidationResult { validationLoss metrics { name value } } ... on TrainingStatusChange { status } } }`;

  it('turns loss= postfixes and HF log lines into TrainingProgress, eval lines into a ValidationResult, and completes the run', async () => {
    const server = await startTestServer();
    const tok = await token({ inst: freshInstitute() });
    const run = cli(['run', '--kind', 'TRAINING', '--name', 'fine-tune', '--', process.execPath, '-e', TRAINER], { RUNWATCH_URL: server.url, RUNWATCH_TOKEN: tok });
    await run.waitForStdout(/loading model/, 'the trainer’s first line');
    const id = await newestJobId(server, tok, 'the run of runwatch run');
    const events = subscribeWs(wsClient(server.url, tok), EVENTS, { runId: id }, 'trainingEvents');
    await events.waitFor((items) => items.some((e) => e.__typename === 'TrainingStatusChange'), 'the fresh-start status');
    const progressWith = (loss: number) => (items: any[]) => items.some((e) => e.__typename === 'TrainingProgress' && e.loss === loss);
    for (const [cmd, loss] of [['step', 2.5], ['step', 1.75], ['hf', 1.7], ['step', 1.25], ['step', 0.5]] as const) {
      run.child.stdin!.write(`${cmd}\n`);
      await events.waitFor(progressWith(loss), `a TrainingProgress with loss ${loss}`);
    }
    run.child.stdin!.write('end\n');
    expect(await run.exit()).toBe(0);
    await events.done();
    const progress = events.items.filter((e) => e.__typename === 'TrainingProgress' && !e.snapshot);
    expect(progress.filter((e) => e.loss !== null).map((e) => e.loss)).toEqual([2.5, 1.75, 1.7, 1.25, 0.5]);
    expect(progress.find((e) => e.loss === 1.7)).toMatchObject({ globalStep: 2, maxStep: 4, learningRate: 5e-5, epoch: 0 });
    expect(progress.find((e) => e.loss === 0.5)).toMatchObject({ globalStep: 4, maxStep: 4 });
    expect(events.items.find((e) => e.__typename === 'ValidationResult')).toMatchObject({ validationLoss: 0.9, metrics: [{ name: 'accuracy', value: 0.75 }] });
    expect(events.items.at(-1)).toMatchObject({ __typename: 'TrainingStatusChange', status: 'COMPLETED' });
    const [job] = (await gql(server.url, tok, LIST)).batchJobs.nodes;
    expect(job).toMatchObject({ id, name: 'fine-tune', kind: 'TRAINING', status: 'COMPLETED', completed: 4, total: 4 });
  });
});

describe('runwatch activity', () => {
  it('prints a line per update in a pipe and JSON events with --json, following jobs that start and finish', async () => {
    const server = await startTestServer();
    const tok = await token({ inst: freshInstitute() });
    const env = { RUNWATCH_URL: server.url.replace('/graphql', ''), RUNWATCH_TOKEN: tok };
    const lines = cli(['activity'], env);
    const json = cli(['activity', '--json'], env);
    await lines.waitForStdout(/0 active/, 'the first (empty) update');
    await json.waitForStdout(/"ActivityUpdate"/, 'the first JSON update');
    const id = (await gql(server.url, tok, CREATE, { name: 'gpu job', total: 10 })).createBatchJob.id;
    await gql(server.url, tok, REPORT, { input: { jobId: id, completed: 1, resources: { containers: 2, cpuCores: 8, memoryGb: 30, gpus: 4 } } });
    await lines.waitForStdout(/1 active · 2 containers · 8 CPU cores · 30 GB · 4 GPUs/, 'the job and its resources');
    await json.waitForStdout(/"gpus":4/, 'the job in JSON');
    await gql(server.url, tok, COMPLETE, { id });
    await lines.waitForStdout(/1 active[\s\S]*0 active · 0 containers/, 'the job leaving');
    const events = json.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(events[0]).toMatchObject({ __typename: 'ActivityUpdate', totals: { jobs: 0 } });
    const withJob = events.find((e) => e.__typename === 'ActivityUpdate' && e.totals.jobs === 1);
    expect(withJob.activeJobs[0]).toMatchObject({ job: { id, name: 'gpu job' }, resources: { containers: 2, cpuCores: 8, memoryGb: 30, gpus: 4 } });
    lines.child.kill('SIGINT');
    json.child.kill('SIGINT');
  });
});

describe('runwatch jobs --tag', () => {
  it('lists only the jobs carrying every given tag, with their tags, and a stalled one as STALLED', async () => {
    const server = await startTestServer({ config: { stallSweepMs: 100 } });
    const tok = await token({ inst: freshInstitute() });
    const TAGGED = `mutation($name: String!, $tags: [String!], $hb: Int) { createBatchJob(input: { name: $name, tags: $tags, heartbeatSeconds: $hb }) { id } }`;
    const both = (await gql(server.url, tok, TAGGED, { name: 'both tags', tags: ['nightly', 'gpu'], hb: 1 })).createBatchJob.id as string;
    const one = (await gql(server.url, tok, TAGGED, { name: 'one tag', tags: ['nightly'] })).createBatchJob.id as string;
    await gql(server.url, tok, REPORT, { input: { jobId: both, completed: 1 } });
    await waitUntil(async () => (await gql(server.url, tok, `query($id: ID!) { batchJob(id: $id) { stalled } }`, { id: both })).batchJob.stalled, Boolean, 'the job to stall', 10_000);
    const env = { RUNWATCH_URL: server.url, RUNWATCH_TOKEN: tok };
    const nightly = cli(['jobs', '--tag', 'nightly'], env);
    const gpu = cli(['jobs', '--tag', 'nightly', 'gpu'], env);
    expect(await nightly.exit(), nightly.stderr).toBe(0);
    expect(await gpu.exit(), gpu.stderr).toBe(0);
    expect(nightly.stdout).toContain(one);
    expect(nightly.stdout).toContain(both);
    expect(gpu.stdout).not.toContain(one);
    const row = gpu.stdout.split('\n').find((l) => l.includes(both))!;
    expect(row).toMatch(/\bSTALLED\b/);
    expect(row).toMatch(/nightly,gpu$/);
  });
});

describe('runwatch jobs', () => {
  it('keeps one row per job when a name holds line breaks, shows the failed count, and says what --first does', async () => {
    const server = await startTestServer();
    const tok = await token({ inst: freshInstitute() });
    const first = (await gql(server.url, tok, CREATE, { name: 'older', total: 10 })).createBatchJob.id as string;
    const id = (await gql(server.url, tok, CREATE, { name: 'line one\nline two\r\n\tthree', total: 10 })).createBatchJob.id as string;
    await gql(server.url, tok, REPORT, { input: { jobId: id, completed: 4, failedDelta: 2 } });
    const run = cli(['jobs', '--first', '1'], { RUNWATCH_URL: server.url, RUNWATCH_TOKEN: tok });
    expect(await run.exit(), run.stderr).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines, run.stdout).toHaveLength(3); // header, one row, the "more" hint
    expect(lines[0]).toMatch(/ DONE +FAILED /);
    expect(lines[1]).toContain(id);
    expect(lines[1]).toContain('line one\\nline two\\r\\n\\tthree');
    // The FAILED column holds the row's failed count, under its header.
    expect(lines[1]!.slice(lines[0]!.indexOf('FAILED')).trimStart()).toMatch(/^2 /);
    expect(lines[2]).toBe('… more jobs: --first 2 lists the newest 2 (at most 100); --status and --kind narrow the list');
    expect(run.stdout).not.toContain(first);
  });
});
