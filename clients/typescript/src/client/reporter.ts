/**
 * `ProgressReporter`: progress reporting for workers that can never hurt the
 * work. Calls are cheap and synchronous (`advance`, `setStage`, ...): they
 * update local state, and at most one request is in flight while the next
 * report coalesces everything that happened meanwhile, sent no more often
 * than every `minIntervalMs` (default 250 ms: at most 4 requests per second).
 * Transient failures (network, 5xx, SERVICE_UNAVAILABLE, RATE_LIMITED) are
 * retried with backoff; `start` sends an idempotency key, so a retried create
 * never makes a second job. Counts are sent as absolute `completed`, so a
 * retried report is harmless. No method throws or rejects: every failure goes
 * to `onError`.
 */
import { randomUUID } from 'node:crypto';
import type { RunwatchClient } from './client.js';
import { RunwatchError } from './errors.js';
import { CompleteJobDocument, FailJobDocument, ReportProgressDocument, type JobKind, type ReportProgressInput } from './generated/graphql.js';
import { backoffMs } from './watch.js';

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
}

type Pending = { completed: number; failedDelta: number; total?: number; stage?: string; message?: string };

const defaultOnError = (error: RunwatchError) => process.stderr.write(`runwatch: progress report failed (${error.code}): ${error.message}\n`);

export class ProgressReporter {
  /** The job's id once `start` (or `attach`) succeeded; null before. */
  jobId: string | null = null;
  /** Requests sent (including retries), for the curious. */
  requests = 0;
  /** True once the job is finished (here or elsewhere: a CONFLICT means someone else finished or cancelled it). */
  finished = false;

  private completed = 0;
  private sentCompleted = 0;
  private pending: Pending | null = null;
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;
  private lastSentAt = 0;
  private starting: Promise<string | null> | null = null;
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
      this.client.createJob({ name: job.name, kind: job.kind, total: job.total, metadata: job.metadata, idempotencyKey: key }),
    ).then((created) => {
      this.jobId = created?.id ?? null;
      if (this.jobId && this.pending) this.schedule();
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

  /** Sends what is pending now (still serialized behind a request in flight). Resolves when sent or given up. */
  async flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.starting;
    while (this.inFlight || (this.pending && this.jobId && !this.finished)) {
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
    if (!this.jobId || this.finished) return;
    this.finished = true;
    await this.send(() => call(this.jobId!));
  }

  private queue(change: Partial<Pending>): void {
    if (this.finished) return;
    const p = (this.pending ??= { completed: this.completed, failedDelta: 0 });
    p.completed = this.completed;
    p.failedDelta += change.failedDelta ?? 0;
    if (change.total !== undefined) p.total = change.total;
    if (change.stage !== undefined) p.stage = change.stage;
    if (change.message !== undefined) p.message = change.message;
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.inFlight || !this.jobId) return;
    const wait = Math.max(0, this.lastSentAt + this.minIntervalMs - Date.now());
    this.timer = setTimeout(() => {
      this.timer = null;
      this.sendPending();
    }, wait);
  }

  private sendPending(): void {
    const p = this.pending;
    if (!p || !this.jobId || this.inFlight || this.finished) return;
    this.pending = null;
    const input: ReportProgressInput = { jobId: this.jobId };
    if (p.completed > this.sentCompleted || (p.failedDelta === 0 && p.total === undefined && p.stage === undefined && p.message === undefined)) {
      input.completed = p.completed;
    }
    if (p.failedDelta > 0) input.failedDelta = p.failedDelta;
    if (p.total !== undefined) input.total = p.total;
    if (p.stage !== undefined) input.stage = p.stage;
    if (p.message !== undefined) input.message = p.message;
    this.lastSentAt = Date.now();
    this.inFlight = this.send(() => this.client.request(ReportProgressDocument, { input })).then((result) => {
      this.inFlight = null;
      if (result) this.sentCompleted = Math.max(this.sentCompleted, result.reportProgress.completed);
      if (this.pending) this.schedule();
    });
  }

  /** One call with retries on transient failures; resolves with the result, or null after reporting the error. */
  private async send<T>(call: () => Promise<T>): Promise<T | null> {
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
        if (error.code === 'CONFLICT' && this.jobId) this.finished = true; // finished or cancelled elsewhere: stop reporting
        try {
          this.onError(error);
        } catch {
          // the callback must not hurt the worker either
        }
        return null;
      }
    }
  }
}
