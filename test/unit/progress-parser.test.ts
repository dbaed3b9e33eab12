/**
 * The `runwatch run` line parser and tracker: what people's scripts print.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { LineSplitter, parseProgressLine, ProgressTracker, type ParsedProgress, type ProgressUpdate } from '../../clients/typescript/src/cli/progress-parser.js';

interface Samples {
  parse: { line: string; expected: ParsedProgress }[];
  ignored: string[];
  trackers: { name: string; fixedTotal: number | null; steps: { input: ParsedProgress; expected: ProgressUpdate | null }[] }[];
}
/** Shared with the Python client's suite (clients/python/tests/test_progress_parser.py): both runners must agree. */
const samples = JSON.parse(readFileSync(fileURLToPath(new URL('../fixtures/progress-samples.json', import.meta.url)), 'utf8')) as Samples;

describe('parseProgressLine (test/fixtures/progress-samples.json)', () => {
  it.each(samples.parse.map((s) => [s.line, s.expected] as const))('%s', (line, expected) => {
    expect(parseProgressLine(line)).toEqual(expected);
  });

  it.each(samples.ignored)('ignores %j', (line) => {
    expect(parseProgressLine(line)).toBeNull();
  });
});

describe('ProgressTracker (test/fixtures/progress-samples.json)', () => {
  it.each(samples.trackers.map((t) => [t.name, t] as const))('%s', (_name, t) => {
    const tracker = new ProgressTracker(t.fixedTotal);
    for (const step of t.steps) expect(tracker.update(step.input)).toEqual(step.expected);
  });
});

describe('LineSplitter', () => {
  it('splits on \\n, \\r\\n and the \\r progress bars redraw with', () => {
    const s = new LineSplitter();
    expect(s.push('a\rb')).toEqual(['a']);
    expect(s.push('c\r\nd\n')).toEqual(['bc', 'd']);
    expect(s.push('tail')).toEqual([]);
    expect(s.partial).toBe('tail'); // the bar being drawn now: runwatch run parses it at once
    expect(s.end()).toEqual(['tail']);
  });
});
