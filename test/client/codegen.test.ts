/**
 * The committed generated SDK code matches what codegen makes from
 * schema.graphql and src/client/documents now (regenerated into a temp dir).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';

it('src/client/generated is up to date (else run `npm run codegen` and commit)', () => {
  const out = mkdtempSync(join(tmpdir(), 'runwatch-codegen-'));
  try {
    const run = spawnSync(process.execPath, ['node_modules/@graphql-codegen/cli/esm/bin.js', '--config', 'codegen.ts', '--silent'], {
      env: { ...process.env, CODEGEN_OUT: `${out}/` },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.status, `codegen failed: ${run.stderr}${run.stdout}`).toBe(0);
    const committedDir = 'src/client/generated';
    const files = readdirSync(out).sort();
    expect(readdirSync(committedDir).sort()).toEqual(files);
    for (const file of files) {
      expect(readFileSync(join(committedDir, file), 'utf8'), `${file} is stale: run \`npm run codegen\` and commit`).toBe(readFileSync(join(out, file), 'utf8'));
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
