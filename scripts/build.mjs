// `npm run build` (and `prepack`): compiles src/ to dist/ (JavaScript, .d.ts, source maps) with
// tsconfig.build.json and copies the dashboard's static files next to the compiled server.
import { spawnSync } from 'node:child_process';
import { cpSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
rmSync(`${root}dist`, { recursive: true, force: true });
const run = spawnSync(process.execPath, [tsc, '-p', `${root}tsconfig.build.json`], { stdio: ['ignore', process.stderr, 'inherit'] });
if (run.status !== 0) process.exit(run.status ?? 1);
cpSync(`${root}src/dashboard/public`, `${root}dist/dashboard/public`, { recursive: true });
process.stderr.write('built dist/\n');
