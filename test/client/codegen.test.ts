/**
 * The committed generated SDK code matches what codegen makes from
 * schema.graphql and clients/typescript/src/client/documents now (regenerated into a temp dir),
 * and graphql-codegen pointed at a live server's URL (introspection with the
 * token header) generates exactly the same.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { withTimeout } from '../helpers/clients.js';
import { startTestServer, token } from '../helpers/servers.js';

/** Runs codegen into a temp dir (asynchronously: an in-process server must keep answering) and compares it with the committed files. */
async function expectSameAsCommitted(env: Record<string, string>, hint: string) {
  const out = mkdtempSync(join(tmpdir(), 'runwatch-codegen-'));
  try {
    const child = spawn(process.execPath, ['node_modules/@graphql-codegen/cli/esm/bin.js', '--config', 'codegen.ts', '--silent'], {
      env: { ...process.env, ...env, CODEGEN_OUT: `${out}/` },
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (output += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (output += c));
    const status = await withTimeout(new Promise<number | null>((resolve) => child.once('close', resolve)), 90_000, () => `codegen to finish (output: ${output.slice(-800)})`);
    expect(status, `codegen failed: ${output}`).toBe(0);
    const committedDir = 'clients/typescript/src/client/generated';
    const files = readdirSync(out).sort();
    expect(readdirSync(committedDir).sort()).toEqual(files);
    for (const file of files) {
      expect(readFileSync(join(out, file), 'utf8'), `${file}: ${hint}`).toBe(readFileSync(join(committedDir, file), 'utf8'));
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

it('clients/typescript/src/client/generated is up to date (else run `npm run codegen` and commit)', async () => {
  await expectSameAsCommitted({}, 'stale: run `npm run codegen` and commit');
}, 120_000);

it("generates the same types from a live server's URL (introspection with the token header) as from schema.graphql", async () => {
  const server = await startTestServer();
  await expectSameAsCommitted({ CODEGEN_SCHEMA_URL: server.url, CODEGEN_TOKEN: await token() }, 'differs when generated from the live server');
}, 120_000);
