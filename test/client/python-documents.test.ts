/**
 * The Python client's GraphQL documents (clients/python/src/runwatch/documents.py) are valid against
 * schema.graphql, so the Python client and the schema cannot drift apart unnoticed.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { buildSchema, parse, validate } from 'graphql';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The documents as the Python module defines them: every module-level string that is an operation. */
function pythonDocuments(): Record<string, string> {
  const script = [
    'import json, runwatch.documents as d',
    "print(json.dumps({k: v for k, v in vars(d).items() if k.isupper() and isinstance(v, str) and v.lstrip().split(' ', 1)[0] in ('query', 'mutation', 'subscription')}))",
  ].join('\n');
  let out: string;
  try {
    out = execFileSync('python3', ['-c', script], { cwd: ROOT, env: { ...process.env, PYTHONPATH: `${ROOT}clients/python/src` }, encoding: 'utf8' });
  } catch (error) {
    throw new Error(`python3 is needed to read the Python client's documents (apt-get install -y python3): ${String(error)}`);
  }
  return JSON.parse(out) as Record<string, string>;
}

describe('Python client documents', () => {
  it('are valid against schema.graphql', () => {
    const schema = buildSchema(readFileSync(`${ROOT}schema.graphql`, 'utf8'));
    const documents = pythonDocuments();
    expect(Object.keys(documents)).toEqual(expect.arrayContaining(['REPORT_ITEMS', 'REPORT_STEP', 'APPEND_LOGS', 'METRIC_SERIES', 'REPORT_PROGRESS', 'WATCH_JOB']));
    const problems = Object.entries(documents).flatMap(([name, text]) => validate(schema, parse(text)).map((e) => `${name}: ${e.message}`));
    expect(problems).toEqual([]);
  });
});
