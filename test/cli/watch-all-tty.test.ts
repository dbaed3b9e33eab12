/**
 * `runwatch watch --all` on a terminal: one table redrawn in place (not a scroll of frames), fitted to the
 * terminal's width, following jobs as they are created, progress and finish, with a stalled job marked. Driven
 * in-process with a fake terminal (test/helpers/screen.ts) against a real server.
 */
import { expect, it } from 'vitest';
import { ProgressReporter, RunwatchClient } from '../../clients/typescript/src/client/index.js';
import { watchJobList } from '../../clients/typescript/src/cli/watch-all.js';
import { fakeScreen } from '../helpers/screen.js';
import { freshInstitute, startTestServer, token } from '../helpers/servers.js';
import { waitUntil } from '../helpers/wait.js';

it('draws the live job list as one table redrawn in place, fitted to a 72-column terminal, a stalled job in STALLED', async () => {
  const server = await startTestServer({ config: { stallSweepMs: 100 } });
  const client = new RunwatchClient({ url: server.url, token: await token({ inst: freshInstitute() }) });
  const silent = await client.createJob({ name: 'silent shard with a rather long name', total: 10, tags: ['nightly'], heartbeatSeconds: 1 });
  const quiet = new ProgressReporter(client);
  quiet.attach(silent.id);
  quiet.advance(1);
  await quiet.flush();
  await waitUntil(() => client.getJob(silent.id), (j) => j.stalled, 'the silent job to stall');

  const screen = fakeScreen(72);
  const stop = new AbortController();
  const err: string[] = [];
  const errStream = { write: (s: string) => (err.push(s), true) } as unknown as NodeJS.WritableStream;
  const done = watchJobList(client, { tags: ['nightly'], tty: true, colour: false, out: screen.out, err: errStream, signal: stop.signal });
  const table = () => screen.rows().join('\n');
  await waitUntil(table, (t) => /STALLED/.test(t), 'the stalled job in the table', 10_000);

  const worker = new ProgressReporter(client);
  const id = (await worker.start({ name: 'fresh shard', total: 20, tags: ['nightly'] }))!;
  worker.advance(5);
  await worker.flush();
  await waitUntil(table, (t) => new RegExp(`${id} +fresh shard +RUNNING +5/20`).test(t), 'the new job running in the table', 10_000);
  worker.advance(15);
  await worker.complete();
  await waitUntil(table, (t) => new RegExp(`${id} +fresh shard +COMPLETED +20/20 +100%`).test(t), 'the job completed in the table', 10_000);

  stop.abort();
  expect(await done).toBe(0);
  const rows = screen.rows();
  // One frame on the screen: the header, the column titles and two jobs (newest first), nothing scrolled before it.
  expect(rows[0]).toBe('runwatch watch --all --tag nightly  2 jobs · 0 running · 1 stalled');
  expect(rows[1]).toMatch(/^ID +NAME +STATUS +DONE +%/);
  expect(rows[2]).toContain(id);
  expect(rows[3]).toMatch(new RegExp(`^${silent.id} +silent shard.* +STALLED +1/10`));
  expect(rows).toHaveLength(4);
  expect(screen.overflows).toBe(0);
  expect(err).toEqual([]);
  await client.close();
});
