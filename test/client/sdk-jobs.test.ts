/**
 * The SDK's calls for many jobs and for what a job produces, against real servers: groups and tags on create and
 * list, the live job list (`jobUpdates`, resumed from a cursor), job commands on the worker side (`onCommand`,
 * `commands()`) and the sender side (`sendJobCommand`), and the reporter's item results, gauges, steps and log lines
 * with `watchJob({ items, logs })` and `metricSeries`.
 */
import { describe, expect, it } from 'vitest';
import { ProgressReporter, RunwatchClient, RunwatchError, type JobCommand, type JobUpdate, type ProgressEvent } from '../../clients/typescript/src/client/index.js';
import { deferred, withTimeout } from '../helpers/clients.js';
import { BACKENDS, freshInstitute, startTestServer, token } from '../helpers/servers.js';
import { waitUntil } from '../helpers/wait.js';

/** Consumes an iterator in the background; `waitFor` resolves once a predicate over the items holds. */
function consume<T>(iter: AsyncIterable<T>) {
  const items: T[] = [];
  let waiter = null as { check: () => boolean; resolve: () => void } | null;
  let failure: unknown = null;
  const done = (async () => {
    try {
      for await (const item of iter) {
        items.push(item);
        if (waiter?.check()) waiter.resolve();
      }
    } catch (error) {
      failure = error;
      throw error;
    }
  })();
  done.catch(() => {});
  return {
    items,
    done,
    waitFor(check: (items: T[]) => boolean, what: string, ms = 15_000) {
      if (check(items)) return Promise.resolve();
      const d = deferred();
      waiter = { check: () => check(items), resolve: d.resolve };
      return withTimeout(d.promise, ms, () => `${what} (have ${items.length}: ${JSON.stringify(items.slice(-2)).slice(0, 400)}; error ${String(failure)})`);
    },
  };
}

const onErrorFails = (e: RunwatchError) => expect.unreachable(`${e.code}: ${e.message}`);

describe('groups and tags', () => {
  it('creates a child with tags and a heartbeat through the reporter, and lists by tags and by parent', async () => {
    const server = await startTestServer();
    const client = new RunwatchClient({ url: server.url, token: await token({ inst: freshInstitute() }) });
    const parent = await client.createJob({ name: 'eval suite', tags: ['nightly'] });
    const child = new ProgressReporter(client, { onError: onErrorFails });
    const id = await child.start({ name: 'shard 1', total: 10, parentId: parent.id, tags: ['nightly', 'gpu'], heartbeatSeconds: 60 });
    await client.createJob({ name: 'unrelated', tags: ['adhoc'] });
    child.advance(10);
    await child.complete();
    expect(await client.getJob(id!)).toMatchObject({ parentId: parent.id, tags: ['nightly', 'gpu'], heartbeatSeconds: 60, stalled: false, status: 'COMPLETED' });
    expect((await client.listJobs({ tags: ['nightly'] })).nodes.map((j) => j.name).sort()).toEqual(['eval suite', 'shard 1']);
    expect((await client.listJobs({ tags: ['nightly', 'gpu'] })).nodes.map((j) => j.name)).toEqual(['shard 1']);
    expect((await client.listJobs({ parentId: parent.id })).nodes.map((j) => j.id)).toEqual([id]);
    const group = await waitUntil(() => client.getJob(parent.id), (j) => j.childCounts?.completed === 1, 'the parent to count its completed child');
    expect(group).toMatchObject({ total: 10, completed: 10, status: 'COMPLETED' });
    await expect(client.createJob({ name: 'orphan', parentId: 'j_nope' })).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await client.close();
  });
});

describe('jobUpdates', () => {
  for (const backend of BACKENDS) {
    it(`sees the tagged jobs appear, start and finish, and resumes from its last cursor with no gap and no duplicate (${backend})`, async () => {
      const server = await startTestServer({ backend });
      const client = new RunwatchClient({ url: server.url, token: await token({ inst: freshInstitute() }) });
      const early = await client.createJob({ name: 'early', total: 5, tags: ['nightly'] });
      await client.createJob({ name: 'untagged', total: 5 });

      const first = new AbortController();
      const list = consume<JobUpdate>(client.jobUpdates({ tags: ['nightly'] }, { signal: first.signal }));
      await list.waitFor((u) => u.some((x) => x.type === 'SNAPSHOT'), 'the snapshot');
      expect(list.items.map((u) => [u.type, u.job.name])).toEqual([['SNAPSHOT', 'early']]);
      const late = await client.createJob({ name: 'late', total: 5, tags: ['nightly', 'gpu'] });
      await list.waitFor((u) => u.some((x) => x.type === 'CREATED' && x.job.id === late.id), 'the CREATED update');
      first.abort();
      await list.done;
      // early's creation may reach the list log after the snapshot read the store; the stream drops it (the
      // snapshot showed that state already), so early is there once, as it was when the stream opened.
      expect(list.items.filter((u) => u.job.id === early.id).map((u) => u.type)).toEqual(['SNAPSHOT']);
      const cursor = list.items.at(-1)!.cursor;

      // While nobody listens: one job starts and finishes, another is created; untagged jobs come and go.
      const reporter = new ProgressReporter(client, { onError: onErrorFails });
      reporter.attach(early.id);
      reporter.advance(5);
      await reporter.complete();
      const missed = await client.createJob({ name: 'missed', tags: ['nightly'] });
      await client.cancelJob((await client.createJob({ name: 'noise' })).id);

      const second = new AbortController();
      const resumed = consume<JobUpdate>(client.jobUpdates({ tags: ['nightly'] }, { after: cursor, signal: second.signal }));
      // Two jobs' updates may come in either order (the job list's projector applies different jobs' changes
      // concurrently; one job's in order): wait for both jobs' last update.
      await resumed.waitFor(
        (u) => u.some((x) => x.job.id === missed.id) && u.some((x) => x.job.id === early.id && x.job.status === 'COMPLETED'),
        'the job created while away, and the finish of the one that ran',
      );
      second.abort();
      await resumed.done;
      expect(resumed.items.some((u) => u.type === 'SNAPSHOT')).toBe(false);
      expect(resumed.items.every((u) => u.job.tags.includes('nightly'))).toBe(true);
      // The snapshot reads the job store, while updates come from the job list's projector, which may still be
      // applying the creation of a job made just before the subscription: its CREATED may then follow the
      // snapshot (here even after the cursor taken above). It comes once, never twice. One job's changes reach the
      // list in commit order whichever instance works the change log (one holder per partition): every step is there.
      const earlyCreatedBefore = list.items.some((u) => u.type === 'CREATED' && u.job.id === early.id);
      const seen = resumed.items
        .filter((u) => u.type !== 'PROGRESS')
        .map((u) => [u.type, u.job.name, u.job.status].join(' '))
        .filter((line) => earlyCreatedBefore || line !== 'CREATED early QUEUED');
      expect([...seen].sort()).toEqual(['CREATED missed QUEUED', 'STATUS early COMPLETED', 'STATUS early RUNNING']);
      expect(seen.indexOf('STATUS early RUNNING')).toBeLessThan(seen.indexOf('STATUS early COMPLETED'));
      const cursors = [...list.items.filter((u) => u.type !== 'SNAPSHOT'), ...resumed.items].map((u) => u.cursor);
      expect(new Set(cursors).size).toBe(cursors.length);
      await client.close();
    });
  }
});

describe('job commands', () => {
  it('onCommand answers each command once with the handler’s verdict; an acknowledged CANCEL cancels the job', async () => {
    const server = await startTestServer();
    const client = new RunwatchClient({ url: server.url, token: await token({ inst: freshInstitute() }) });
    const reporter = new ProgressReporter(client, { onError: onErrorFails });
    const jobId = (await reporter.start({ name: 'steerable', total: 100 }))!;
    // Sent before the worker listens: delivered first when it subscribes.
    const early = await client.sendJobCommand(jobId, 'CUSTOM', { name: 'flush', args: { to: 's3' } });
    const seen: JobCommand[] = [];
    const stopWork = deferred();
    const listener = reporter.onCommand(async (command) => {
      seen.push(command);
      if (command.command === 'CUSTOM') return true;
      if (command.command === 'PAUSE') return 'this worker cannot pause';
      if (command.command === 'CANCEL') {
        stopWork.resolve();
        return { accepted: true, message: 'stopped after item 3' };
      }
      throw new Error(`unexpected ${command.command}`);
    });
    const states = async () => Object.fromEntries((await client.recentJobCommands(jobId)).map((c) => [c.command, [c.state, c.message]]));
    await waitUntil(states, (s) => s.CUSTOM?.[0] === 'ACKNOWLEDGED', 'the CUSTOM command acknowledged');
    await client.sendJobCommand(jobId, 'PAUSE');
    await waitUntil(states, (s) => s.PAUSE?.[0] === 'REJECTED', 'the PAUSE command rejected');
    reporter.advance(3);
    await reporter.flush();
    await client.sendJobCommand(jobId, 'CANCEL', { args: { reason: 'wrong model' } });
    await withTimeout(stopWork.promise, 15_000, 'the CANCEL to reach the handler');
    await waitUntil(() => client.getJob(jobId), (j) => j.status === 'CANCELLED', 'the job cancelled by the acknowledgement');
    expect(await states()).toEqual({ CUSTOM: ['ACKNOWLEDGED', null], PAUSE: ['REJECTED', 'this worker cannot pause'], CANCEL: ['ACKNOWLEDGED', 'stopped after item 3'] });
    expect(seen.map((c) => c.command)).toEqual(['CUSTOM', 'PAUSE', 'CANCEL']);
    expect(seen[0]).toMatchObject({ id: early.id, name: 'flush', args: { to: 's3' } });
    expect(listener.handled).toBe(3);
    expect(reporter.finished).toBe(true); // a cancelled job gets no more reports
    await listener.stop();
    await client.close();
  });

  it('commands() yields pending commands, each once, and a REJECTED answer leaves the job running', async () => {
    const server = await startTestServer();
    const client = new RunwatchClient({ url: server.url, token: await token({ inst: freshInstitute() }) });
    const reporter = new ProgressReporter(client, { onError: onErrorFails });
    const jobId = (await reporter.start({ name: 'iterated' }))!;
    reporter.advance(1);
    await reporter.flush();
    const sent = await client.sendJobCommand(jobId, 'CANCEL', { ttlSeconds: 30 });
    const stop = new AbortController();
    for await (const command of reporter.commands({ signal: stop.signal })) {
      expect(command).toMatchObject({ id: sent.id, command: 'CANCEL', state: 'PENDING', jobId });
      expect(await reporter.acknowledgeCommand(command, false, 'not now')).toMatchObject({ state: 'REJECTED', message: 'not now' });
      stop.abort();
    }
    expect((await client.getJob(jobId)).status).toBe('RUNNING');
    await expect(client.acknowledgeJobCommand(sent.id, true)).rejects.toMatchObject({ code: 'CONFLICT' });
    await expect(client.sendJobCommand(jobId, 'CUSTOM')).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    await client.close();
  });
});

describe('what a job produces', () => {
  it('reportItems, metric, step and log reach the job: exact counts and summaries, ITEM_RESULTS and LOG only when asked, timed steps, whole series', async () => {
    const server = await startTestServer();
    let requests = 0;
    const client = new RunwatchClient({ url: server.url, token: await token({ inst: freshInstitute() }), fetch: (i, init) => (requests++, fetch(i, init)) });
    const reporter = new ProgressReporter(client, { onError: onErrorFails });
    const jobId = (await reporter.start({ name: 'qa eval', kind: 'EVALUATION', total: 1000 }))!;
    const withOutputs = consume<ProgressEvent>(client.watchJob(jobId, { items: true, logs: true }));
    const plain = consume<ProgressEvent>(client.watchJob(jobId));
    await withOutputs.waitFor((e) => e.length > 0, 'the SNAPSHOT with items and logs');
    await plain.waitFor((e) => e.length > 0, 'the plain SNAPSHOT');

    // 1000 items in 20 calls; item i is ok unless i % 7 === 0; accuracy i % 10 / 10; latency (i % 5) / 10 s.
    const expected = { ok: 0, failed: 0, accuracy: [] as number[] };
    const before = requests;
    for (let call = 0; call < 20; call++) {
      reporter.reportItems(
        Array.from({ length: 50 }, (_, k) => {
          const i = call * 50 + k;
          const ok = i % 7 !== 0;
          ok ? expected.ok++ : expected.failed++;
          expected.accuracy.push((i % 10) / 10);
          return { itemId: `q${i}`, ok, latencySeconds: (i % 5) / 10, metrics: { accuracy: (i % 10) / 10 }, ...(ok ? {} : { error: `wrong answer ${i}` }) };
        }),
      );
      reporter.metric('tokensPerSecond', 100 + call);
      if (call === 10) reporter.log('halfway there', 'warn', 'grader');
    }
    reporter.log('all graded');
    await expect(reporter.step('grading', async () => 'graded')).resolves.toBe('graded');
    await expect(
      reporter.step('upload', async () => {
        throw new Error('bucket not found');
      }),
    ).rejects.toThrow('bucket not found');
    reporter.reportItems([{ itemId: 'bad', metrics: { accuracy: Number.NaN } }]); // refused locally, nothing sent
    await reporter.flush();
    expect(requests - before).toBeLessThan(20); // coalesced like advance
    console.log(`ProgressReporter: 1000 item results in 20 reportItems() calls, 20 gauges, 2 log lines, 2 steps -> ${requests - before} HTTP requests`);

    const job = await client.getJobOutputs(jobId);
    expect(job).toMatchObject({ completed: expected.ok, failed: expected.failed, status: 'RUNNING' });
    expect(job.successRate).toBeCloseTo(expected.ok / 1000, 10);
    const accuracy = job.metrics.find((m) => m.name === 'accuracy')!;
    expect(accuracy).toMatchObject({ count: 1000, min: 0, max: 0.9, last: 0.9 });
    expect(accuracy.mean).toBeCloseTo(expected.accuracy.reduce((a, b) => a + b, 0) / 1000, 10);
    expect(job.metrics.find((m) => m.name === 'tokensPerSecond')).toMatchObject({ last: 119, count: expect.any(Number), max: 119 });
    expect(job.steps.map((s) => [s.name, s.status, s.error])).toEqual([
      ['grading', 'COMPLETED', null],
      ['upload', 'FAILED', 'bucket not found'],
    ]);

    await withOutputs.waitFor((e) => e.filter((x) => x.type === 'ITEM_RESULTS').flatMap((x) => x.items ?? []).length === 1000, 'all 1000 item results');
    await withOutputs.waitFor((e) => e.filter((x) => x.type === 'LOG').flatMap((x) => x.logs ?? []).length === 2, 'both log lines');
    const items = withOutputs.items.filter((e) => e.type === 'ITEM_RESULTS').flatMap((e) => e.items ?? []);
    expect(items.map((i) => i.itemId)).toEqual(Array.from({ length: 1000 }, (_, i) => `q${i}`));
    expect(items[7]).toMatchObject({ ok: false, error: 'wrong answer 7', metrics: [{ name: 'accuracy', value: 0.7 }] });
    const logs = withOutputs.items.filter((e) => e.type === 'LOG').flatMap((e) => e.logs ?? []);
    expect(logs.map((l) => [l.level, l.message, l.source])).toEqual([
      ['WARNING', 'halfway there', 'grader'],
      ['INFO', 'all graded', null],
    ]);
    const failedStep = withOutputs.items.find((e) => e.type === 'STAGE' && e.step?.status === 'FAILED');
    expect(failedStep?.step).toMatchObject({ name: 'upload', error: 'bucket not found' });

    await reporter.complete();
    await withOutputs.done;
    await plain.done;
    expect(plain.items.some((e) => e.type === 'ITEM_RESULTS' || e.type === 'LOG')).toBe(false);
    expect(plain.items.at(-1)).toMatchObject({ type: 'COMPLETED' });

    const series = await client.metricSeries(jobId, 'accuracy', 50);
    expect(series.length).toBeGreaterThan(3);
    expect(series.length).toBeLessThanOrEqual(50);
    expect(series[0]!.step).toBe(1);
    expect(series.at(-1)!.step).toBe(1000);
    expect(Math.min(...series.map((p) => p.value))).toBe(0);
    expect(Math.max(...series.map((p) => p.value))).toBe(0.9);
    expect(await client.metricSeries(jobId, 'no such series')).toEqual([]);
    await client.close();
  });

  it('step() times the step on the server: its duration covers the work', async () => {
    const server = await startTestServer();
    const client = new RunwatchClient({ url: server.url, token: await token({ inst: freshInstitute() }) });
    const reporter = new ProgressReporter(client, { onError: onErrorFails });
    const jobId = (await reporter.start({ name: 'pipeline', kind: 'PIPELINE' }))!;
    const running = consume<ProgressEvent>(client.watchJob(jobId));
    await running.waitFor((e) => e.length > 0, 'the SNAPSHOT');
    await reporter.step('ocr', async (step) => {
      // The work ends only once the server has seen the step start: the duration is the step's, not a flush's.
      await running.waitFor((e) => e.some((x) => x.type === 'STAGE' && x.step?.name === 'ocr' && x.step.status === 'RUNNING'), 'the step to start');
      step.update(2, 4);
      await running.waitFor((e) => e.some((x) => x.step?.name === 'ocr' && x.step.completed === 2), 'the step’s own count');
    });
    await reporter.complete();
    await running.done;
    const [ocr] = (await client.getJobOutputs(jobId)).steps;
    expect(ocr).toMatchObject({ name: 'ocr', status: 'COMPLETED', completed: 2, total: 4 });
    expect(ocr!.durationSeconds).toBeGreaterThan(0);
    expect(Date.parse(ocr!.finishedAt!)).toBeGreaterThanOrEqual(Date.parse(ocr!.startedAt!));
    await client.close();
  });
});
