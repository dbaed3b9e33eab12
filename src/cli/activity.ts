/**
 * `runwatch activity`: the account's live activity — active jobs with the
 * resources they hold, totals and budget — as a table redrawn in place on a
 * terminal, one summary line per update in a pipe, or one JSON event per line
 * with `--json`. Runs until interrupted (or a ContextMismatch).
 */
import type { ActivityEvent, RunwatchClient } from '../client/index.js';
import { formatCount, formatPercent, table } from './format.js';

type Update = Extract<ActivityEvent, { __typename: 'ActivityUpdate' }>;
type Billing = Extract<ActivityEvent, { __typename: 'BillingUpdate' }>;

/** Options of {@link watchActivity}. */
export interface ActivityOptions {
  scope: 'USER' | 'INSTITUTE' | 'ENVIRONMENT';
  json?: boolean;
  /** Draw a table in place (stdout is a terminal). */
  tty: boolean;
  out?: NodeJS.WritableStream;
}

const money = (n: number | null | undefined) => (n == null ? '–' : n.toFixed(2));

/** "used 42.50 of 500.00 EUR, 457.50 left" or "used 3.20 (no budget)". */
export function budgetLine(b: Pick<Billing, 'budgetTotal' | 'budgetUsed' | 'budgetRemaining' | 'currency'>): string {
  const cur = b.currency ? ` ${b.currency}` : '';
  return b.budgetTotal == null ? `used ${money(b.budgetUsed)}${cur} (no budget)` : `used ${money(b.budgetUsed)} of ${money(b.budgetTotal)}${cur}, ${money(b.budgetRemaining)} left`;
}

/** Follows activity until the stream ends. @returns the exit code (0; 1 on ContextMismatch). */
export async function watchActivity(client: RunwatchClient, opts: ActivityOptions): Promise<number> {
  const out = opts.out ?? process.stdout;
  const now = await client.getActivity(opts.scope);
  let budget = budgetLine(now.budget);
  let last: Update | null = null;
  const hints: string[] = [];
  const draw = () => {
    if (!last) return;
    const t = last.totals;
    const summary = `${t.jobs} active · ${t.containers} containers · ${t.cpuCores} CPU cores · ${t.memoryGb} GB · ${t.gpus} GPUs · budget ${budget}`;
    if (!opts.tty) {
      out.write(`${new Date().toISOString()} ${summary}\n`);
      return;
    }
    const rows = last.activeJobs.map((a) => [
      a.job.id,
      a.job.name.length > 32 ? `${a.job.name.slice(0, 31)}…` : a.job.name,
      a.job.status,
      formatCount(a.job.completed, a.job.total),
      formatPercent(a.job.percent),
      String(a.resources.containers),
      String(a.resources.cpuCores),
      `${a.resources.memoryGb} GB`,
      String(a.resources.gpus),
    ]);
    out.write('\x1b[H\x1b[2J'); // home, clear screen
    out.write(`runwatch activity (${opts.scope.toLowerCase()})  ${summary}\n\n`);
    out.write(rows.length ? `${table(['ID', 'NAME', 'STATUS', 'DONE', '%', 'CONTAINERS', 'CPU', 'MEMORY', 'GPUS'], rows)}\n` : 'no active jobs\n');
    if (hints.length) out.write(`\n${hints.join('\n')}\n`);
  };
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
