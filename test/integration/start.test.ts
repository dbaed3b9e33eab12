/**
 * `npm start` as a user runs it (`node --import tsx src/main.ts`, a real process): the banner ends with
 * an `export RUNWATCH_URL=… RUNWATCH_TOKEN=…` line that works when pasted, logs are JSON lines when
 * stdout is a pipe and pino-pretty lines on a terminal, and WebSocket open/close lines are debug.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { describe, it } from 'vitest';
import { gql, withTimeout, wsClient } from '../helpers/clients.js';
import { spawnServer, type ServerProcess } from '../helpers/processes.js';
import { token } from '../helpers/servers.js';
import { waitUntil } from '../helpers/wait.js';

const CREATE = `mutation { createBatchJob(input: { name: "pasted" }) { id } }`;

/** The JSON log lines of `output` (everything that starts with `{`), parsed. */
const logLines = (output: string) =>
  output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: number; msg: string; event?: string; transport?: string });

/** Opens a graphql-ws connection (a query over it) and closes it. */
async function openAndCloseWebSocket(url: string, tok: string) {
  const client = wsClient(url, tok);
  await new Promise<void>((resolve, reject) =>
    client.subscribe({ query: '{ __typename }' }, { next: () => {}, error: reject, complete: resolve }),
  );
  await client.dispose();
}

async function stop(server: ServerProcess) {
  server.kill('SIGTERM');
  const code = await withTimeout(server.exited, 10_000, 'the server to exit after SIGTERM');
  if (code !== 0) throw new Error(`the server exited with ${code}:\n${server.output()}`);
}

// The three start their own processes and wait on them: run them side by side.
describe.concurrent('npm start', () => {
  it('in dev mode prints an export line with the URL and the dev token that works when pasted; logs are JSON lines on a pipe; ws open/close at debug', async ({ expect }) => {
    const server = await spawnServer({ RUNWATCH_JWT_SECRET: undefined, LOG_LEVEL: 'debug' });
    const origin = server.url.replace(/\/graphql$/, '');
    const line = await waitUntil(() => /^export RUNWATCH_URL=(\S+) RUNWATCH_TOKEN=(\S+)$/m.exec(server.output()), Boolean, 'the export line');
    expect(line![1]).toBe(origin);
    // What a user does with it: the clients take the origin (they add /graphql) and the token.
    const job = (await gql(`${line![1]}/graphql`, line![2]!, CREATE)).createBatchJob;
    expect(job.id).toMatch(/^j_/);

    await openAndCloseWebSocket(server.url, line![2]!);
    const wsLines = await waitUntil(
      () => logLines(server.output()).filter((l) => l.transport === 'ws' && (l.event === 'connection_open' || l.event === 'connection_close')),
      (lines) => lines.length === 2,
      'the WebSocket open and close lines',
    );
    expect(wsLines.map((l) => [l.event, l.level])).toEqual([['connection_open', 20], ['connection_close', 20]]);
    await stop(server);
    // Not a terminal: every line that is not the banner is one JSON object.
    const rest = server.output().split('\n').filter((l) => l.trim() && !/^(runwatch is running|GraphiQL:|Dashboard:|Dev mode|export RUNWATCH_URL)/.test(l));
    expect(rest.length).toBeGreaterThan(3);
    for (const l of rest) expect(() => JSON.parse(l), l).not.toThrow();
  }, 120_000);

  it('with a real secret prints only the URL to export, and at the default level no line per WebSocket', async ({ expect }) => {
    const server = await spawnServer({ LOG_LEVEL: 'info' });
    const origin = server.url.replace(/\/graphql$/, '');
    await waitUntil(() => server.output(), (o) => o.includes('export RUNWATCH_URL'), 'the export line');
    expect(server.output()).toMatch(new RegExp(`^export RUNWATCH_URL=${origin.replace(/[.]/g, '\\.')}$`, 'm'));
    expect(server.output()).not.toContain('RUNWATCH_TOKEN=');
    await openAndCloseWebSocket(server.url, await token({}));
    await stop(server);
    const lines = logLines(server.output());
    expect(lines.map((l) => l.msg)).toContain('stopped'); // logging worked until the end
    expect(lines.filter((l) => l.event === 'connection_open' || l.event === 'connection_close')).toEqual([]);
  }, 120_000);

  it('on a terminal writes human-readable log lines (pino-pretty)', async ({ expect }) => {
    if (!existsSync('/usr/bin/script')) throw new Error('`script` (util-linux) is missing: apt-get install -y bsdutils');
    // `script` gives the server a pseudo-terminal as stdout; the test reads what the terminal shows.
    const child = spawn('/usr/bin/script', ['-qfec', `${process.execPath} --import tsx src/main.ts`, '/dev/null'], {
      env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', NO_COLOR: '1', RUNWATCH_JWT_SECRET: undefined },
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    let shown = '';
    child.stdout!.on('data', (chunk: Buffer) => (shown += chunk.toString()));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      await waitUntil(() => shown, (s) => s.includes('export RUNWATCH_URL'), 'the banner on the terminal', 60_000);
      expect(shown).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: runwatch listening \{"url":"http:\/\/127\.0\.0\.1:\d+\/graphql"/m);
      expect(shown).not.toMatch(/^\{"level"/m);
    } finally {
      process.kill(-child.pid!, 'SIGTERM'); // the process group this test started (script and the server)
      await withTimeout(exited, 10_000, 'script and the server to exit');
    }
  }, 120_000);
});
