/**
 * `runwatch watch <id...>`: one live bar per job on a terminal (cli-progress),
 * plain lines when stdout is not a terminal, or `--json` for one JSON event per
 * line. Ends when every job is final, with a summary; exit code 0 when all
 * COMPLETED, 1 when any FAILED or CANCELLED or could not be watched.
 */
import cliProgress from 'cli-progress';
import type { Job, ProgressEvent, RunwatchClient } from '../client/index.js';
import { formatCount, formatDuration, formatPercent, formatRate, paint, statusColour, textBar } from './format.js';

/** Options of {@link watchJobs}. */
export interface WatchCommandOptions {
  /** One JSON object per event per line (`{runId, type, cursor, timestamp, message, job}`). */
  json?: boolean;
  /** Resume after this cursor (only with a single id). */
  after?: string;
  /** Plain mode: least milliseconds between two PROGRESS lines of one job (default 1000); other events always print. */
  intervalMs?: number;
  /** Draw bars (default: whether stdout is a TTY). */
  tty?: boolean;
  /** Colours (default: a TTY and NO_COLOR unset). */
  colour?: boolean;
  out?: NodeJS.WritableStream;
  err?: NodeJS.WritableStream;
}

/** A one-line plain description of an event: `time name (id) TYPE completed/total pct rate ETA stage status`. */
export function plainLine(event: ProgressEvent, colour: boolean): string {
  const j = event.job;
  const status = statusColour(j.status);
  const parts = [
    new Date(event.timestamp).toISOString().slice(11, 19),
    `${j.name} (${j.id})`,
    event.type.padEnd(11),
    formatCount(j.completed, j.total),
    formatPercent(j.percent),
    `rate ${formatRate(j.rate)}`,
    `ETA ${formatDuration(j.etaSeconds)}`,
    j.stage ? `stage ${j.stage}` : '',
    status ? paint(j.status, status, colour) : j.status,
    event.message && event.type !== 'STAGE' ? `- ${event.message}` : '',
  ];
  return parts.filter(Boolean).join('  ');
}

/** The summary line of a finished (or abandoned) job. */
export function summaryLine(job: Job | null, id: string, colour: boolean, error?: string): string {
  if (!job) return `${paint('✖', 'red', colour)} ${id}  ${error ?? 'not watched'}`;
  const mark = job.status === 'COMPLETED' ? paint('✔', 'green', colour) : paint('✖', statusColour(job.status) ?? 'red', colour);
  const seconds = job.startedAt && job.finishedAt ? (Date.parse(job.finishedAt) - Date.parse(job.startedAt)) / 1000 : null;
  const detail = job.status === 'FAILED' ? `error: ${job.errorMessage ?? '?'}` : job.status === 'CANCELLED' && job.message ? `reason: ${job.message}` : '';
  return [
    mark,
    job.name,
    paint(job.status, statusColour(job.status) ?? 'cyan', colour),
    formatCount(job.completed, job.total),
    job.failed ? `${job.failed} failed` : '',
    seconds !== null ? `in ${formatDuration(seconds)}` : '',
    job.rate !== null ? `(${formatRate(job.rate)})` : '',
    detail,
    error ? `(${error})` : '',
  ]
    .filter(Boolean)
    .join('  ');
}

/** The bar line of one job (cli-progress calls it on every redraw). */
function barLine(job: Job, colour: boolean, nameWidth: number): string {
  const c = statusColour(job.status);
  const fraction = job.total ? Math.min(1, (job.completed + job.failed) / job.total) : job.status === 'COMPLETED' ? 1 : null;
  const bar = c ? paint(textBar(fraction), c, colour) : textBar(fraction);
  return [
    job.name.slice(0, nameWidth).padEnd(nameWidth),
    bar,
    formatPercent(job.percent).padStart(4),
    formatCount(job.completed, job.total).padStart(11),
    formatRate(job.rate).padStart(8),
    `ETA ${formatDuration(job.etaSeconds)}`.padEnd(11),
    (job.stage ?? '').slice(0, 16).padEnd(16),
    c ? paint(job.status, c, colour) : job.status,
  ].join(' ');
}

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

  const multibar =
    !opts.json && tty
      ? new cliProgress.MultiBar({
          format: (_o, _p, payload: { job: Job; nameWidth: number }) => barLine(payload.job, colour, payload.nameWidth),
          stream: out as NodeJS.WriteStream,
          hideCursor: true,
          clearOnComplete: false,
          stopOnComplete: false,
          autopadding: false,
          forceRedraw: true,
          fps: 10,
        })
      : null;
  const nameWidth = 24;

  await Promise.all(
    ids.map(async (id) => {
      let bar: cliProgress.SingleBar | null = null;
      let lastPlainAt = 0;
      let last: Job | null = null;
      try {
        for await (const event of client.watchJob(id, { after: ids.length === 1 ? opts.after : undefined })) {
          last = event.job;
          if (opts.json) {
            out.write(`${JSON.stringify(event)}\n`);
          } else if (multibar) {
            const payload = { job: event.job, nameWidth };
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
  multibar?.stop();
  if (!opts.json) {
    out.write(`\n${ids.length > 1 ? `Summary of ${ids.length} jobs:` : 'Summary:'}\n`);
    for (const id of ids) out.write(`  ${summaryLine(finals.get(id) ?? null, id, colour, errors.get(id))}\n`);
  } else {
    for (const [id, message] of errors) err.write(`runwatch: cannot watch ${id}: ${message}\n`);
  }
  const allCompleted = ids.every((id) => finals.get(id)?.status === 'COMPLETED' && !errors.has(id));
  return allCompleted ? 0 : 1;
}
