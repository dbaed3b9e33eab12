/**
 * Dependencies point one way: domain ← backends ← delivery ← services ←
 * schema ← transport/server; observe and limits sit beside, importing neither
 * each other nor the schema or services. This test reads every import (type
 * imports too) of src/ and fails naming the file and the import that points
 * the wrong way.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../src');

/** The layer of a src-relative path: its top folder, or `top` for files directly in src/. */
const layerOf = (path: string): string => (path.includes('/') ? path.slice(0, path.indexOf('/')) : NEUTRAL_FILES.has(path) ? 'neutral' : 'top');

/** Files in src/ that any layer may use: small shared types and settings, importing only the domain and auth. */
const NEUTRAL_FILES = new Set(['config.ts', 'close-codes.ts', 'request-context.ts']);

/** What each layer may import (besides itself and packages). Layers not listed (top: server wiring, cli, client, dashboard) may import anything. */
const ALLOWED: Record<string, readonly string[]> = {
  domain: [],
  auth: ['domain'],
  neutral: ['domain', 'auth', 'neutral'],
  backends: ['domain'],
  delivery: ['domain', 'backends'],
  services: ['domain', 'auth', 'backends', 'delivery', 'neutral'],
  schema: ['domain', 'auth', 'backends', 'delivery', 'services', 'neutral'],
  observe: ['domain', 'auth', 'backends', 'delivery', 'neutral'],
  limits: ['domain', 'auth', 'backends', 'delivery', 'neutral'],
  transport: ['domain', 'auth', 'backends', 'delivery', 'services', 'schema', 'limits', 'observe', 'neutral'],
};

function* sourceFiles(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* sourceFiles(path);
    else if (name.endsWith('.ts')) yield path;
  }
}

/** Every relative import (`from '…'`, `import('…')`, `export … from '…'`) of a file, as src-relative .ts paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
  return specifiers.map((s) => relative(SRC, resolve(dirname(file), s)).replace(/\.js$/, '.ts'));
}

describe('import direction', () => {
  it('no module imports a layer above it (or beside it, for observe and limits)', () => {
    const wrong: string[] = [];
    let checked = 0;
    for (const file of sourceFiles(SRC)) {
      const from = relative(SRC, file);
      const allowed = ALLOWED[layerOf(from)];
      if (!allowed) continue;
      for (const target of importsOf(file)) {
        checked++;
        const to = layerOf(target);
        if (to === layerOf(from) || allowed.includes(to)) continue;
        wrong.push(`${from} -> ${target}`);
      }
    }
    expect(checked).toBeGreaterThan(100);
    expect(wrong).toEqual([]);
  });

  it('no service imports another (they share delivery/job-writer.ts, stream kinds and projectors instead)', () => {
    const SHARED = new Set(['services/clock.ts']); // the Clock type, not a service
    const wrong: string[] = [];
    let services = 0;
    for (const file of sourceFiles(join(SRC, 'services'))) {
      const from = relative(SRC, file);
      if (SHARED.has(from)) continue;
      services++;
      for (const target of importsOf(file)) if (target.startsWith('services/') && !SHARED.has(target)) wrong.push(`${from} -> ${target}`);
    }
    expect(services).toBeGreaterThanOrEqual(5);
    expect(wrong).toEqual([]);
  });
});
