/**
 * The two npm packages as users get them. `npm pack` each (its `prepack` builds dist/): the server
 * (`runwatch-server`, the repository root) and the client (`runwatch`, clients/typescript). Each tarball is
 * installed ALONE into its own empty scratch project (dependencies from the npm registry or cache,
 * `--prefer-offline`), then:
 * - the server starts with `npx runwatch-server serve` (PORT=0: the printed URL) and answers /readyz;
 * - the client is imported by plain Node ESM (no TypeScript loader), watches a job on that server to
 *   COMPLETED and exits; `npx runwatch` runs without tsx; strict TypeScript users compile against it;
 * - the client's installed size and dependency count are printed.
 * One pack and one install per package serve every check (the two run side by side).
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deferred, gql, withTimeout } from '../helpers/clients.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLIENT_DIR = join(ROOT, 'clients/typescript');
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
type Manifest = { name: string; version: string; bin: Record<string, string>; dependencies: Record<string, string> };
const serverPkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as Manifest;
const clientPkg = JSON.parse(readFileSync(join(CLIENT_DIR, 'package.json'), 'utf8')) as Manifest;

/** The environment without the `npm_*` variables of an enclosing `npm test`, which would redirect npm. */
const cleanEnv = () => Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.toLowerCase().startsWith('npm_')));

/** Runs a command to its end; rejects with its output when it exits non-zero or cannot start. */
async function run(cmd: string, args: string[], cwd: string, timeoutMs = 360_000): Promise<{ stdout: string; stderr: string }> {
  try {
    return await promisify(execFile)(cmd, args, { cwd, env: cleanEnv(), encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
  } catch (error) {
    const e = error as { code?: string | number; stdout?: string; stderr?: string; message: string };
    if (e.code === 'ENOENT') throw new Error(`${cmd} could not run; is npm installed (Debian: apt-get install -y npm, or Node's own npm)?`);
    throw new Error(`${cmd} ${args.join(' ')} (in ${cwd}) failed: ${e.message}\n${(e.stdout ?? '').slice(-3000)}\n${(e.stderr ?? '').slice(-3000)}`);
  }
}

interface Installed {
  /** The paths `npm pack` put in the tarball (its --json report). */
  files: string[];
  /** The scratch project the tarball was installed into, alone. */
  project: string;
  /** npm install's warnings (EBADENGINE and others). */
  installLog: string;
}

let dir: string;
let server: Installed;
let client: Installed;

/** Packs the package in `pkgDir` and installs the tarball alone into `<dir>/<name>`. */
async function packAndInstall(pkgDir: string, name: string): Promise<Installed> {
  const out = join(dir, `${name}-tarball`);
  mkdirSync(out);
  const packed = JSON.parse((await run('npm', ['pack', '--json', '--pack-destination', out], pkgDir)).stdout) as { filename: string; files: { path: string }[] }[];
  const project = join(dir, name);
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: `scratch-${name}`, private: true, type: 'module' }));
  const install = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', join(out, packed[0]!.filename)], project);
  return { files: packed[0]!.files.map((f) => f.path), project, installLog: install.stderr };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'runwatch-pack-'));
  [server, client] = await Promise.all([packAndInstall(ROOT, 'server'), packAndInstall(CLIENT_DIR, 'client')]);
}, 420_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const installed = (project: string, name: string) => existsSync(join(project, 'node_modules', name, 'package.json'));

describe('npm pack', () => {
  it('the server tarball ships dist/, its bin, schema.graphql, README and package.json: no client, tests or benches', () => {
    const outside = server.files.filter((f) => !/^(dist\/|bin\/runwatch-server\.js$|schema\.graphql$|README\.md$|package\.json$|LICENSE)/.test(f));
    expect(outside).toEqual([]);
    expect(server.files).toEqual(expect.arrayContaining(['dist/server.js', 'dist/server.d.ts', 'dist/bin.js', 'dist/main.js', 'dist/dashboard/public/index.html']));
    expect(server.files.filter((f) => /^dist\/(client|cli|test|bench)\//.test(f))).toEqual([]);
  });

  it('the client tarball ships the compiled SDK and CLI, its bin, README and package.json: nothing of the server', () => {
    const outside = client.files.filter((f) => !/^(dist\/|bin\/runwatch\.js$|README\.md$|package\.json$|LICENSE)/.test(f));
    expect(outside).toEqual([]);
    expect(client.files).toEqual(expect.arrayContaining(['dist/client/index.js', 'dist/client/index.d.ts', 'dist/client/index.js.map', 'dist/cli/main.js']));
    expect(client.files.filter((f) => !/^dist\/(client|cli)\//.test(f) && f.startsWith('dist/'))).toEqual([]);
  });

  it("installs the client without the server's packages (no Pothos, OpenTelemetry, Yoga, Redis client, pino, zod, jose) and without tsx", () => {
    for (const name of Object.keys(clientPkg.dependencies)) expect(installed(client.project, name), name).toBe(true);
    for (const name of ['tsx', 'runwatch-server', '@pothos/core', '@opentelemetry/api', 'graphql-yoga', 'ioredis', 'pino', 'zod', 'jose', 'prom-client'])
      expect(installed(client.project, name), name).toBe(false);
    // What a GPU box or a laptop that only watches pays for the client (printed in the test output).
    const du = spawnSync('du', ['-sk', join(client.project, 'node_modules')], { encoding: 'utf8' });
    const lock = JSON.parse(readFileSync(join(client.project, 'node_modules/.package-lock.json'), 'utf8')) as { packages: Record<string, unknown> };
    const packages = Object.keys(lock.packages).filter((p) => p.startsWith('node_modules/') && p !== 'node_modules/runwatch');
    const serverLock = JSON.parse(readFileSync(join(server.project, 'node_modules/.package-lock.json'), 'utf8')) as { packages: Record<string, unknown> };
    const serverDu = spawnSync('du', ['-sk', join(server.project, 'node_modules')], { encoding: 'utf8' });
    console.log(
      `installed client (runwatch): ${(Number.parseInt(du.stdout, 10) / 1024).toFixed(1)} MB in node_modules, ${packages.length} packages besides runwatch itself (${Object.keys(clientPkg.dependencies).length} direct)\n` +
        `installed server (runwatch-server): ${(Number.parseInt(serverDu.stdout, 10) / 1024).toFixed(1)} MB in node_modules, ${Object.keys(serverLock.packages).length - 1} packages`,
    );
    // npm ignores the repository's `overrides` in a user's install: say what Node 20 users see there.
    const engineWarnings = (log: string) => [...new Set([...log.matchAll(/EBADENGINE\s+package: '([^']+)'/g)].map((m) => m[1]))];
    console.log(`EBADENGINE in a user's install: client ${JSON.stringify(engineWarnings(client.installLog))}, server ${JSON.stringify(engineWarnings(server.installLog))}`);
    expect(engineWarnings(client.installLog)).toEqual([]);
    expect(packages.length).toBeLessThan(30);
  });

  it('installs the server with every package it imports: no peer dependency left for the user to add', () => {
    for (const name of Object.keys(serverPkg.dependencies)) expect(installed(server.project, name), name).toBe(true);
    expect(installed(server.project, 'runwatch'), 'the client package').toBe(false);
    expect(installed(server.project, 'tsx')).toBe(false);
  });

  it('runs `npx runwatch --version` and `npx runwatch-server --version` without tsx', async () => {
    const [c, s] = await Promise.all([
      run('npx', ['--no-install', 'runwatch', '--version'], client.project, 60_000),
      run('npx', ['--no-install', 'runwatch-server', '--version'], server.project, 60_000),
    ]);
    expect(c.stdout.trim()).toBe(clientPkg.version);
    expect(s.stdout.trim()).toBe(serverPkg.version);
  }, 90_000);
});

describe('the installed server and client together', () => {
  let child: ChildProcess;
  let url: string;
  let tok: string;
  /** What `serve` printed up to its URL and dev token. */
  let banner = '';
  let exited: Promise<number | null>;

  beforeAll(async () => {
    // `npx runwatch-server serve` in its own process group, so the test can end npx and the server it started.
    child = spawn('npx', ['--no-install', 'runwatch-server', 'serve'], {
      cwd: server.project,
      env: { ...cleanEnv(), PORT: '0', HOST: '127.0.0.1', RUNWATCH_JWT_SECRET: '', REDIS_URL: '' },
      detached: true,
    });
    exited = new Promise((resolve) => child.once('close', resolve));
    let out = '';
    let err = '';
    const ready = deferred<{ url: string; token: string }>();
    child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      const u = /(http:\/\/127\.0\.0\.1:\d+\/graphql)/.exec(out)?.[1];
      const t = /RUNWATCH_TOKEN=(\S+)/.exec(out)?.[1];
      if (u && t) {
        banner = out;
        ready.resolve({ url: u, token: t });
      }
    });
    child.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
    void exited.then((code) => ready.reject(new Error(`runwatch-server serve exited ${code}: ${out}\n${err}`)));
    ({ url, token: tok } = await withTimeout(ready.promise, 60_000, () => `runwatch-server serve to print its URL and dev token (stdout ${out}; stderr ${err})`));
  }, 90_000);

  afterAll(async () => {
    if (child?.pid && child.exitCode === null) {
      process.kill(-child.pid, 'SIGTERM');
      await withTimeout(exited, 15_000, 'runwatch-server to stop on SIGTERM');
    }
  }, 30_000);

  it('`npx runwatch-server serve` starts an in-memory server that answers /readyz', async () => {
    const res = await fetch(new URL('/readyz', url));
    expect(res.status).toBe(200);
    // Answers with the dev token it printed (the other test of this block may have created a job already: the
    // order of tests is not fixed), and says it runs in memory.
    expect(Array.isArray((await gql(url, tok, '{ batchJobs(first: 1) { nodes { id } } }')).batchJobs.nodes)).toBe(true);
    expect(banner).toContain('(backend: memory)');
  });

  it('the client is imported by plain Node ESM and watches a job on that server to COMPLETED, then exits', async () => {
    writeFileSync(
      join(client.project, 'watch.mjs'),
      `import { RunwatchClient, isFinalEvent } from 'runwatch';
// No url: RUNWATCH_URL, as the CLI and the Python client do.
const client = new RunwatchClient({ token: process.env.RUNWATCH_TOKEN });
const job = await client.createJob({ name: 'packed', total: 4 });
console.log(JSON.stringify({ created: job.id }));
for await (const event of client.watchJob(job.id)) {
  console.log(JSON.stringify({ type: event.type, status: event.job.status, completed: event.job.completed }));
  if (isFinalEvent(event)) break;
}
await client.close();
`,
    );
    const watcher = spawn(process.execPath, ['watch.mjs'], { cwd: client.project, env: { ...cleanEnv(), RUNWATCH_URL: url, RUNWATCH_TOKEN: tok } });
    let out = '';
    let err = '';
    const snapshot = deferred();
    watcher.stdout.setEncoding('utf8').on('data', (c: string) => {
      out += c;
      if (out.includes('"SNAPSHOT"')) snapshot.resolve();
    });
    watcher.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    const done = new Promise<number | null>((resolve) => watcher.once('close', resolve));
    await withTimeout(snapshot.promise, 30_000, () => `the SNAPSHOT line (stdout ${out}; stderr ${err})`);
    const id = (JSON.parse(out.split('\n')[0]!) as { created: string }).created;
    await gql(url, tok, 'mutation($id: ID!) { reportProgress(input: { jobId: $id, completed: 4 }) { id } }', { id });
    await gql(url, tok, 'mutation($id: ID!) { completeBatchJob(id: $id) { id } }', { id });
    expect(await withTimeout(done, 20_000, () => `the script to exit (stdout ${out}; stderr ${err})`)).toBe(0);
    const events = out.trim().split('\n').slice(1).map((l) => JSON.parse(l) as { type: string; status: string; completed: number });
    expect(events[0]!.type).toBe('SNAPSHOT');
    expect(events.at(-1)).toEqual({ type: 'COMPLETED', status: 'COMPLETED', completed: 4 });
  }, 90_000);

  for (const resolution of ['node16', 'bundler'] as const) {
    it(`compiles a strict SDK user (moduleResolution ${resolution}, exactOptionalPropertyTypes, skipLibCheck off) with 0 errors`, () => {
      const sub = join(client.project, `ts-${resolution}`);
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
