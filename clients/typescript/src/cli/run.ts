/**
 * `runwatch run [--name N] [--total N] -- <command> [args]`: runs a command,
 * passes its output through unchanged, turns the progress it prints into a
 * live job, and completes or fails the job with the command's exit code.
 *
 * The child gets the parent's stdin; its stdout and stderr are piped through.
 * It also gets RUNWATCH_JOB_ID (when the job was created) and
 * PYTHONUNBUFFERED=1 (so Python prints arrive as they happen). When the
 * server cannot be reached the command still runs; only the reporting is lost.
 *
 * With `--kind TRAINING` the counts go out as TrainingProgress (globalStep =
 * the bar's count, maxStep = its total) carrying the `loss`, learning rate and
 * epoch the output shows (tqdm postfix `loss=…`, Hugging Face–style
 * `{'loss': …}` lines), `{'eval_loss': …}` lines become ValidationResults, and
 * the run ends with a TrainingStatusChange (COMPLETED, or ERROR with the exit
 * code and the tail of stderr).
 *
 * The child's stderr lines that are not progress go to the job as log lines
 * (appendLogs, source `stderr`, the level guessed from the line as
 * `python -m runwatch run` does: {@link guessLevel}). A CANCEL command sent to
 * the job (`sendJobCommand`, the dashboard) is forwarded to the child as
 * SIGTERM and acknowledged once the child has exited, which cancels the job;
 * other commands are rejected.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import type { JobKind } from '../client/index.js';
import { ProgressReporter, RunwatchError, type RunwatchClient } from '../client/index.js';
import { guessLevel } from '../client/outputs.js';
import { TypedDocumentString } from '../client/generated/graphql.js';
import { backoffMs } from '../client/watch.js';
import {
  LineSplitter,
  parseProgressLine,
  ProgressTracker,
  type ParsedProgress,
  type ParsedTraining,
  type ParsedValidation,
  type ProgressUpdate,
} from './progress-parser.js';

const PUBLISH = new TypedDocumentString<{ publishTrainingEvents: number }, { runId: string; events: unknown[] }>(
  'mutation PublishTrainingEvents($runId: ID!, $events: [TrainingEventInput!]!) { publishTrainingEvents(runId: $runId, events: $events) }',
);

/**
 * Publishes a wrapped trainer's TrainingProgress / ValidationResult / status events in batches (at most
 * one request in flight, one every `minIntervalMs`, up to 1000 events each), retrying transient failures
 * with backoff. Like {@link ProgressReporter}, no method throws: failures go to `onError`.
 */
export class TrainingPublisher {
  private queue: Record<string, unknown>[] = [];
  private globalStep = 0;
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private lastSentAt = 0;

  constructor(
    private readonly client: RunwatchClient,
    private readonly runId: string,
    private readonly onError: (error: RunwatchError) => void,
    private readonly minIntervalMs = 250,
  ) {}

  /** A TrainingProgress at the tracker's count (or the line's own step), with the line's metrics. */
  progress(update: { completed: number; total: number | null }, training: ParsedTraining = {}): void {
    this.globalStep = Math.max(this.globalStep, training.globalStep ?? update.completed);
    const progress: Record<string, unknown> = { globalStep: this.globalStep, timestamp: new Date().toISOString() };
    if (update.total !== null) progress.maxStep = Math.max(update.total, this.globalStep);
    if (training.loss !== undefined) progress.loss = training.loss;
    if (training.learningRate !== undefined && training.learningRate >= 0) progress.learningRate = training.learningRate;
    if (training.epoch !== undefined) progress.epoch = training.epoch;
    this.push({ progress });
  }

  /** A ValidationResult at the current step. */
  validation(v: ParsedValidation): void {
    const validation: Record<string, unknown> = { validationLoss: v.validationLoss, step: this.globalStep, timestamp: new Date().toISOString() };
    if (v.epoch !== undefined) validation.epoch = v.epoch;
    if (v.metrics) validation.metrics = Object.entries(v.metrics).slice(0, 50).map(([name, value]) => ({ name: name.slice(0, 100), value }));
    this.push({ validation });
  }

  /** Sends what is queued, then a final (or any) TrainingStatusChange. Resolves when sent or given up. */
  async finish(status: 'COMPLETED' | 'ERROR' | 'STOPPED', error?: string): Promise<void> {
    this.queue.push({ status: { status, ...(error ? { error: error.slice(0, 2000) } : {}), timestamp: new Date().toISOString() } });
    await this.flush();
  }

  /** Sends everything queued (serialized behind a request in flight). */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    while (this.inFlight || this.queue.length) {
      if (this.inFlight) await this.inFlight;
      else this.send();
    }
  }

  private push(event: Record<string, unknown>): void {
    this.queue.push(event);
    if (this.queue.length > 10_000) this.queue.shift(); // bounded while the server is away
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.inFlight || !this.queue.length) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.send();
    }, Math.max(0, this.lastSentAt + this.minIntervalMs - Date.now()));
  }

  private send(): void {
    if (this.inFlight || !this.queue.length) return;
    const events = this.queue.splice(0, 1000);
    this.lastSentAt = Date.now();
    this.inFlight = (async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.client.request(PUBLISH, { runId: this.runId, events });
          return;
        } catch (raw) {
          const error = raw instanceof RunwatchError ? raw : new RunwatchError('INTERNAL_SERVER_ERROR', String(raw), true);
          if (error.transient && attempt < 5) {
            await new Promise((r) => setTimeout(r, backoffMs(attempt, { initialDelayMs: 200, maxDelayMs: 5000 })));
            continue;
          }
          this.onError(error);
          return;
        }
      }
    })().then(() => {
      this.inFlight = null;
      this.schedule();
    });
  }
}

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
  const training = client && jobId && opts.kind === 'TRAINING' ? new TrainingPublisher(client, jobId, (e) => errors.push(`${e.code}: ${e.message}`)) : null;

  const child = spawn(command, args, {
    stdio: ['inherit', 'pipe', 'pipe'],
    env: { ...process.env, PYTHONUNBUFFERED: process.env.PYTHONUNBUFFERED ?? '1', ...(jobId ? { RUNWATCH_JOB_ID: jobId } : {}) },
  });
  const tailSize = opts.tailLines ?? 10;
  const tail: string[] = [];
  const applyProgress = (parsed: ParsedProgress) => {
    const update: ProgressUpdate | null = tracker.update(parsed);
    if (training) {
      // a training run's counts are steps, sent as TrainingProgress (it moves the job too)
      if (update || parsed.training) training.progress({ completed: tracker.completed, total: tracker.total }, parsed.training);
      if (parsed.validation) training.validation(parsed.validation);
      if (update?.stage !== undefined) reporter?.setStage(update.stage.slice(0, 200));
      if (update?.message !== undefined) reporter?.setMessage(update.message.slice(0, 2000));
      return;
    }
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
      reporter?.log(line, guessLevel(line), 'stderr');
    }
  };
  for (const [stream, target, fromStderr] of [
    [child.stdout, process.stdout, false],
    [child.stderr, process.stderr, true],
  ] as const) {
    const splitter = new LineSplitter();
    // the bar being drawn is parsed at once (as the partial line); when its line completes, it is not applied again
    let appliedPartial = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      target.write(chunk);
      splitter.push(chunk).forEach((line, i) => {
        if (!(i === 0 && appliedPartial && line === appliedPartial)) onLine(line, fromStderr);
      });
      appliedPartial = '';
      const partial = parseProgressLine(splitter.partial);
      if (partial) {
        applyProgress(partial);
        appliedPartial = splitter.partial;
      }
    });
    stream.on('end', () => {
      for (const line of splitter.end()) if (line !== appliedPartial) onLine(line, fromStderr);
    });
  }

  const exited = new Promise<[number | null, NodeJS.Signals | null, Error | null]>((resolve) => {
    child.once('error', (error) => resolve([null, null, error]));
    child.once('close', (c, s) => resolve([c, s, null]));
  });

  // A CANCEL command stops the child (SIGTERM) and is acknowledged once it has exited: that cancels the job.
  let cancelled = false;
  const commands = jobId
    ? reporter!.onCommand(async (command) => {
        if (command.command !== 'CANCEL') return `runwatch run handles CANCEL only, not ${command.command === 'CUSTOM' ? `CUSTOM ${command.name ?? ''}`.trim() : command.command}`;
        cancelled = true;
        log(`CANCEL from ${command.senderId}: stopping the command (SIGTERM)`);
        child.kill('SIGTERM');
        const [c, s] = await exited;
        await reporter!.flush(); // the last lines and counts go out before the acknowledgement cancels the job
        return { accepted: true, message: `stopped: the command ${s ? `was killed by ${s}` : `exited with code ${c}`}` };
      })
    : null;

  const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
  const onTerm = forward('SIGTERM');
  const onHup = forward('SIGHUP');
  const onInt = () => {}; // the terminal sends SIGINT to the child too; wait for it to exit
  process.on('SIGTERM', onTerm).on('SIGHUP', onHup).on('SIGINT', onInt);

  const [code, signal, spawnError] = await exited;
  process.off('SIGTERM', onTerm).off('SIGHUP', onHup).off('SIGINT', onInt);
  const exitCode = code ?? 128 + (signal ? (constants.signals[signal] ?? 0) : 0);
  // After the answer to a CANCEL (the job is CANCELLED then): nothing more to report but what is queued.
  await commands?.stop();
  if (cancelled && reporter) {
    await reporter.flush();
    reporter.finished = true;
    return exitCode;
  }

  if (training) {
    // stage and message first, then the steps, then the final status (which finishes the job)
    await reporter?.flush();
    if (spawnError) await training.finish('ERROR', `cannot start command: ${spawnError.message}`);
    else if (code === 0) await training.finish('COMPLETED');
    else await training.finish('ERROR', failureMessage(commandLine, code, signal, tail));
    if (reporter) reporter.finished = true;
  }
  if (spawnError) {
    log(`cannot run ${command}: ${spawnError.message}`);
    await reporter?.fail(`cannot start command: ${spawnError.message}`);
    return 127;
  }
  if (code === 0) await reporter?.complete(`command exited with code 0`);
  else await reporter?.fail(failureMessage(commandLine, code, signal, tail));
  if (errors.length && jobId) log(`some progress reports failed: ${errors.at(-1)}`);
  return exitCode;
}
