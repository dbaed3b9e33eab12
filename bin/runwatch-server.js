#!/usr/bin/env node
// The `runwatch-server` command (serve | token; src/bin.ts). An installed package runs the compiled server
// (dist/bin.js; no TypeScript loader needed). In a checkout of the repository (src/ present) it runs the
// TypeScript sources through tsx, a devDependency, so the command always matches the code being worked on;
// `npm run build` makes dist/.
import { existsSync } from 'node:fs';

const checkout = existsSync(new URL('../src/bin.ts', import.meta.url));
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
  await import('../src/bin.ts');
} else {
  await import('../dist/bin.js');
}
