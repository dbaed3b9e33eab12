/**
 * `ProgressReporter`: progress reporting for workers that can never hurt the
 * work. Calls are cheap and synchronous (`advance`, `setStage`, `reportItems`,
 * `metric`, `log`, ...): they update local state, and at most one flush is in
 * flight while the next one coalesces everything that happened meanwhile, sent
 * no more often than every `minIntervalMs` (default 250 ms: at most 4 flushes
 * per second; a flush is, in this order, the step reports, the item results in
 * batches of 500, one progress report with the newest gauges, and the log
 * lines in batches of 1000 — only the ones with something to send).
 * Transient failures (network, 5xx, SERVICE_UNAVAILABLE, RATE_LIMITED) are
 * retried with backoff; `start` sends an idempotency key, so a retried create
 * never makes a second job. Counts are sent as absolute `completed`, so a
 * retried report is harmless. No reporting method throws or rejects: every
 * failure goes to `onError` (`step` passes on its own function's outcome).
 *
 * The worker side of job commands lives here too: `onCommand(handler)` answers
 * each command sent to the job with the handler's verdict; `commands()` and
 * `acknowledgeCommand` are the iterator form (these two do throw).
 */
import { randomUUID } from 'node:crypto';
import type { JobCommand, RunwatchClient } from './client.js';
import { RunwatchError } from './errors.js';
import { listenForCommands, type CommandHandler, type CommandListener } from './commands.js';
import {
  AppendLogsDocument,
  CompleteJobDocument,
  FailJobDocument,
  ReportItemsDocument,
  ReportProgressDocument,
  ReportStepDocument,
  type ItemResultInput,
  type JobKind,
  type LogLineInput,
  type ReportProgressInput,
  type StepStatus,
} from './generated/graphql.js';
import { ITEMS_PER_REQUEST, itemInput, LOG_LINES_PER_REQUEST, logLine, metricInput, type ItemResult, type LogLevelName } from './outputs.js';
import { backoffMs, type StreamOptions } from './watch.js';

/** Most item results and log lines kept while the server is away; older ones are dropped (and counted in `dropped`). */
const QUEUE_LIMIT = 10_000;

const defaultOnError = (error: RunwatchError) => process.stderr.write(`runwatch: progress report failed (${error.code}): ${error.message}\n`);

/** Options of {@link ProgressReporter}. */
export interface ProgressReporterOptions {
  /** Least time between two progress requests, in milliseconds (default 250). */
  minIntervalMs?: number | undefined;
  /** Attempts per request for transient failures, including the first (default 5). */
  maxAttempts?: number | undefined;
  /** Receives every failure (default: one line on stderr). Never called synchronously from `advance`. */
  onError?: ((error: RunwatchError) => void) | undefined;
}

/** What {@link ProgressReporter.start} creates. */
export interface StartOptions {
  name: string;
  kind?: JobKind | undefined;
  /** Items in the job, if known. */
  total?: number | null | undefined;
  metadata?: unknown | undefined;
  /** Default: a random UUID, reused for every retry of this create. */
  idempotencyKey?: string | undefined;
  /** Makes the job a child of this one (a job group: the parent shows the aggregate). */
  parentId?: string | undefined;
  /** Tags to filter lists by (`runwatch jobs --tag`, `jobUpdates({ tags })`): at most 20, 1..64 characters each. */
  tags?: string[] | undefined;
  /** Seconds the RUNNING job may stay silent before it counts as stalled (0: never; default the server's, 300). */
  heartbeatSeconds?: number | undefined;
}

type Pending = { completed: number; failedDelta: number; total?: number; stage?: string; message?: string; metrics?: Map<string, number> };

type StepReport = { name: string; status: StepStatus; completed?: number | undefined; total?: number | undefined; error?: string | undefined };

export class ProgressReporter {
  /** The job's id once `start` (or `attach`) succeeded; null before. */
  jobId: string | null = null;
  /** Requests sent (including retries), for the curious. */
  requests = 0;
  /** True once the job is finished (here or elsewhere: a CONFLICT means someone else finished or cancelled it). */
  finished = false;
  /** Item results and log lines dropped here, unsent, because more than 10 000 waited (the server away for long). */
  dropped = 0;

  private completed = 0;
  private sentCompleted = 0;
  private pending: Pending | null = null;
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private lastSentAt = 0;
  private starting: Promise<string | null> | null = null;
  private items: ItemResultInput[] = [];
  private lines: LogLineInput[] = [];
  private steps: StepReport[] = [];
  private readonly listeners = new Set<CommandListener>();
  private readonly minIntervalMs: number;
  private readonly onError: (error: RunwatchError) => void;

  constructor(
    private readonly client: RunwatchClient,
    private readonly opts: ProgressReporterOptions = {},
  ) {
    this.minIntervalMs = opts.minIntervalMs ?? 250;
    this.onError = opts.onError ?? defaultOnError;
  }

  /**
   * Creates the job (with an idempotency key, retried on transient failures).
   * Resolves with its id, or null when it could not be created (the error went to `onError`);
   * later calls then do nothing.
   */
  start(job: StartOptions): Promise<string | null> {
    const key = job.idempotencyKey ?? randomUUID();
    this.starting ??= this.send(() =>
      this.client.createJob({
        name: job.name,
        kind: job.kind,
        total: job.total,
        metadata: job.metadata,
        idempotencyKey: key,
        parentId: job.parentId,
        tags: job.tags,
        heartbeatSeconds: job.heartbeatSeconds,
      }),
    ).then((created) => {
      this.jobId = created?.id ?? null;
      if (this.jobId && this.hasPending()) this.schedule();
      return this.jobId;
    });
    return this.starting;
  }

  /** Reports to an existing job instead of creating one (`completed` starts from `completedSoFar`). */
  attach(jobId: string, completedSoFar = 0): void {
    this.jobId = jobId;
    this.completed = this.sentCompleted = completedSoFar;
    this.starting = Promise.resolve(jobId);
  }

  /** Marks `n` more items done (and `failed` more failed). Synchronous, never throws. */
  advance(n = 1, failed = 0): void {
    if (!(n >= 0) || !(failed >= 0)) return;
    this.completed += Math.floor(n);
    this.queue({ failedDelta: Math.floor(failed) });
  }

  /** Sets the absolute number of items done (ignored when lower than before). */
  setCompleted(completed: number): void {
    if (!(completed > this.completed)) return;
    this.completed = Math.floor(completed);
    this.queue({});
  }

  /** Sets or corrects the total (items). */
  setTotal(total: number): void {
    this.queue({ total: Math.floor(total) });
  }

  /** Sets the current stage (sent promptly: a stage change is never coalesced away). */
  setStage(stage: string): void {
    this.queue({ stage });
  }

  /** Sets a status message. */
  setMessage(message: string): void {
    this.queue({ message });
  }

  /**
   * Reports item results (coalesced like {@link advance}: sent in batches of up to 500 with the next flush). The ok
   * ones count as completed, the others as failed — do not also `advance` for them; their metrics and latencies are
   * summarized per name on the server (`metrics`, `successRate`) and they stream as ITEM_RESULTS events.
   * Synchronous, never throws: a batch with a bad item (no id, a non-finite number, a negative latency, data over
   * 4 KiB) is dropped whole, with a BAD_USER_INPUT to `onError`.
   */
  reportItems(items: ItemResult[]): void {
    if (this.finished) return;
    let batch: ItemResultInput[];
    try {
      batch = items.map(itemInput);
    } catch (error) {
      return this.report(new RunwatchError('BAD_USER_INPUT', `reportItems: ${(error as Error).message}; the batch of ${items.length} was not sent`));
    }
    for (const input of batch) if (input.ok) this.completed++;
    this.items.push(...batch);
    if (this.items.length > QUEUE_LIMIT) this.dropped += this.items.splice(0, this.items.length - QUEUE_LIMIT).length;
    this.schedule();
  }

  /**
   * Sets a gauge (tokens per second, cost so far): summarized on the server under `name` (last, count, mean, min,
   * max) and kept in its history (`metricSeries`). Sent with the next progress report; the newest value per name
   * wins. Synchronous, never throws: an empty or long (over 100) name or a non-finite value goes to `onError`.
   */
  metric(name: string, value: number): void {
    try {
      const metric = metricInput(name, value);
      this.queue({ metric: [metric.name, metric.value] });
    } catch (error) {
      this.report(error as RunwatchError);
    }
  }

  /**
   * Runs `fn` as a step of the job: RUNNING when it starts, COMPLETED when it resolves, FAILED with the error's
   * message when it throws (the error is rethrown). `fn` gets `update(completed, total?)` to report the step's own
   * count. Steps may run in parallel. The reports go out at once (behind a request in flight), in order, so the
   * server's durations are the step's. Resolves or rejects with `fn`'s outcome; reporting failures go to `onError`.
   */
  async step<T>(name: string, fn: (step: { update(completed: number, total?: number): void }) => T | Promise<T>, opts: { total?: number } = {}): Promise<T> {
    this.stepReport({ name, status: 'RUNNING', total: opts.total });
    try {
      const result = await fn({ update: (completed, total) => this.stepReport({ name, status: 'RUNNING', completed, total }) });
      this.stepReport({ name, status: 'COMPLETED' });
      return result;
    } catch (error) {
      this.stepReport({ name, status: 'FAILED', error: (error instanceof Error ? error.message : String(error)).slice(0, 2000) || 'failed' });
      throw error;
    }
  }

  /**
   * Sends a log line to the job's stream (`watchJob(id, { logs: true })`): `level` a name (default INFO), `source`
   * where it came from (a logger name, `stderr`). Batched with the next flush (up to 1000 lines per request); the
   * server rate-limits lines per job (a burst of 200, then 50 a second) and counts what it drops in the next
   * line's `droppedBefore`. Synchronous, never throws (an unknown level is sent as INFO).
   */
  log(message: string, level: LogLevelName = 'INFO', source?: string): void {
    if (this.finished || !message) return;
    this.lines.push(logLine(message, level, source));
    if (this.lines.length > QUEUE_LIMIT) this.dropped += this.lines.splice(0, this.lines.length - QUEUE_LIMIT).length;
    this.schedule();
  }

  /**
   * The commands sent to this job ({@link RunwatchClient.sendJobCommand}) as an async iterator: PENDING ones first,
   * then new ones live, each once, reconnecting like `watchJob`. Answer each with {@link acknowledgeCommand}.
   * Never ends by itself: break the loop or abort `opts.signal`.
   * @throws RunwatchError BAD_USER_INPUT before `start`/`attach`; NOT_FOUND, FORBIDDEN, UNAUTHENTICATED, UNAVAILABLE.
   */
  async *commands(opts: Omit<StreamOptions, 'after'> = {}): AsyncGenerator<JobCommand, void, undefined> {
    const jobId = await this.starting;
    if (!jobId) throw new RunwatchError('BAD_USER_INPUT', 'no job to receive commands for: start() or attach() first (or the job could not be created)');
    yield* this.client.jobCommands(jobId, opts);
  }

  /**
   * Answers a command: accepted → ACKNOWLEDGED, else REJECTED with `message`. An accepted CANCEL cancels the job
   * (answer once the work has stopped; this reporter then stops reporting); PAUSE and RESUME pause or resume it.
   * @throws RunwatchError CONFLICT (already answered, or expired), NOT_FOUND
   */
  async acknowledgeCommand(command: JobCommand | string, accepted = true, message?: string): Promise<JobCommand> {
    const answered = await this.client.acknowledgeJobCommand(typeof command === 'string' ? command : command.id, accepted, message);
    if (answered.command === 'CANCEL' && answered.state === 'ACKNOWLEDGED') this.finished = true;
    return answered;
  }

  /**
   * Calls `handler(command)` for each command sent to this job, one at a time, and answers it with the handler's
   * verdict ({@link CommandHandler}: `false` or a string rejects, a throw rejects with its message, anything else
   * acknowledges). For a CANCEL, resolve once the work has stopped: the acknowledgement cancels the job. Keeps
   * listening across reconnects until `stop()` or until this reporter finishes the job; failures go to `onError`.
   */
  onCommand(handler: CommandHandler): CommandListener {
    const listener = listenForCommands(
      (signal) => this.commands({ signal, retry: { maxAttempts: Infinity, maxDelayMs: 5000 } }),
      handler,
      async (command, { accepted, message }) => (await this.send(() => this.acknowledgeCommand(command, accepted, message), true)) !== null,
      (error) => this.report(error),
    );
    this.listeners.add(listener);
    return listener;
  }

  /** Sends what is pending now (still serialized behind a request in flight). Resolves when sent or given up. */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.starting;
    while (this.inFlight || (this.hasPending() && this.jobId && !this.finished)) {
      if (this.inFlight) await this.inFlight;
      else this.sendPending();
    }
  }

  /** Flushes, then marks the job COMPLETED. Resolves when done or given up (never rejects). */
  async complete(message?: string): Promise<void> {
    await this.finish((id) => this.client.request(CompleteJobDocument, { id, message }));
  }

  /** Flushes, then marks the job FAILED with `error` (an Error's message, or the string). Never rejects. */
  async fail(error: unknown): Promise<void> {
    const text = (error instanceof Error ? error.message : String(error)).slice(0, 2000) || 'failed';
    await this.finish((id) => this.client.request(FailJobDocument, { id, error: text }));
  }

  private async finish(call: (id: string) => Promise<unknown>): Promise<void> {
    await this.flush();
    await Promise.all([...this.listeners].map((l) => l.stop()));
    this.listeners.clear();
    if (!this.jobId || this.finished) return;
    this.finished = true;
    await this.send(() => call(this.jobId!));
  }

  private hasPending(): boolean {
    return Boolean(this.pending || this.items.length || this.lines.length || this.steps.length);
  }

  private stepReport(report: StepReport): void {
    if (this.finished) return;
    this.steps.push(report);
    // A step's start and end go out at once (not after minIntervalMs), so the server times the step itself.
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.schedule(true);
  }

  private queue(change: Partial<Omit<Pending, 'metrics'>> & { metric?: [string, number] }): void {
    if (this.finished) return;
    const p = (this.pending ??= { completed: this.completed, failedDelta: 0 });
    p.completed = this.completed;
    p.failedDelta += change.failedDelta ?? 0;
    if (change.total !== undefined) p.total = change.total;
    if (change.stage !== undefined) p.stage = change.stage;
    if (change.message !== undefined) p.message = change.message;
    if (change.metric) (p.metrics ??= new Map()).set(...change.metric);
    this.schedule();
  }

  private report(error: RunwatchError): void {
    try {
      this.onError(error);
    } catch {
      // the callback must not hurt the worker either
    }
  }

  private schedule(now = false): void {
    if (this.timer || this.inFlight || !this.jobId) return;
    const wait = now ? 0 : Math.max(0, this.lastSentAt + this.minIntervalMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      this.sendPending();
    }, wait);
  }

  private sendPending(): void {
    if (!this.hasPending() || !this.jobId || this.inFlight || this.finished) return;
    const jobId = this.jobId;
    const steps = this.steps.splice(0);
    const items = this.items.splice(0);
    const lines = this.lines.splice(0);
    const p = this.pending;
    this.pending = null;
    this.lastSentAt = Date.now();
    this.inFlight = (async () => {
      // Steps first (a step that ended before this flush keeps its order), then items (they move `completed`, so the
      // absolute count of the progress report after them is never below the server's), then progress, then logs.
      for (const step of steps) await this.send(() => this.client.request(ReportStepDocument, { jobId, ...step }));
      for (let i = 0; i < items.length && !this.finished; i += ITEMS_PER_REQUEST) {
        const result = await this.send(() => this.client.request(ReportItemsDocument, { jobId, items: items.slice(i, i + ITEMS_PER_REQUEST) }));
        if (result) this.sentCompleted = Math.max(this.sentCompleted, result.reportItems.completed);
      }
      if (p && !this.finished) {
        const input: ReportProgressInput = { jobId };
        const metrics = p.metrics ? [...p.metrics].map(([name, value]) => ({ name, value })) : [];
        const other = p.failedDelta > 0 || p.total !== undefined || p.stage !== undefined || p.message !== undefined || metrics.length > 0;
        if (p.completed > this.sentCompleted || !other) input.completed = Math.max(p.completed, this.sentCompleted);
        if (p.failedDelta > 0) input.failedDelta = p.failedDelta;
        if (p.total !== undefined) input.total = p.total;
        if (p.stage !== undefined) input.stage = p.stage;
        if (p.message !== undefined) input.message = p.message;
        if (metrics.length) input.metrics = metrics.slice(-50);
        const result = await this.send(() => this.client.request(ReportProgressDocument, { input }));
        if (result) this.sentCompleted = Math.max(this.sentCompleted, result.reportProgress.completed);
      }
      for (let i = 0; i < lines.length && !this.finished; i += LOG_LINES_PER_REQUEST) {
        await this.send(() => this.client.request(AppendLogsDocument, { jobId, lines: lines.slice(i, i + LOG_LINES_PER_REQUEST) }));
      }
    })().then(() => {
      this.inFlight = null;
      if (this.hasPending()) this.schedule(this.steps.length > 0);
    });
  }

  /**
   * One call with retries on transient failures; resolves with the result, or null after reporting the error.
   * `always`: also after the job finished (answers to commands).
   */
  private async send<T>(call: () => Promise<T>, always = false): Promise<T | null> {
    const maxAttempts = this.opts.maxAttempts ?? 5;
    for (let attempt = 1; ; attempt++) {
      this.requests++;
      try {
        return await call();
      } catch (raw) {
        const error = raw instanceof RunwatchError ? raw : new RunwatchError('INTERNAL_SERVER_ERROR', String(raw), true);
        if (error.transient && attempt < maxAttempts) {
          await new Promise((r) => setTimeout(r, backoffMs(attempt, { initialDelayMs: 200, maxDelayMs: 5000 })));
          continue;
        }
        if (error.code === 'CONFLICT' && this.jobId && !always) this.finished = true; // finished or cancelled elsewhere: stop reporting
        this.report(error);
        return null;
      }
    }
  }
}

