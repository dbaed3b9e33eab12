/**
 * Prints the Pothos schema (sorted) to schema.graphql, or with `--check`
 * exits 1 when the committed file differs from what the code builds.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { printSortedSchema } from '../src/schema/index.js';

const file = fileURLToPath(new URL('../schema.graphql', import.meta.url));
const printed = printSortedSchema();
if (process.argv.includes('--check')) {
  let committed = '';
  try {
    committed = readFileSync(file, 'utf8');
  } catch {
    // missing counts as stale
  }
  if (committed !== printed) {
    process.stderr.write('schema.graphql is stale: run `npm run schema:print` and commit it.\n');
    process.exit(1);
  }
  process.stdout.write('schema.graphql is up to date.\n');
} else {
  writeFileSync(file, printed);
  process.stdout.write(`wrote ${file}\n`);
}
