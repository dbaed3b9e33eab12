/**
 * `runwatch watch <id...>`: one live bar per job on a terminal (cli-progress),
 * plain lines when stdout is not a terminal, or `--json` for one JSON event per
 * line. Ends when every job is final, with a summary; exit code 0 when all
 * COMPLETED, 1 when any FAILED or CANCELLED or could not be watched.
 */
import cliProgress from 'cli-progress';
import type { Job, ProgressEvent, RunwatchClient } from '../client/index.js';
import { clip, formatCount, formatDuration, formatPercent, formatRate, layoutLine, oneLine, paint, statusColour, statusLabel, textBar, wrapWords, type Cell } from './format.js';

/** Options of {@link watchJobs}. */
export interface WatchCommandOptions {
  /** One JSON object per event per line (`{runId, type, cursor, timestamp, message, job}`). */
  json?: boolean;
  /** Resume after this cursor (only with a single id). */
  after?: string;
  /** Also the jobs' log lines (LOG events: appendLogs, `runwatch run`'s stderr), one line each. */
  logs?: boolean;
  /** Plain mode: least milliseconds between two PROGRESS lines of one job (default 1000); other events always print. */
  intervalMs?: number;
  /** Draw bars (default: whether stdout is a TTY). */
  tty?: boolean;
  /** Colours (default: a TTY and NO_COLOR unset). */
  colour?: boolean;
  /**
   * Until a job's first event arrives, give up on it after this many milliseconds (default
   * {@link DEFAULT_CONNECT_TIMEOUT_MS}); once connected, watching resumes after disconnects as the SDK does.
   */
  connectTimeoutMs?: number;
  /** Never give up: no connect timeout and unlimited reconnect attempts (`--retry-forever`). */
  retryForever?: boolean;
  out?: NodeJS.WritableStream;
  err?: NodeJS.WritableStream;
}

/** How long `runwatch watch` tries to reach the server before it gives up with exit code 1: 30 s (`--connect-timeout`). */
export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

/** After this long without a first event, say on stderr that the watcher is still connecting (milliseconds). */
const CONNECTING_NOTICE_MS = 1000;

/**
 * A one-line plain description of an event: `time name (id) TYPE completed/total pct rate ETA stage status`; the
 * status of a stalled job reads `STALLED`.
 */
export function plainLine(event: ProgressEvent, colour: boolean): string {
  const j = event.job;
  const label = statusLabel(j);
  const status = statusColour(label);
  const parts = [
    new Date(event.timestamp).toISOString().slice(11, 19),
    `${oneLine(j.name)} (${j.id})`,
    event.type.padEnd(11),
    formatCount(j.completed, j.total),
    formatPercent(j.percent),
    `rate ${formatRate(j.rate)}`,
    `ETA ${formatDuration(j.etaSeconds)}`,
    j.stage ? `stage ${oneLine(j.stage)}` : '',
    status ? paint(label, status, colour) : label,
    event.message && event.type !== 'STAGE' ? `- ${oneLine(event.message)}` : '',
  ];
  return parts.filter(Boolean).join('  ');
}

/** The lines of a LOG event: `time name (id) LOG LEVEL [source] message`, with `(n dropped before)` when the server's rate limit dropped some. */
export function logLines(event: ProgressEvent, colour: boolean): string[] {
  const head = `${new Date(event.timestamp).toISOString().slice(11, 19)}  ${oneLine(event.job.name)} (${event.job.id})  ${'LOG'.padEnd(11)}`;
  return (event.logs ?? []).map((line) => {
    const level = line.level === 'ERROR' || line.level === 'CRITICAL' ? paint(line.level, 'red', colour) : line.level === 'WARNING' ? paint(line.level, 'yellow', colour) : line.level;
    const dropped = line.droppedBefore ? `(${line.droppedBefore} dropped before)  ` : '';
    return `${head}  ${level}  ${line.source ? `[${oneLine(line.source)}]  ` : ''}${dropped}${oneLine(line.message)}`;
  });
}

/** The summary line of a finished (or abandoned) job. */
export function summaryLine(job: Job | null, id: string, colour: boolean, error?: string): string {
  if (!job) return `${paint('✖', 'red', colour)} ${id}  ${error ?? 'not watched'}`;
  const mark = job.status === 'COMPLETED' ? paint('✔', 'green', colour) : paint('✖', statusColour(job.status) ?? 'red', colour);
  const seconds = job.startedAt && job.finishedAt ? (Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000 : null;
  const detail = job.status === 'FAILED' ? `error: ${oneLine(job.errorMessage ?? '?')}` : job.status === 'CANCELLED' && job.message ? `reason: ${oneLine(job.message)}` : '';
  return [
    mark,
    oneLine(job.name),
    paint(job.status, statusColour(job.status) ?? 'cyan', colour),
    formatCount(job.completed, job.total),
    job.failed ? `${job.failed} failed` : '',
    seconds !== null ? `in ${formatDuration(seconds)}` : '',
    job.rate !== null ? `(${formatRate(job.rate)})` : '',
    detail,
    error ? `(${oneLine(error)})` : '',
  ]
    .filter(Boolean)
    .join('  ');
}

/**
 * The summary of a job as terminal lines of at most `width` columns: `  <summaryLine>`, word-wrapped (never inside a
 * word) with continuation lines indented under the name. Without a width (a pipe), one line.
 */
export function summaryLines(line: string, width = Infinity): string[] {
  return wrapWords(`  ${line}`, width, '     ');
}

/** Widths the name and stage cells of every bar grow to: the longest name and stage among the watched jobs. */
export interface BarFit {
  /** Longest job name in characters (names are shown whole when the line has room). */
  name: number;
  /** Longest stage in characters. */
  stage: number;
}

/** The {@link BarFit} of a set of jobs. */
export const barFit = (jobs: Iterable<Job>): BarFit => {
  const fit = { name: 8, stage: 6 };
  for (const j of jobs) {
    fit.name = Math.max(fit.name, oneLine(j.name).length);
    fit.stage = Math.max(fit.stage, oneLine(j.stage ?? '').length);
  }
  return fit;
};

/**
 * The bar line of one job laid out to `width` columns (cli-progress calls it on
 * every redraw, with the terminal's current width). Cells, in order: name,
 * bar, percent, done/total, rate, ETA, stage, status (`STALLED`, yellow, for a
 * RUNNING job that stopped reporting). Status, percent and ETA
 * are never dropped or cut; when the line does not fit, stage goes first,
 * then rate, then done/total, then the bar and name shrink. Free columns go to
 * the name first (up to the longest watched name, `fit.name`), then the stage,
 * then the bar (up to 40). Every job's line has the same cells at the same
 * width (given the same `fit`), so bars line up.
 */
export function barLine(job: Job, width: number, colour = false, fit: BarFit = barFit([job])): string {
  const label = statusLabel(job);
  const c = statusColour(label);
  const name = oneLine(job.name);
  const stage = oneLine(job.stage ?? '');
  const fraction = job.total ? Math.min(1, (job.completed + job.failed) / job.total) : job.status === 'COMPLETED' ? 1 : null;
  const fixed = (text: string, w: number, align: 'left' | 'right' = 'left') => (align === 'left' ? text.padEnd(w) : text.padStart(w));
  const cells: Cell[] = [
    { priority: 5, min: 8, want: fit.name, max: fit.name, render: (w) => clip(name, w).padEnd(w) },
    { priority: 4, min: 8, want: 10, max: 40, render: (w) => textBar(fraction, w), colour: c },
    { priority: Infinity, min: 4, max: 4, render: () => fixed(formatPercent(job.percent), 4, 'right') },
    { priority: 3, min: 11, max: 11, render: (w) => fixed(fitCount(job.completed, job.total, w), w, 'right') },
    { priority: 2, min: 8, max: 8, render: (w) => fixed(formatRate(job.rate), w, 'right') },
    { priority: Infinity, min: 11, max: 11, render: (w) => fixed(`ETA ${formatDuration(job.etaSeconds)}`, w) },
    { priority: 1, min: 6, want: Math.min(fit.stage, 24), max: Math.min(fit.stage, 24), render: (w) => clip(stage, w).padEnd(w) },
    { priority: Infinity, min: 9, max: 9, render: () => label, colour: c },
  ];
  return layoutLine(cells, width, colour);
}

/** Counts as `k`/`M` (3 significant digits) when `completed/total` is wider than `width`. */
function fitCount(completed: number, total: number | null | undefined, width: number): string {
  const full = formatCount(completed, total);
  if (full.length <= width) return full;
  const short = (n: number) => (n >= 1e6 ? `${Number((n / 1e6).toPrecision(3))}M` : n >= 1e4 ? `${Number((n / 1e3).toPrecision(3))}k` : String(n));
  return clip(`${short(completed)}/${total == null ? '?' : short(total)}`, width);
}

/** Milliseconds as seconds with at most one decimal: `0.3`, `30`. */
const seconds = (ms: number) => String(Math.round(ms / 100) / 10);

/** Columns to lay a bar out in: the terminal's width (one spare column), or 80 when unknown. */
export const terminalWidth = (out: NodeJS.WritableStream) => Math.max(20, ((out as NodeJS.WriteStream).columns || 80) - 1);

/**
 * Watches jobs until each is final. Resolves with the exit code (0: all COMPLETED, 1 otherwise).
 * Never rejects for a job's failure; a job that cannot be watched (NOT_FOUND, bad token) is reported in the summary.
 */
export async function watchJobs(client: RunwatchClient, ids: string[], opts: WatchCommandOptions = {}): Promise<number> {
  const out = opts.out ?? process.stdout;
  const err = opts.err ?? process.stderr;
  const tty = opts.tty ?? Boolean((out as NodeJS.WriteStream).isTTY);
  const colour = opts.colour ?? (tty && !process.env.NO_COLOR);
  const interval = opts.intervalMs ?? 1000;
  const finals = new Map<string, Job | null>();
  const errors = new Map<string, string>();
  const connectTimeoutMs = opts.retryForever ? undefined : (opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
  const bound = connectTimeoutMs === undefined ? 'retrying until stopped' : `giving up after ${seconds(connectTimeoutMs)} s`;
  // Say so on stderr when the server is not there yet: a failed first connection reports each retry at once
  // (once for all jobs: they share one connection), a hanging one after a second.
  let connectedOnce = false;
  let lastNotice = 0;
  const notice = (attempt: number | null, delayMs: number, reason: string) => {
    if (attempt !== null && attempt <= lastNotice) return;
    if (attempt !== null) lastNotice = attempt;
    const retry = attempt === null ? '' : ` retry ${attempt} in ${seconds(delayMs)} s (${reason});`;
    err.write(`runwatch: connecting to ${client.endpoint}…${retry} ${bound}\n`);
  };
  const slowNotice = setTimeout(() => {
    if (!connectedOnce && lastNotice === 0) notice(null, 0, '');
  }, CONNECTING_NOTICE_MS);

  // The newest state of every job with a bar, in the order the bars were made: names and stages size every bar alike.
  const shown = new Map<string, Job>();
  let fit = barFit([]);
  const multibar =
    !opts.json && tty
      ? new cliProgress.MultiBar({
          // Read the width on every redraw, so a resized terminal (SIGWINCH) gets lines that fit.
          format: (_o, _p, payload: { job: Job }) => barLine(payload.job, terminalWidth(out), colour, fit),
          stream: out as NodeJS.WriteStream,
          hideCursor: true,
          // cli-progress's own final frame cuts lines by their length in bytes, colour codes included (a green
          // COMPLETED lost its status): it clears its bars instead, and the final frame is drawn below.
          clearOnComplete: true,
          stopOnComplete: false,
          autopadding: false,
          forceRedraw: true,
          fps: 10,
        })
      : null;
  // Redraw at once when the terminal is resized (cli-progress would otherwise wait for the next event).
  const onResize = () => multibar?.update();
  if (multibar) out.on('resize', onResize);

  await Promise.all(
    ids.map(async (id) => {
      let bar: cliProgress.SingleBar | null = null;
      let lastPlainAt = 0;
      let last: Job | null = null;
      try {
        const watch = client.watchJob(id, {
          after: ids.length === 1 ? opts.after : undefined,
          logs: opts.logs ?? false,
          retry: { connectTimeoutMs, maxAttempts: opts.retryForever ? Infinity : undefined },
          onReconnect: ({ attempt, delayMs, reason, connected }) => {
            if (!connected && !connectedOnce) notice(attempt, delayMs, reason);
          },
        });
        for await (const event of watch) {
          connectedOnce = true;
          last = event.job;
          if (opts.json) {
            out.write(`${JSON.stringify(event)}\n`);
          } else if (event.type === 'LOG') {
            // Log lines print above the bars (cli-progress redraws them below), or as lines in a pipe.
            const text = logLines(event, colour).map((line) => `${line}\n`).join('');
            if (multibar) multibar.log(text);
            else out.write(text);
          } else if (multibar) {
            const payload = { job: event.job };
            shown.set(id, event.job);
            // Widths only grow, so bars do not jump when a stage changes to a shorter one.
            const now = barFit([event.job]);
            fit = { name: Math.max(fit.name, now.name), stage: Math.max(fit.stage, now.stage) };
            if (!bar) bar = multibar.create(event.job.total ?? 1, event.job.completed, payload);
            else bar.update(event.job.completed, payload);
          } else {
            const now = Date.now();
            if (event.type !== 'PROGRESS' || now - lastPlainAt >= interval) {
              lastPlainAt = now;
              out.write(`${plainLine(event, colour)}\n`);
            }
          }
        }
      } catch (error) {
        errors.set(id, error instanceof Error ? error.message : String(error));
        if (!multibar && !opts.json) err.write(`runwatch: cannot watch ${id}: ${errors.get(id)}\n`);
      }
      finals.set(id, last);
    }),
  );
  clearTimeout(slowNotice);
  multibar?.stop();
  out.off('resize', onResize);
  const width = tty ? terminalWidth(out) : Infinity;
  if (multibar) for (const job of shown.values()) out.write(`${barLine(job, width, colour, fit)}\n`);
  if (!opts.json) {
    out.write(`\n${ids.length > 1 ? `Summary of ${ids.length} jobs:` : 'Summary:'}\n`);
    for (const id of ids) for (const line of summaryLines(summaryLine(finals.get(id) ?? null, id, colour, errors.get(id)), width)) out.write(`${line}\n`);
  } else {
    for (const [id, message] of errors) err.write(`runwatch: cannot watch ${id}: ${message}\n`);
  }
  const allCompleted = ids.every((id) => finals.get(id)?.status === 'COMPLETED' && !errors.has(id));
  return allCompleted ? 0 : 1;
}
