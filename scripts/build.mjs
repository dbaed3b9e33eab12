// `npm run build` (and `prepack`): compiles a package's src/ to its dist/ (JavaScript, .d.ts, source maps) with
// its tsconfig.build.json, and copies the dashboard's static files next to the compiled server.
// `node scripts/build.mjs` builds the server (the repository root); `node scripts/build.mjs clients/typescript`
// (the client package's `npm run build`, run from any directory) builds the client.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('..', import.meta.url));
const pkg = join(repo, process.argv[2] ?? '.');
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
rmSync(join(pkg, 'dist'), { recursive: true, force: true });
const run = spawnSync(process.execPath, [tsc, '-p', join(pkg, 'tsconfig.build.json')], { stdio: ['ignore', process.stderr, 'inherit'] });
if (run.status !== 0) process.exit(run.status ?? 1);
if (existsSync(join(pkg, 'src/dashboard/public'))) cpSync(join(pkg, 'src/dashboard/public'), join(pkg, 'dist/dashboard/public'), { recursive: true });
process.stderr.write(`built ${join(process.argv[2] ?? '.', 'dist')}/\n`);
