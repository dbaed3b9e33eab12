/**
 * `runwatch watch --all [--tag T...] [--status S...]`: the tenant's live job list through `jobUpdates` (no
 * polling). On a terminal a table redrawn in place (newest first; a stalled job reads STALLED, in yellow); in a
 * pipe one line per update (PROGRESS at most every `--interval` ms per job); `--json` one update per line. Runs
 * until interrupted (Ctrl-C, SIGTERM), resuming after disconnects from the last cursor as the SDK does.
 */
import type { Job, JobStatus, JobUpdate, RunwatchClient } from '../client/index.js';
import { clip, fitTable, formatCount, formatDuration, formatPercent, formatRate, oneLine, paint, statusColour, statusLabel, type TableColumn } from './format.js';
import { terminalWidth } from './watch.js';

/** Options of {@link watchJobList}. */
export interface WatchListOptions {
  /** Only jobs carrying every one of these tags. */
  tags?: string[] | undefined;
  /** Only jobs in one of these statuses (a job leaving them is shown once more, with its new status). */
  status?: JobStatus[] | undefined;
  /** One JSON update per line (`{cursor, type, timestamp, previousStatus, job}`). */
  json?: boolean | undefined;
  /** Plain mode: least milliseconds between two PROGRESS lines of one job (default 1000); other updates always print. */
  intervalMs?: number | undefined;
  /** Draw a live table (default: whether stdout is a TTY). */
  tty?: boolean | undefined;
  /** Colours (default: a TTY and NO_COLOR unset). */
  colour?: boolean | undefined;
  /** Never give up reconnecting (default: 20 failed attempts in a row end the watch with exit code 1). */
  retryForever?: boolean | undefined;
  /** Aborting ends the watch (exit code 0). */
  signal?: AbortSignal | undefined;
  out?: NodeJS.WritableStream | undefined;
  err?: NodeJS.WritableStream | undefined;
}

const LIST_COLUMNS: TableColumn[] = [
  { header: 'ID', priority: Infinity },
  { header: 'NAME', priority: 9, minWidth: 12 },
  { header: 'STATUS', priority: Infinity },
  { header: 'DONE', priority: 5 },
  { header: '%', priority: Infinity },
  { header: 'RATE', priority: 3 },
  { header: 'ETA', priority: 4 },
  { header: 'STAGE', priority: 1, minWidth: 8 },
  { header: 'TAGS', priority: 2, minWidth: 8 },
];

/** Most rows the live table shows (the newest jobs); the header says how many more there are. */
const MAX_ROWS = 50;

/** One plain line of an update: `time TYPE name (id) STATUS done/total pct rate ETA [stage] [tags] [- message]`. */
export function updateLine(update: JobUpdate, colour: boolean): string {
  const j = update.job;
  const label = statusLabel(j);
  const c = statusColour(label);
  return [
    new Date(update.timestamp).toISOString().slice(11, 19),
    update.type.padEnd(8),
    `${oneLine(j.name)} (${j.id})`,
    c ? paint(label, c, colour) : label,
    update.previousStatus && update.previousStatus !== j.status ? `(was ${update.previousStatus})` : '',
    formatCount(j.completed, j.total),
    formatPercent(j.percent),
    `rate ${formatRate(j.rate)}`,
    `ETA ${formatDuration(j.etaSeconds)}`,
    j.stage ? `stage ${oneLine(j.stage)}` : '',
    j.tags.length ? `tags ${j.tags.map(oneLine).join(',')}` : '',
    j.status === 'FAILED' && j.errorMessage ? `- ${oneLine(j.errorMessage)}` : '',
  ]
    .filter(Boolean)
    .join('  ');
}

/** The live table's text: a header line with counts (running ones not stalled, stalled ones), then one row per job, newest first, fitted to `width`. */
export function listTable(jobs: Job[], width: number, title: string, colour: boolean): string {
  const sorted = [...jobs].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  // A stalled job is RUNNING too; it is counted once, as stalled.
  const stalled = jobs.filter((j) => statusLabel(j) === 'STALLED').length;
  const running = jobs.filter((j) => j.status === 'RUNNING').length - stalled;
  const head = [`${title}  ${jobs.length} job${jobs.length === 1 ? '' : 's'}`, `${running} running`, stalled ? paint(`${stalled} stalled`, 'yellow', colour) : '']
    .filter(Boolean)
    .join(' · ');
  if (jobs.length === 0) return `${head}\n(no matching jobs yet)`;
  const rows = sorted.slice(0, MAX_ROWS).map((j) => [
    j.id,
    clip(oneLine(j.name), 40),
    statusLabel(j),
    formatCount(j.completed, j.total),
    formatPercent(j.percent),
    formatRate(j.rate),
    formatDuration(j.etaSeconds),
    oneLine(j.stage ?? ''),
    j.tags.map(oneLine).join(','),
  ]);
  const table = fitTable(LIST_COLUMNS, rows, width);
  // Colour the status cells after fitting (fitTable measures plain text).
  const coloured = colour
    ? table
        .split('\n')
        .map((line, i) => {
          const job = i === 0 ? undefined : sorted[i - 1];
          const c = job ? statusColour(statusLabel(job)) : null;
          return c ? line.replace(` ${statusLabel(job!)}`, ` ${paint(statusLabel(job!), c, true)}`) : line;
        })
        .join('\n')
    : table;
  const more = jobs.length > MAX_ROWS ? `\n… and ${jobs.length - MAX_ROWS} older jobs` : '';
  return `${head}\n${coloured}${more}`;
}

/**
 * Watches the tenant's job list until `signal` aborts. Resolves with the exit code: 0 when stopped, 1 when the
 * list could not be watched (bad token, the server gone for good).
 */
export async function watchJobList(client: RunwatchClient, opts: WatchListOptions = {}): Promise<number> {
  const out = opts.out ?? process.stdout;
  const err = opts.err ?? process.stderr;
  const tty = !opts.json && (opts.tty ?? Boolean((out as NodeJS.WriteStream).isTTY));
  const colour = opts.colour ?? (tty && !process.env.NO_COLOR);
  const interval = opts.intervalMs ?? 1000;
  const title = `runwatch watch --all${opts.tags?.length ? ` --tag ${opts.tags.join(' ')}` : ''}${opts.status?.length ? ` --status ${opts.status.join(' ')}` : ''}`;
  const jobs = new Map<string, Job>();
  const lastPlainAt = new Map<string, number>();
  let drawnLines = 0;
  let redraw: NodeJS.Timeout | null = null;
  const draw = () => {
    redraw = null;
    const text = listTable([...jobs.values()], terminalWidth(out), title, colour);
    // Move up over the previous frame and clear it; every line fits the width, so none wrapped.
    out.write(`${drawnLines ? `\u001b[${drawnLines}A\r\u001b[J` : ''}${text}\n`);
    drawnLines = text.split('\n').length;
  };
  const scheduleDraw = () => (redraw ??= setTimeout(draw, 100));
  const onResize = () => scheduleDraw();
  if (tty) {
    out.on('resize', onResize);
    draw();
  }
  try {
    const updates = client.jobUpdates(
      { tags: opts.tags, status: opts.status },
      {
        signal: opts.signal,
        retry: { maxAttempts: opts.retryForever ? Infinity : undefined },
        onReconnect: ({ attempt, delayMs, reason }) => err.write(`runwatch: ${reason}; reconnecting (attempt ${attempt} in ${Math.round(delayMs / 100) / 10} s)\n`),
      },
    );
    for await (const update of updates) {
      if (opts.json) {
        out.write(`${JSON.stringify(update)}\n`);
        continue;
      }
      jobs.set(update.job.id, update.job);
      if (tty) {
        scheduleDraw();
        continue;
      }
      const now = Date.now();
      if (update.type !== 'PROGRESS' || now - (lastPlainAt.get(update.job.id) ?? 0) >= interval) {
        lastPlainAt.set(update.job.id, now);
        out.write(`${updateLine(update, colour)}\n`);
      }
    }
    return 0;
  } catch (error) {
    err.write(`runwatch: cannot watch the job list: ${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  } finally {
    if (redraw) clearTimeout(redraw);
    if (tty) {
      out.off('resize', onResize);
      draw();
    }
  }
}
