/**
 * `runwatch watch` when the server is not there (a wrong --url, a server not started yet): it says so on stderr
 * within a second, reports each retry, and gives up with exit code 1 after the connect timeout (default 30 s,
 * documented in --help; shortened here with --connect-timeout / connectTimeoutMs so the test is quick). The port is
 * a closed one: bound, then closed, so nothing listens there.
 */
import { execFile } from 'node:child_process';
import { createServer } from 'node:net';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import { RunwatchClient } from '../../clients/typescript/src/client/index.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, watchJobs } from '../../clients/typescript/src/cli/watch.js';
import { deferred, withTimeout } from '../helpers/clients.js';

const BIN = fileURLToPath(new URL('../../clients/typescript/bin/runwatch.js', import.meta.url));

/** A port nothing listens on: bound on 127.0.0.1, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

it('says "connecting to <url>… retry n in s" on stderr within 1 s, then gives up with exit code 1 after the connect timeout', async () => {
  const port = await closedPort();
  const client = new RunwatchClient({ url: `http://127.0.0.1:${port}`, token: 'unused' });
  const out = new PassThrough().setEncoding('utf8');
  const err = new PassThrough().setEncoding('utf8');
  let stdout = '';
  let stderr = '';
  out.on('data', (c: string) => (stdout += c));
  const firstMessage = deferred<number>();
  err.on('data', (c: string) => {
    stderr += c;
    firstMessage.resolve(Date.now());
  });
  const started = Date.now();
  const exit = watchJobs(client, ['j_nowhere'], { out, err, tty: false, connectTimeoutMs: 1500 });
  const saidAt = await withTimeout(firstMessage.promise, 5_000, 'a message on stderr');
  expect(saidAt - started).toBeLessThan(1000);
  expect(stderr).toMatch(new RegExp(`^runwatch: connecting to http://127\\.0\\.0\\.1:${port}/graphql… retry 1 in [\\d.]+ s \\(connection failed: .*ECONNREFUSED.*\\); giving up after 1\\.5 s`));
  expect(await withTimeout(exit, 10_000, () => `watchJobs to give up (stderr ${stderr})`)).toBe(1);
  // Bounded: the retries stop at the deadline (plus one attempt's time on a loaded machine), not after 20 attempts.
  expect(Date.now() - started).toBeLessThan(1500 + 3000);
  expect(stdout).toContain('could not connect to watch job j_nowhere within 1.5 s');
  await client.close();
});

it('the CLI exits 1 after --connect-timeout, and --help documents the default bound and --retry-forever', async () => {
  const port = await closedPort();
  const run = promisify(execFile)(process.execPath, [BIN, 'watch', 'j_nowhere', '--url', `http://127.0.0.1:${port}`, '--token', 'unused', '--connect-timeout', '1'], {
    env: { ...process.env, NO_COLOR: '1' },
    timeout: 60_000,
  }).then(
    () => ({ code: 0, stderr: '' }),
    (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
  );
  const help = promisify(execFile)(process.execPath, [BIN, 'watch', '--help'], { timeout: 60_000 });
  const [r, h] = await Promise.all([run, help]);
  expect(r.code, r.stderr).toBe(1);
  expect(r.stderr).toContain(`runwatch: connecting to http://127.0.0.1:${port}/graphql… retry 1 in`);
  expect(r.stderr).toContain('giving up after 1 s');
  expect(DEFAULT_CONNECT_TIMEOUT_MS).toBe(30_000);
  expect(h.stdout.replace(/\s+/g, ' ')).toMatch(/--connect-timeout <seconds> give up \(exit 1\) when the server cannot be reached within this many seconds.*\(default: 30\)/);
  expect(h.stdout).toContain('--retry-forever');
}, 90_000);
