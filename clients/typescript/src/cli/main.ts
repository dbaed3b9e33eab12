/**
 * The `runwatch` command line (commander). Commands: jobs, watch, activity,
 * run, share, demo (the server and token minting are the server package's
 * `runwatch-server serve|token`). Networked commands take `--url` / `--token` or
 * RUNWATCH_URL / RUNWATCH_TOKEN. Exit codes: 0 success; 1 failure (a watched
 * job failed, the server refused); 2 usage or configuration error; `run`
 * exits with its command's code.
 */
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { RunwatchError } from '../client/index.js';
import { graphqlEndpoint } from '../client/http.js';
import { CliError, connect, serverUrl, type ConnectionFlags } from './connection.js';
import { clip, fitTable, oneLine, formatCount, formatDuration, formatPercent, formatRate, statusLabel, type TableColumn } from './format.js';
import { runCommand } from './run.js';
import { DEFAULT_CONNECT_TIMEOUT_MS, watchJobs } from './watch.js';
import { watchJobList } from './watch-all.js';
import { watchActivity } from './activity.js';

const KINDS = ['BATCH', 'EVALUATION', 'TRAINING', 'PIPELINE'] as const;
const STATUSES = ['QUEUED', 'RUNNING', 'PAUSED', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;

/** `runwatch jobs` columns; on a narrow terminal CREATED goes first, then KIND, STAGE, RATE, FAILED, DONE; NAME is cut to 12 first. */
const JOB_COLUMNS: TableColumn[] = [
  { header: 'ID', priority: Infinity },
  { header: 'NAME', priority: 9, minWidth: 12 },
  { header: 'KIND', priority: 1 },
  { header: 'STATUS', priority: Infinity },
  { header: 'DONE', priority: 5 },
  { header: 'FAILED', priority: 4 },
  { header: '%', priority: Infinity },
  { header: 'RATE', priority: 3 },
  { header: 'ETA', priority: Infinity },
  { header: 'STAGE', priority: 2, minWidth: 8 },
  { header: 'CREATED (UTC)', priority: 0 },
  { header: 'TAGS', priority: 0.5, minWidth: 8 },
];

const positiveInt = (name: string) => (value: string) => {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`${name} must be a whole number`);
  return Number(value);
};

const withConnection = (cmd: Command) =>
  cmd
    .option('--url <url>', 'server URL (env RUNWATCH_URL; default http://127.0.0.1:4000)')
    .option('--token <jwt>', 'bearer token (env RUNWATCH_TOKEN)');

/** package.json: two levels up from both src/cli/main.ts and dist/cli/main.js. */
const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command()
  .name('runwatch')
  .description('Watch long-running work live: jobs, progress bars, a dashboard.')
  .version(pkg.version, '-V, --version', 'print the version and exit')
  .enablePositionalOptions()
  .showHelpAfterError()
  .exitOverride();

// The server and the minting of tokens live in the server package (runwatch-server), which a GPU box or a
// laptop that only watches does not install; these two commands say where they went.
for (const [name, what] of [
  ['serve', 'the server is its own package: npx runwatch-server serve (npm start in the repository)'],
  ['token', 'tokens are minted by the server package: npx runwatch-server token --sub <user>'],
] as const) {
  program
    .command(name, { hidden: true })
    .allowUnknownOption()
    .allowExcessArguments()
    .action(() => {
      throw new CliError(what, 2);
    });
}

withConnection(program.command('jobs'))
  .description("list the tenant's jobs, newest first")
  .addOption(new Option('--status <status...>', 'only these statuses').choices(STATUSES))
  .addOption(new Option('--kind <kind...>', 'only these kinds').choices(KINDS))
  .option('--tag <tag...>', 'only jobs carrying every one of these tags')
  .option('--parent <id>', "only this job's children (a job group)")
  .option('--first <n>', 'how many of the newest jobs to list (max 100)', positiveInt('--first'), 20)
  .option('--json', 'one JSON job per line')
  .action(
    async (
      o: ConnectionFlags & { status?: (typeof STATUSES)[number][]; kind?: (typeof KINDS)[number][]; tag?: string[]; parent?: string; first: number; json?: boolean },
    ) => {
      const client = connect(o);
      const page = await client.listJobs({ first: o.first, status: o.status, kind: o.kind, tags: o.tag, parentId: o.parent });
      if (o.json) {
        for (const job of page.nodes) process.stdout.write(`${JSON.stringify(job)}\n`);
        return;
      }
      if (page.nodes.length === 0) {
        process.stdout.write('no jobs\n');
        return;
      }
      const rows = page.nodes.map((j) => [
        j.id,
        clip(oneLine(j.name), 32),
        j.kind,
        statusLabel(j),
        formatCount(j.completed, j.total),
        String(j.failed),
        formatPercent(j.percent),
        formatRate(j.rate),
        formatDuration(j.etaSeconds),
        oneLine(j.stage ?? ''),
        j.createdAt.slice(0, 19).replace('T', ' '),
        j.tags.map(oneLine).join(','),
      ]);
      // On a terminal the table fits its width (least useful columns dropped first); in a pipe every column stays.
      const width = process.stdout.isTTY ? Math.max(20, process.stdout.columns - 1) : Infinity;
      process.stdout.write(`${fitTable(JOB_COLUMNS, rows, width)}\n`);
      if (page.pageInfo.hasNextPage) {
        process.stdout.write(
          o.first < 100
            ? `… more jobs: --first ${Math.min(100, o.first * 2)} lists the newest ${Math.min(100, o.first * 2)} (at most 100); --status and --kind narrow the list\n`
            : '… more jobs than the 100 --first lists at most: --status and --kind narrow the list\n',
        );
      }
    },
  );

withConnection(program.command('watch'))
  .description(
    "watch jobs live until they finish: bars on a terminal, lines in a pipe, or --json; with --all, the tenant's live job list (until Ctrl-C)",
  )
  .argument('[id...]', 'job ids (or --all)')
  .option('--all', "the tenant's live job list instead: every job (--tag, --status narrow it) as it is created, progresses and finishes")
  .option('--tag <tag...>', 'with --all: only jobs carrying every one of these tags')
  .addOption(new Option('--status <status...>', 'with --all: only jobs in these statuses').choices(STATUSES))
  .option('--json', 'one JSON event per line')
  .option('--logs', "also the jobs' log lines (appendLogs; runwatch run sends a command's stderr lines)")
  .option('--after <cursor>', 'resume after this cursor (one job only)')
  .option('--interval <ms>', 'plain output: least milliseconds between PROGRESS lines of a job', positiveInt('--interval'), 1000)
  .option(
    '--connect-timeout <seconds>',
    'give up (exit 1) when the server cannot be reached within this many seconds; each retry is reported on stderr. Once connected, watch resumes after disconnects',
    positiveInt('--connect-timeout'),
    DEFAULT_CONNECT_TIMEOUT_MS / 1000,
  )
  .option('--retry-forever', 'never give up: keep retrying the first connection and every reconnect until stopped')
  .action(
    async (
      ids: string[],
      o: ConnectionFlags & {
        all?: boolean;
        logs?: boolean;
        tag?: string[];
        status?: (typeof STATUSES)[number][];
        json?: boolean;
        after?: string;
        interval: number;
        connectTimeout: number;
        retryForever?: boolean;
      },
    ) => {
      if (o.all ? ids.length > 0 : ids.length === 0) throw new CliError(o.all ? '--all watches every job: give no job ids with it' : 'give one or more job ids, or --all', 2);
      if (!o.all && (o.tag || o.status)) throw new CliError('--tag and --status go with --all (runwatch jobs --tag lists tagged jobs)', 2);
      const client = connect(o);
      if (o.all) {
        // Fail fast (exit 1) when the server cannot be reached or refuses the token; the stream then reconnects by itself.
        await client.listJobs({ first: 0 });
        const stop = new AbortController();
        const onSignal = () => stop.abort();
        process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
        process.exitCode = await watchJobList(client, { tags: o.tag, status: o.status, json: o.json, intervalMs: o.interval, retryForever: o.retryForever, signal: stop.signal });
        process.off('SIGINT', onSignal).off('SIGTERM', onSignal);
        await client.close();
        return;
      }
      process.exitCode = await watchJobs(client, ids, {
        json: o.json,
        logs: o.logs,
        after: o.after,
        intervalMs: o.interval,
        connectTimeoutMs: o.connectTimeout * 1000,
        retryForever: o.retryForever,
      });
      await client.close();
    },
  );

withConnection(program.command('activity'))
  .description('live account activity: active jobs, their resources, totals and budget (a table on a terminal, lines in a pipe, or --json)')
  .addOption(new Option('--scope <scope>', 'whose activity').choices(['USER', 'INSTITUTE', 'ENVIRONMENT']).default('ENVIRONMENT'))
  .option('--json', 'one JSON event per line')
  .action(async (o: ConnectionFlags & { scope: 'USER' | 'INSTITUTE' | 'ENVIRONMENT'; json?: boolean }) => {
    const client = connect(o);
    process.exitCode = await watchActivity(client, { scope: o.scope, json: o.json, tty: Boolean(process.stdout.isTTY) && !o.json });
    await client.close();
  });

withConnection(program.command('run'))
  .description('run a command as a watched job: its tqdm bars, N/M counters, percentages and JSON lines become progress')
  .usage('[options] -- <command> [args...]')
  .argument('<command>', 'the command to run')
  .argument('[args...]', 'its arguments')
  .option('--name <name>', 'job name (default: the command line)')
  .option('--total <n>', 'items in the job, when the output does not say', positiveInt('--total'))
  .addOption(new Option('--kind <kind>', 'job kind').choices(KINDS).default('BATCH'))
  .passThroughOptions()
  .action(async (command: string, args: string[], o: ConnectionFlags & { name?: string; total?: number; kind: (typeof KINDS)[number] }) => {
    let client = null;
    try {
      client = connect(o);
    } catch (error) {
      process.stderr.write(`runwatch: ${(error as Error).message}; running without reporting\n`);
    }
    process.exitCode = await runCommand(client, command, args, { name: o.name, total: o.total, kind: o.kind });
    await client?.close();
  });

withConnection(program.command('share'))
  .description('print a dashboard link with a read-only token for one job')
  .argument('<id>', 'job id')
  .option('--ttl <seconds>', 'link lifetime in seconds (1..604800)', positiveInt('--ttl'), 3600)
  .action(async (id: string, o: ConnectionFlags & { ttl: number }) => {
    const client = connect(o);
    const view = await client.createJobViewToken(id, o.ttl);
    process.stdout.write(`${new URL(view.dashboardPath, serverUrl(o)).toString()}\n`);
    process.stderr.write(`valid until ${view.expiresAt}\n`);
  });

withConnection(program.command('demo'))
  .description(
    'report four demo jobs at a human pace (about 30 s): an embedding batch, an evaluation with failing items, a five-stage pipeline and a training run; to watch in the CLI or the dashboard (same as npm run demo)',
  )
  .action(async (o: ConnectionFlags) => {
    // Reuses the demo producer of `npm run demo` (src/cli/demo.ts), which reads RUNWATCH_URL / RUNWATCH_TOKEN
    // and, against a dev-mode server, fetches the dev token itself.
    process.env.RUNWATCH_URL = graphqlEndpoint(serverUrl(o));
    if (o.token) process.env.RUNWATCH_TOKEN = o.token;
    await import('./demo.js');
  });

try {
  await program.parseAsync(process.argv);
} catch (error) {
  const e = error as { code?: string; exitCode?: number };
  if (typeof e.code === 'string' && e.code.startsWith('commander.')) {
    process.exitCode = e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? 0 : 2;
  } else if (error instanceof CliError) {
    process.stderr.write(`runwatch: ${error.message}\n`);
    process.exitCode = error.exitCode;
  } else if (error instanceof RunwatchError) {
    process.stderr.write(`runwatch: ${error.code}: ${error.message}\n`);
    process.exitCode = 1;
  } else {
    process.stderr.write(`runwatch: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  }
}
