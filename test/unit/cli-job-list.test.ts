/**
 * What `runwatch watch --all`, `runwatch watch` and `runwatch run` show and send, as pure functions
 * (clients/typescript/src/cli/watch-all.ts, watch.ts, client/reporter.ts): the stalled marker, the live
 * table fitted to a terminal, and the level a child's output line is sent with.
 */
import { describe, expect, it } from 'vitest';
import { guessLevel } from '../../clients/typescript/src/client/outputs.js';
import type { Job, JobUpdate, ProgressEvent } from '../../clients/typescript/src/client/index.js';
import { statusLabel } from '../../clients/typescript/src/cli/format.js';
import { listTable, updateLine } from '../../clients/typescript/src/cli/watch-all.js';
import { barLine, plainLine } from '../../clients/typescript/src/cli/watch.js';

const job = (over: Partial<Job> = {}): Job => ({
  id: 'j_1',
  kind: 'BATCH',
  name: 'embed shard 1',
  status: 'RUNNING',
  total: 10,
  completed: 4,
  failed: 0,
  percent: 40,
  rate: 2,
  etaSeconds: 3,
  stage: null,
  message: null,
  errorMessage: null,
  metadata: null,
  createdAt: '2026-12-07T10:00:00.000Z',
  startedAt: '2026-12-07T10:00:01.000Z',
  finishedAt: null,
  updatedAt: '2026-12-07T10:00:02.000Z',
  lastCursor: null,
  parentId: null,
  tags: ['nightly'],
  stalled: false,
  heartbeatSeconds: 300,
  successRate: null,
  childCounts: null,
  ...over,
});

describe('the stalled marker', () => {
  it('a RUNNING job that stopped reporting reads STALLED in bars, plain lines, list lines and tables; others keep their status', () => {
    const stalled = job({ stalled: true });
    expect(statusLabel(stalled)).toBe('STALLED');
    expect(statusLabel(job())).toBe('RUNNING');
    expect(statusLabel(job({ stalled: true, status: 'COMPLETED' }))).toBe('COMPLETED');
    expect(barLine(stalled, 100)).toMatch(/STALLED$/);
    const event = { cursor: 'c', runId: 'j_1', type: 'STALLED', timestamp: '2026-12-07T10:05:00.000Z', message: 'no report for 300 s', job: stalled } as ProgressEvent;
    expect(plainLine(event, false)).toMatch(/STALLED\s+4\/10 .* STALLED  - no report for 300 s$/);
    const update = { cursor: 'c', type: 'SNAPSHOT', timestamp: '2026-12-07T10:05:00.000Z', previousStatus: null, job: stalled } as JobUpdate;
    expect(updateLine(update, false)).toBe('10:05:00  SNAPSHOT  embed shard 1 (j_1)  STALLED  4/10  40%  rate 2/s  ETA 3s  tags nightly');
    expect(listTable([stalled, job({ id: 'j_2', name: 'other' })], 120, 'title', false).split('\n')[0]).toBe('title  2 jobs · 1 running · 1 stalled');
  });
});

describe('listTable', () => {
  it('fits a narrow terminal by dropping the least useful columns, keeping id, status and percent', () => {
    const jobs = Array.from({ length: 3 }, (_, i) => job({ id: `j_${i}`, name: `a rather long job name number ${i}`, stage: 'embedding', createdAt: `2026-12-07T10:00:0${i}.000Z` }));
    const lines = listTable(jobs, 50, 'runwatch watch --all', false).split('\n');
    for (const line of lines.slice(1)) expect(line.length).toBeLessThanOrEqual(50);
    expect(lines[1]).toMatch(/^ID +NAME +STATUS +.*%/);
    expect(lines[1]).not.toContain('STAGE');
    expect(lines[2]).toMatch(/^j_2 /); // newest first
    expect(listTable([], 80, 'title', false)).toBe('title  0 jobs · 0 running\n(no matching jobs yet)');
  });
});

describe('guessLevel', () => {
  it('reads the first level word in the first 40 characters, a traceback as ERROR, else INFO (as python -m runwatch run does)', () => {
    expect(guessLevel('WARNING:root:disk almost full')).toBe('WARNING');
    expect(guessLevel('2026-12-07 10:00:00 error could not open file')).toBe('ERROR');
    expect(guessLevel('[warn] slow request')).toBe('WARNING');
    expect(guessLevel('FATAL: out of memory')).toBe('CRITICAL');
    expect(guessLevel('Traceback (most recent call last):')).toBe('ERROR');
    expect(guessLevel('loading model weights from /data/models/a-very-long-path ERROR')).toBe('INFO');
    expect(guessLevel('informational')).toBe('INFO');
  });
});
