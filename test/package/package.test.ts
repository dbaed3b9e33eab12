/**
 * The npm package as a user gets it: `npm pack` (which builds dist/ in
 * `prepack`), the tarball installed into a scratch project in a temporary
 * directory (dependencies from the npm registry or cache), then used from plain
 * Node ESM, compiled against by strict TypeScript consumers (node16 and
 * bundler resolution), and run as `npx runwatch` without tsx. One pack and one
 * install serve every check.
 */
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { deferred, gql, withTimeout } from '../helpers/clients.js';
import { startTestServer, token } from '../helpers/servers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string;
  dependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
};

/** The environment without the `npm_*` variables of an enclosing `npm test`, which would redirect npm. */
const cleanEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));

/** Runs a command to its end; fails the test with its output when it exits non-zero. */
function run(cmd: string, args: string[], cwd: string, timeoutMs = 240_000): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, env: cleanEnv(), encoding: 'utf8', timeout: timeoutMs });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')} could not run (${r.error.message}); is npm installed (Debian: apt-get install -y npm, or Node's own npm)?`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`);
  return r;
}

let dir: string;
let project: string;
let tarball: string;
/** The paths `npm pack` put in the tarball (its --json report). */
let packedFiles: string[];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'runwatch-pack-'));
  project = join(dir, 'project');
  mkdirSync(project);
  const packed = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', dir], ROOT).stdout) as { filename: string; files: { path: string }[] }[];
  tarball = join(dir, packed[0]!.filename);
  packedFiles = packed[0]!.files.map((f) => f.path);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }));
  run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], project);
}, 300_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('npm pack', () => {
  it('ships only what users need: dist/, the bin, schema.graphql, README and package.json', () => {
    const files = packedFiles; // the tarball the other tests install, as npm pack listed it
    const outside = files.filter((f) => !/^(dist\/|bin\/runwatch\.js$|schema\.graphql$|README\.md$|package\.json$|LICENSE)/.test(f));
    expect(outside).toEqual([]);
    expect(files).toEqual(expect.arrayContaining(['dist/client/index.js', 'dist/client/index.d.ts', 'dist/client/index.js.map', 'dist/server.js', 'dist/server.d.ts', 'dist/cli/main.js', 'dist/dashboard/public/index.html']));
    expect(files.some((f) => f.startsWith('dist/') && /(test|bench)/.test(f.split('/')[1]!))).toBe(false);
  }, 90_000);

  it("installs the SDK without the server's packages (no Pothos, OpenTelemetry, Yoga or Redis client) and without tsx", () => {
    const installed = (name: string) => existsSync(join(project, 'node_modules', name, 'package.json'));
    for (const name of Object.keys(pkg.dependencies)) expect(installed(name), name).toBe(true);
    for (const name of ['tsx', '@pothos/core', '@opentelemetry/api', 'graphql-yoga', 'ioredis', 'pino', 'zod']) expect(installed(name), name).toBe(false);
  });

  it('runs `npx runwatch --version` without tsx', () => {
    const r = run('npx', ['--no-install', 'runwatch', '--version'], project, 60_000);
    expect(r.stdout.trim()).toBe(pkg.version);
  }, 90_000);

  it('says which packages to install when `runwatch serve` runs without the server packages', () => {
    const r = spawnSync('npx', ['--no-install', 'runwatch', 'serve', '--port', '0'], { cwd: project, env: cleanEnv(), encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('npm install');
    expect(r.stderr).toContain(`graphql-yoga@${pkg.peerDependencies['graphql-yoga']}`);
  }, 90_000);
});

describe('the installed SDK', () => {
  let server: RunningServer;
  let tok: string;
  beforeAll(async () => {
    server = await startTestServer();
    tok = await token();
  });

  it('is imported by plain Node ESM and watches a job to COMPLETED', async () => {
    const id = (await gql(server.url, tok, 'mutation { createBatchJob(input: { name: "packed", total: 4 }) { id } }')).createBatchJob.id as string;
    writeFileSync(
      join(project, 'watch.mjs'),
      `import { RunwatchClient, isFinalEvent } from 'runwatch';
const client = new RunwatchClient({ url: process.env.RUNWATCH_URL, token: process.env.RUNWATCH_TOKEN });
for await (const event of client.watchJob(process.argv[2])) {
  console.log(JSON.stringify({ type: event.type, status: event.job.status, completed: event.job.completed }));
  if (isFinalEvent(event)) break;
}
await client.close();
`,
    );
    const child = spawn(process.execPath, ['watch.mjs', id], { cwd: project, env: { ...cleanEnv(), RUNWATCH_URL: server.url, RUNWATCH_TOKEN: tok } });
    let out = '';
    let err = '';
    const snapshot = deferred();
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      if (out.includes('"SNAPSHOT"')) snapshot.resolve();
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
    await withTimeout(snapshot.promise, 20_000, () => `the SNAPSHOT line (stdout ${out}; stderr ${err})`);
    await gql(server.url, tok, 'mutation($id: ID!) { reportProgress(input: { jobId: $id, completed: 4 }) { id } }', { id });
    await gql(server.url, tok, 'mutation($id: ID!) { completeBatchJob(id: $id) { id } }', { id });
    expect(await withTimeout(exited, 20_000, () => `the script to exit (stdout ${out}; stderr ${err})`)).toBe(0);
    const events = out.trim().split('\n').map((l) => JSON.parse(l) as { type: string; status: string; completed: number });
    expect(events[0]!.type).toBe('SNAPSHOT');
    expect(events.at(-1)).toEqual({ type: 'COMPLETED', status: 'COMPLETED', completed: 4 });
  }, 90_000);

  for (const resolution of ['node16', 'bundler'] as const) {
    it(`compiles a strict SDK user (moduleResolution ${resolution}, exactOptionalPropertyTypes, skipLibCheck off) with 0 errors`, () => {
      const sub = join(project, `ts-${resolution}`);
      mkdirSync(sub, { recursive: true });
      writeFileSync(
        join(sub, 'user.ts'),
        `import { ProgressReporter, RunwatchClient, RunwatchError, type Job, type ProgressEvent } from 'runwatch';

export async function follow(url: string, token: string, id: string): Promise<Job | null> {
  const client = new RunwatchClient({ url, token: async () => token });
  let last: Job | null = null;
  for await (const event of client.watchJob(id, { after: undefined })) {
    const e: ProgressEvent = event;
    last = e.job;
    const percent: number | null | undefined = e.job.percent;
    if (percent != null) console.log(Math.round(percent));
  }
  const reporter = new ProgressReporter(client, { onError: (error: RunwatchError) => console.warn(error.code, error.message) });
  const flags: { total?: number } = {};
  await reporter.start({ name: 'typed', kind: 'BATCH', total: flags.total, metadata: { source: 'test' } });
  await client.createJob({ name: 'created', total: flags.total });
  reporter.advance(1);
  await reporter.complete();
  await client.close();
  return last;
}
`,
      );
      writeFileSync(
        join(sub, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            target: 'ES2022',
            lib: ['ES2023', 'DOM'],
            module: resolution === 'node16' ? 'Node16' : 'ESNext',
            moduleResolution: resolution,
            strict: true,
            exactOptionalPropertyTypes: true,
            noUncheckedIndexedAccess: true,
            skipLibCheck: false,
            noEmit: true,
            types: [],
          },
          files: ['user.ts'],
        }),
      );
      const r = spawnSync(process.execPath, [TSC, '-p', sub], { cwd: sub, encoding: 'utf8', timeout: 120_000 });
      expect(`${r.stdout}${r.stderr}`).toBe('');
      expect(r.status).toBe(0);
    }, 150_000);
  }
});
