/**
 * `runwatch watch` and `runwatch activity` lay out to the terminal's width:
 * from 40 to 200 columns every watch bar shows the whole status, the percent
 * and the ETA on every frame, names take the free width, the final frame has
 * no stale lines and the summary never wraps inside a word (drawn on a
 * terminal emulated by test/helpers/screen.ts); the least useful columns go
 * first; the activity screen never wraps and is redrawn to the new width when
 * the terminal is resized.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { activityScreen, budgetLine, watchActivity } from '../../clients/typescript/src/cli/activity.js';
import { fitTable, visibleLength } from '../../clients/typescript/src/cli/format.js';
import { barFit, barLine, summaryLine, watchJobs } from '../../clients/typescript/src/cli/watch.js';
import { fakeScreen } from '../helpers/screen.js';
import { waitUntil } from '../helpers/wait.js';
import type { ActivityEvent, Job, ProgressEvent, RunwatchClient } from '../../clients/typescript/src/client/index.js';

const job = (over: Partial<Job>): Job =>
  ({
    id: 'j_0mwq78tmo00046357db62',
    kind: 'BATCH',
    name: 're-rank nightly batch of customer support tickets',
    status: 'RUNNING',
    total: 5000,
    completed: 2750,
    failed: 0,
    percent: 55.00000000000001,
    rate: 17.345678,
    etaSeconds: 129.7,
    stage: 'embed with e5-large-v2',
    message: null,
    errorMessage: null,
    metadata: null,
    createdAt: '2026-12-01T00:00:00.000Z',
    startedAt: '2026-12-01T00:00:01.000Z',
    finishedAt: null,
    updatedAt: '2026-12-01T00:00:02.000Z',
    lastCursor: null,
    ...over,
  }) as Job;

const JOBS = [
  job({}),
  job({ name: 'ingest PDFs', status: 'COMPLETED', completed: 5000, percent: 100, etaSeconds: 0, stage: 'index' }),
  job({ name: 'x', status: 'CANCELLED', total: null, percent: null, rate: null, etaSeconds: null, stage: null }),
  job({ name: 'eval: retrieval@10 on 2k queries', status: 'FAILED', completed: 123456, total: 1234567, percent: 10.000000000000002, etaSeconds: 7 * 3600 + 5 }),
];

describe('watch bars', () => {
  for (const width of [60, 80, 120]) {
    it(`at ${width} columns show the whole status, the percent and the ETA of every job, within the width`, () => {
      for (const j of JOBS) {
        const line = barLine(j, width);
        expect(visibleLength(line), line).toBeLessThanOrEqual(width);
        expect(line.endsWith(` ${j.status}`), line).toBe(true);
        expect(line).toMatch(j.percent === null ? / - / : / \d+% /);
        expect(line).toMatch(/ ETA (\d+s|\d+m \d\ds|\d+h \d\dm|-)/);
      }
      // Every job gets the same cells at the same widths (the fit of the watched jobs), so the bars line up.
      const fit = barFit(JOBS);
      const statusColumn = new Set(JOBS.map((j) => barLine(j, width, false, fit).lastIndexOf(` ${j.status}`)));
      expect(statusColumn.size).toBe(1);
    });
  }

  it('drop the least useful columns first: stage, then rate, then done/total', () => {
    const j = JOBS[0]!;
    expect(barLine(j, 120)).toContain('embed with e5-large-v2');
    expect(barLine(j, 120)).toContain('17.3/s');
    expect(barLine(j, 120)).toContain('2750/5000');
    expect(barLine(j, 60)).not.toContain('embed');
    expect(barLine(j, 60)).not.toContain('/s');
    expect(barLine(j, 60)).toContain('2750/5000');
    expect(barLine(j, 45)).not.toContain('2750/5000');
    expect(barLine(j, 45)).toMatch(/ 55% .*ETA 2m 10s .*RUNNING$/);
  });

  it('show full-precision percents and rates rounded: 55%, 17.3/s', () => {
    const line = barLine(JOBS[0]!, 120);
    expect(line).toContain(' 55% ');
    expect(line).not.toContain('55.0000');
    expect(line).toContain('17.3/s');
  });

  it('keep colour codes out of the width', () => {
    const line = barLine(JOBS[3]!, 80, true);
    expect(line).toContain('\u001b[31m');
    expect(visibleLength(line)).toBeLessThanOrEqual(80);
  });
});

/** A terminal: a stream that says it is a TTY of `columns` width and collects what is drawn. */
function fakeTerminal(columns: number) {
  const out = Object.assign(new PassThrough(), { isTTY: true, columns });
  const state = { text: '' };
  out.setEncoding('utf8').on('data', (c: string) => (state.text += c));
  return { out, state };
}
/** The visible lines of drawn output: ANSI control sequences removed, carriage returns as line ends. */
const drawnLines = (text: string) =>
  text
    .replace(/\u001b\[[0-9;?]*[A-Za-z]/g, '\n')
    .split(/[\r\n]+/)
    .filter((l) => l.trim());

describe('runwatch watch on a terminal', () => {
  it('redraws its bars to the new width when the terminal is resized', async () => {
    const { out, state } = fakeTerminal(121);
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    const event = (type: string, over: Partial<Job>) => ({ cursor: '1.1', runId: 'j1', type, timestamp: '2026-12-01T00:00:00.000Z', message: null, job: job(over) }) as ProgressEvent;
    const client = {
      async *watchJob(): AsyncGenerator<ProgressEvent> {
        yield event('SNAPSHOT', {});
        await finished;
        yield event('COMPLETED', { status: 'COMPLETED', completed: 5000, percent: 100, etaSeconds: 0, finishedAt: '2026-12-01T00:01:00.000Z' });
      },
    } as unknown as RunwatchClient;
    const done = watchJobs(client, ['j1'], { out, err: new PassThrough(), colour: false });
    // cli-progress draws on its own timer (10 fps): wait until the expected drawing shows up.
    const waitForDrawn = (check: (lines: string[]) => boolean, what: string) => waitUntil(() => drawnLines(state.text), check, what, 10_000);
    await waitForDrawn((lines) => lines.some((l) => l.includes('embed with e5-l') && l.includes('RUNNING')), 'a 120-column bar with the stage');
    state.text = '';
    out.columns = 61;
    out.emit('resize');
    await waitForDrawn((lines) => lines.some((l) => l.includes('RUNNING')), 'a bar after the resize');
    for (const line of drawnLines(state.text).filter((l) => l.includes('RUNNING'))) {
      expect(line.trimEnd().length, line).toBeLessThanOrEqual(60);
      expect(line).toMatch(/ 55% .* ETA 2m 10s .*RUNNING$/);
    }
    finish();
    expect(await done).toBe(0);
    expect(out.listenerCount('resize')).toBe(0);
  });
});

describe('runwatch watch from 40 to 200 columns', () => {
  const NAMES = ['embed corpus with e5-large and a long name', 'eval: qa-benchmark v3', 'two\nlines'];
  const FINAL = [
    { status: 'COMPLETED', completed: 5000, percent: 100, etaSeconds: 0 },
    { status: 'FAILED', errorMessage: 'CUDA error: out of memory (tried to allocate 2.00 GiB) while embedding batch 17 of 40' },
    { status: 'CANCELLED', message: 'stopped by alice because the budget ran out' },
  ] as Partial<Job>[];
  const at = (i: number, type: string, over: Partial<Job>) =>
    ({ cursor: `1.${type}`, runId: `j${i}`, type, timestamp: '2026-12-01T00:00:00.000Z', message: null, job: job({ id: `j_${i}`, name: NAMES[i]!, ...over }) }) as ProgressEvent;

  for (const columns of [40, 60, 120, 200]) {
    it(`at ${columns} columns: no line longer than the terminal, STATUS on every frame, a clean final frame, summaries wrapped between words`, async () => {
      const screen = fakeScreen(columns);
      let finish!: () => void;
      const finished = new Promise<void>((resolve) => (finish = resolve));
      const client = {
        async *watchJob(id: string): AsyncGenerator<ProgressEvent> {
          const i = Number(id.slice(1));
          yield at(i, 'SNAPSHOT', { stage: i === 0 ? 'embed' : null });
          await finished;
          yield at(i, FINAL[i]!.status!, { finishedAt: '2026-12-01T00:01:00.000Z', ...FINAL[i] });
        },
      } as unknown as RunwatchClient;
      const ids = ['j0', 'j1', 'j2'];
      const done = watchJobs(client, ids, { out: screen.out, err: new PassThrough(), colour: true });
      const bars = (rows: string[]) => rows.filter((r) => / \d+% /.test(r));
      const running = await waitUntil(() => bars(screen.rows()), (b) => b.length === 3 && b.every((r) => r.endsWith(' RUNNING')), 'three RUNNING bars', 10_000);
      if (columns >= 120) expect(running[0]).toContain(NAMES[0]); // names take the free width: shown whole
      expect(running[2]).toContain('two\\nlines'); // a line break in a name is shown escaped, not drawn
      finish();
      expect(await done).toBe(1);
      await new Promise((resolve) => setImmediate(resolve));
      const rows = screen.rows();
      expect(screen.overflows, rows.join('\n')).toBe(0);
      for (const row of rows) expect(row.length, row).toBeLessThanOrEqual(columns);
      // The final frame: one bar per job, each with its final status; nothing left of the running frames.
      const summaryAt = rows.indexOf('Summary of 3 jobs:');
      expect(summaryAt, rows.join('\n')).toBeGreaterThan(0);
      const finalBars = rows.slice(0, summaryAt).filter((r) => r.trim());
      expect(finalBars).toHaveLength(3);
      finalBars.forEach((r, i) => expect(r, r).toMatch(new RegExp(` ${FINAL[i]!.status}$`)));
      expect(rows.join('\n')).not.toContain('RUNNING');
      // The summary: every job's line, wrapped only between words (joined back, the words are the same).
      const summary = rows.slice(summaryAt + 1).join(' ').replace(/\s+/g, ' ').trim();
      const expected = ids
        .map((id, i) => summaryLine({ ...job({ id: `j_${i}`, name: NAMES[i]! }), finishedAt: '2026-12-01T00:01:00.000Z', ...FINAL[i] } as Job, id, false))
        .join(' ')
        .replace(/\s+/g, ' ');
      expect(summary).toBe(expected);
    });
  }
});

const update = {
  __typename: 'ActivityUpdate' as const,
  scope: 'ENVIRONMENT',
  timestamp: '2026-12-01T10:10:55.000Z',
  totals: { jobs: 2, containers: 10, cpuCores: 38, memoryGb: 156, gpus: 4 },
  activeJobs: [
    { job: { id: 'j_0mwq8zdq100016038f53e', name: 'embed corpus with e5-large and a long name', kind: 'BATCH', status: 'RUNNING', completed: 126, total: 4000, percent: 3.15 }, resources: { containers: 4, cpuCores: 16, memoryGb: 64, gpus: 2 } },
    { job: { id: 'j_0mwq8zdq6000261887c11', name: 'fine-tune sd-lora (demo)', kind: 'TRAINING', status: 'PAUSED', completed: 3, total: 300, percent: 1 }, resources: { containers: 1, cpuCores: 8, memoryGb: 48, gpus: 1 } },
  ],
};
const BUDGET = 'used 2.25 of 20.00 EUR, 17.75 left';

describe('activity screen', () => {
  for (const width of [60, 80, 120]) {
    it(`at ${width} columns never wraps and keeps every status and percent`, () => {
      const screen = activityScreen('ENVIRONMENT', update as never, BUDGET, ['10:10:55 fine-tune sd-lora (demo) started and this hint is long enough to be cut'], width);
      for (const line of screen.split('\n')) expect(line.length, line).toBeLessThanOrEqual(width);
      expect(screen).toMatch(/STATUS/);
      expect(screen).toMatch(/ %/);
      expect(screen).toContain('RUNNING');
      expect(screen).toContain('PAUSED');
      expect(screen).toContain(' 3% ');
      expect(screen).toContain(BUDGET);
    });
  }

  it('says how far a budget is overspent instead of a negative amount left', () => {
    expect(budgetLine({ budgetTotal: 20, budgetUsed: 22.5, budgetRemaining: -2.5, currency: 'EUR' })).toBe('used 22.50 of 20.00 EUR, 2.50 over');
    expect(budgetLine({ budgetTotal: 20, budgetUsed: 2.25, budgetRemaining: 17.75, currency: 'EUR' })).toBe('used 2.25 of 20.00 EUR, 17.75 left');
  });

  it('drops CONTAINERS first and keeps every column at 120', () => {
    const at = (w: number) => activityScreen('ENVIRONMENT', update as never, BUDGET, [], w);
    expect(at(120)).toContain('CONTAINERS');
    expect(at(120)).toContain('j_0mwq8zdq100016038f53e');
    expect(at(80)).not.toContain('CONTAINERS');
    expect(at(60)).not.toContain('j_0mwq8zdq100016038f53e');
  });

  it('is redrawn at the new width when the terminal is resized', async () => {
    const out = Object.assign(new PassThrough(), { isTTY: true, columns: 121 });
    let text = '';
    out.setEncoding('utf8').on('data', (c: string) => (text += c));
    let end!: () => void;
    const ended = new Promise<void>((resolve) => (end = resolve));
    const client = {
      getActivity: async () => ({ budget: { budgetTotal: 20, budgetUsed: 2.25, budgetRemaining: 17.75, currency: 'EUR' } }),
      async *watchActivity(): AsyncGenerator<ActivityEvent> {
        yield update as unknown as ActivityEvent;
        await ended;
      },
    } as unknown as RunwatchClient;
    const done = watchActivity(client, { scope: 'ENVIRONMENT', tty: true, out });
    await new Promise((resolve) => setImmediate(resolve));
    expect(text).toContain('CONTAINERS');
    text = '';
    out.columns = 61;
    out.emit('resize');
    expect(text).toContain('\x1b[2J');
    const lines = text.replace('\x1b[H\x1b[2J', '').split('\n');
    for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(60);
    expect(text).not.toContain('CONTAINERS');
    end();
    expect(await done).toBe(0);
    expect(out.listenerCount('resize')).toBe(0);
  });
});

describe('fitTable', () => {
  it('cuts shrinkable columns before dropping others, and never drops Infinity columns', () => {
    const columns = [
      { header: 'NAME', priority: 2, minWidth: 6 },
      { header: 'STATUS', priority: Infinity },
      { header: 'EXTRA', priority: 1 },
    ];
    const rows = [['a very long job name', 'RUNNING', 'something']];
    expect(fitTable(columns, rows, 30).split('\n')[1]).toBe('a very lo…  RUNNING  something');
    const narrow = fitTable(columns, rows, 25).split('\n');
    expect(narrow[1]).toBe('a very long job…  RUNNING');
    expect(fitTable(columns, rows, 5).split('\n')[1]).toBe('RUNNING');
  });
});
