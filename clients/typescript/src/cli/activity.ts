/**
 * `runwatch activity`: the account's live activity — active jobs with the
 * resources they hold, totals and budget — as a table redrawn in place on a
 * terminal, one summary line per update in a pipe, or one JSON event per line
 * with `--json`. Runs until interrupted (or a ContextMismatch).
 */
import type { ActivityEvent, RunwatchClient } from '../client/index.js';
import { fitTable, formatCount, formatPercent, wrapParts, type TableColumn } from './format.js';

type Update = Extract<ActivityEvent, { __typename: 'ActivityUpdate' }>;
type Billing = Extract<ActivityEvent, { __typename: 'BillingUpdate' }>;

/** Options of {@link watchActivity}. */
export interface ActivityOptions {
  scope: 'USER' | 'INSTITUTE' | 'ENVIRONMENT';
  json?: boolean;
  /** Draw a table in place (stdout is a terminal). */
  tty: boolean;
  out?: NodeJS.WritableStream;
  /** Columns to lay the table out in (default: the terminal's width, followed on resize; 80 when unknown). */
  width?: number;
}

/**
 * The table's columns, least useful dropped first on a narrow terminal:
 * CONTAINERS, then CPU, then ID, MEMORY, GPUS, DONE; NAME is cut down to 12
 * characters before any column goes; STATUS and % always stay.
 */
export const ACTIVITY_COLUMNS: TableColumn[] = [
  { header: 'ID', priority: 3 },
  { header: 'NAME', priority: 8, minWidth: 12 },
  { header: 'STATUS', priority: Infinity },
  { header: 'DONE', priority: 6 },
  { header: '%', priority: Infinity },
  { header: 'CONTAINERS', priority: 1 },
  { header: 'CPU', priority: 2 },
  { header: 'MEMORY', priority: 4 },
  { header: 'GPUS', priority: 5 },
];

/** The in-place screen of `runwatch activity` at `width` columns: summary lines, a blank line, the table, hints. */
export function activityScreen(scope: string, update: Pick<Update, 'totals' | 'activeJobs'>, budget: string, hints: string[], width: number): string {
  const t = update.totals;
  const parts = [`runwatch activity (${scope.toLowerCase()})`, `${t.jobs} active`, `${t.containers} containers`, `${t.cpuCores} CPU cores`, `${t.memoryGb} GB`, `${t.gpus} GPUs`, `budget ${budget}`];
  const rows = update.activeJobs.map((a) => [
    a.job.id,
    a.job.name,
    a.job.status,
    formatCount(a.job.completed, a.job.total),
    formatPercent(a.job.percent),
    String(a.resources.containers),
    String(a.resources.cpuCores),
    `${a.resources.memoryGb} GB`,
    String(a.resources.gpus),
  ]);
  const lines = [...wrapParts(parts, width), '', rows.length ? fitTable(ACTIVITY_COLUMNS, rows, width) : 'no active jobs'];
  if (hints.length) lines.push('', ...hints.map((h) => (h.length > width ? `${h.slice(0, width - 1)}…` : h)));
  return `${lines.join('\n')}\n`;
}

const money = (n: number | null | undefined) => (n == null ? '–' : n.toFixed(2));

/** "used 42.50 of 500.00 EUR, 457.50 left", "used 22.50 of 20.00 EUR, 2.50 over" or "used 3.20 (no budget)". */
export function budgetLine(b: Pick<Billing, 'budgetTotal' | 'budgetUsed' | 'budgetRemaining' | 'currency'>): string {
  const cur = b.currency ? ` ${b.currency}` : '';
  return b.budgetTotal == null ? `used ${money(b.budgetUsed)}${cur} (no budget)` : `used ${money(b.budgetUsed)} of ${money(b.budgetTotal)}${cur}, ${b.budgetRemaining != null && b.budgetRemaining < 0 ? `${money(-b.budgetRemaining)} over` : `${money(b.budgetRemaining)} left`}`;
}

/** Follows activity until the stream ends. @returns the exit code (0; 1 on ContextMismatch). */
export async function watchActivity(client: RunwatchClient, opts: ActivityOptions): Promise<number> {
  const out = opts.out ?? process.stdout;
  const now = await client.getActivity(opts.scope);
  let budget = budgetLine(now.budget);
  let last: Update | null = null;
  const hints: string[] = [];
  const width = () => opts.width ?? Math.max(20, ((out as NodeJS.WriteStream).columns || 80) - 1);
  const draw = () => {
    if (!last) return;
    const t = last.totals;
    if (!opts.tty) {
      out.write(`${new Date().toISOString()} ${t.jobs} active · ${t.containers} containers · ${t.cpuCores} CPU cores · ${t.memoryGb} GB · ${t.gpus} GPUs · budget ${budget}\n`);
      return;
    }
    out.write('\x1b[H\x1b[2J'); // home, clear screen
    out.write(activityScreen(opts.scope, last, budget, hints, width()));
  };
  // A resized terminal (SIGWINCH) is redrawn at once, to its new width.
  if (opts.tty) out.on('resize', draw);
  try {
    return await follow();
  } finally {
    out.off('resize', draw);
  }

  async function follow(): Promise<number> {
    for await (const event of client.watchActivity(opts.scope)) {
      if (opts.json) out.write(`${JSON.stringify(event)}\n`);
      if (event.__typename === 'ContextMismatch') {
        if (!opts.json) out.write(`context mismatch: ${event.message}\n`);
        return 1;
      }
      if (opts.json) continue;
      if (event.__typename === 'ActivityUpdate') last = event;
      else if (event.__typename === 'BillingUpdate') budget = budgetLine(event);
      else if (event.__typename === 'ActivityHint') {
        const line = `${event.timestamp.slice(11, 19)} ${event.message}`;
        if (!opts.tty) out.write(`${line}\n`);
        hints.unshift(line);
        hints.length = Math.min(hints.length, 5);
        if (!opts.tty) continue;
      }
      draw();
    }
    return 0;
  }
}
