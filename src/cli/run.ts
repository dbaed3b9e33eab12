/**
 * `runwatch run [--name N] [--total N] -- <command> [args]`: runs a command,
 * passes its output through unchanged, turns the progress it prints into a
 * live job, and completes or fails the job with the command's exit code.
 *
 * The child gets the parent's stdin; its stdout and stderr are piped through.
 * It also gets RUNWATCH_JOB_ID (when the job was created) and
 * PYTHONUNBUFFERED=1 (so Python prints arrive as they happen). When the
 * server cannot be reached the command still runs; only the reporting is lost.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { JobKind } from '../client/index.js';
import { ProgressReporter, type RunwatchClient } from '../client/index.js';
import { LineSplitter, parseProgressLine, ProgressTracker, type ParsedProgress } from './progress-parser.js';

/** Options of {@link runCommand}. */
export interface RunOptions {
  /** Job name (default: the command line, up to 200 characters). */
  name?: string;
  kind?: JobKind;
  /** Items in the job when the command's output does not say (percentages map onto it). */
  total?: number;
  /** How many trailing stderr lines go into the job's error on failure (default 10). */
  tailLines?: number;
  /** Where runwatch's own notes go (default stderr). */
  log?: (line: string) => void;
}

/** The error message of a failed run: exit code or signal, and the last lines of stderr. */
export function failureMessage(command: string, code: number | null, signal: NodeJS.Signals | null, tail: string[]): string {
  const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
  const head = `command ${how}: ${command}`.slice(0, 300);
  if (tail.length === 0) return head;
  const body = tail.join('\n');
  const room = 1900 - head.length;
  return `${head}\nlast lines of stderr:\n${body.length > room ? `…${body.slice(-room)}` : body}`;
}

/**
 * Runs `command` with `args` as a watched job. Resolves with the exit code to use:
 * the command's own, or 128 + signal number when it was killed (127 when it cannot be started).
 */
export async function runCommand(client: RunwatchClient | null, command: string, args: string[], opts: RunOptions = {}): Promise<number> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`runwatch: ${line}\n`));
  const commandLine = [command, ...args].join(' ');
  const tracker = new ProgressTracker(opts.total ?? null);
  const errors: string[] = [];
  const reporter = client ? new ProgressReporter(client, { onError: (e) => errors.push(`${e.code}: ${e.message}`) }) : null;
  const jobId = reporter ? await reporter.start({ name: (opts.name ?? commandLine).slice(0, 200), kind: opts.kind ?? 'BATCH', total: opts.total ?? null }) : null;
  if (jobId) log(`job ${jobId} (watch it: runwatch watch ${jobId})`);
  else if (reporter) log(`cannot create a job (${errors.at(-1) ?? 'unknown error'}); running the command without reporting`);

  const child = spawn(command, args, {
    stdio: ['inherit', 'pipe', 'pipe'],
    env: { ...process.env, PYTHONUNBUFFERED: process.env.PYTHONUNBUFFERED ?? '1', ...(jobId ? { RUNWATCH_JOB_ID: jobId } : {}) },
  });
  const tailSize = opts.tailLines ?? 10;
  const tail: string[] = [];
  const applyProgress = (parsed: ParsedProgress) => {
    const update = tracker.update(parsed);
    if (update && reporter) {
      if (update.total !== null) reporter.setTotal(update.total);
      reporter.setCompleted(update.completed);
      if (update.stage !== undefined) reporter.setStage(update.stage.slice(0, 200));
      if (update.message !== undefined) reporter.setMessage(update.message.slice(0, 2000));
    }
  };
  const onLine = (line: string, fromStderr: boolean) => {
    const parsed = parseProgressLine(line);
    if (parsed) applyProgress(parsed);
    else if (fromStderr && line.trim()) {
      tail.push(line);
      if (tail.length > tailSize) tail.shift();
    }
  };
  for (const [stream, target, fromStderr] of [
    [child.stdout, process.stdout, false],
    [child.stderr, process.stderr, true],
  ] as const) {
    const splitter = new LineSplitter();
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      target.write(chunk);
      for (const line of splitter.push(chunk)) onLine(line, fromStderr);
      const partial = parseProgressLine(splitter.partial);
      if (partial) applyProgress(partial);
    });
    stream.on('end', () => {
      for (const line of splitter.end()) onLine(line, fromStderr);
    });
  }

  const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
  const onTerm = forward('SIGTERM');
  const onHup = forward('SIGHUP');
  const onInt = () => {}; // the terminal sends SIGINT to the child too; wait for it to exit
  process.on('SIGTERM', onTerm).on('SIGHUP', onHup).on('SIGINT', onInt);

  const [code, signal, spawnError] = await new Promise<[number | null, NodeJS.Signals | null, Error | null]>((resolve) => {
    child.once('error', (error) => resolve([null, null, error]));
    child.once('close', (c, s) => resolve([c, s, null]));
  });
  process.off('SIGTERM', onTerm).off('SIGHUP', onHup).off('SIGINT', onInt);

  if (spawnError) {
    log(`cannot run ${command}: ${spawnError.message}`);
    await reporter?.fail(`cannot start command: ${spawnError.message}`);
    return 127;
  }
  if (code === 0) await reporter?.complete(`command exited with code 0`);
  else await reporter?.fail(failureMessage(commandLine, code, signal, tail));
  if (errors.length && jobId) log(`some progress reports failed: ${errors.at(-1)}`);
  return code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
}
