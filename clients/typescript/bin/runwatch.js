#!/usr/bin/env node
// The `runwatch` command. An installed package runs the compiled CLI (dist/cli/main.js; no TypeScript
// loader needed). In a checkout of the repository (src/ present) it runs the TypeScript sources through
// tsx, a devDependency, so the command always matches the code being worked on; `npm run build` makes dist/.
import { existsSync } from 'node:fs';

const checkout = existsSync(new URL('../src/cli/main.ts', import.meta.url));
let tsx = null;
if (checkout) {
  try {
    tsx = await import('tsx/esm/api');
  } catch {
    // tsx not installed (npm install --omit=dev): fall back to dist/ below.
  }
}
if (tsx) {
  tsx.register();
  await import('../src/cli/main.ts');
} else {
  await import('../dist/cli/main.js');
}
