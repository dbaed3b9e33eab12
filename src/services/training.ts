/**
 * Training runs on behalf of a viewer: publishing batches of training events
 * (validated, conflated, rate-limited, stored in the run's topic log and
 * moving the run's job), and opening a run's `trainingEvents` stream.
 *
 * A run's training events live in the topic log `training:<runId>`, separate
 * from its job stream: own offsets, own epoch, own cursors. The log's state
 * (conflation clocks, pending events, log bucket, newest status) is shared
 * by all instances through the backend, so the limits hold per run however
 * many instances the trainer's requests reach. The trailing-edge flush timer
 * is one per run, on the instance that deferred something; never per subscriber.
 */
import { canSeeJob, type Viewer } from '../auth/tokens.js';
import type { JobChangeRecord } from '../domain/changes.js';
import { decodeCursor } from '../domain/cursor.js';
import { DomainError, isUnavailable, notFound } from '../domain/errors.js';
import { applyProgress, finishJob, isTerminal, setPaused, type JobChange, type JobRecord, type JobStatus } from '../domain/job.js';
import { TRAINING_PREFIX, trainingTopic } from '../domain/topics.js';
import {
  logLevelAtLeast,
  planJobOps,
  trainingSeries,
  validateTrainingEvents,
  type JobOp,
  type LogLevel,
  type TrainingEvent,
  type TrainingEventInput,
  type TrainingEventType,
} from '../domain/training.js';
import {
  applyTrainingBatch,
  DEFAULT_LOG_LIMITS,
  emptyTrainingState,
  flushTraining,
  isFinalTrainingEvent,
  trainingSnapshot,
  type TrainingStreamChange,
  type TrainingStreamSettings,
  type TrainingStreamState,
} from '../domain/training-stream.js';
import { FilteredStream } from '../delivery/filtered-stream.js';
import { MetricHistoryStore } from '../delivery/metric-history.js';
import type { Infra } from '../delivery/job-writer.js';
import { queuePolicy, type StreamHooks, type StreamTransport } from '../delivery/live-stream.js';
import type { StreamKind } from '../delivery/stream-kinds.js';
import { RESTARTING, StreamRegistry } from '../delivery/topic-stream.js';
import type { Backend } from '../backends/types.js';
import type { LogCommit, LogHead } from '../backends/topic-log.js';

/** Settings of {@link TrainingService}. */
export interface TrainingServiceOptions {
  /** RUNWATCH_PROGRESS_HZ: most TrainingProgress (and, separately, SystemStats) events per second per run. */
  progressHz: number;
  /** Sustained log lines per second per run (default 50). */
  logRatePerSecond?: number;
  /** Log lines per run at once before the rate applies (default 200). */
  logBurst?: number;
  /** Subscriber queue length above which conflatable events conflate (events; default 64). */
  conflateAbove?: number;
  /** Most events queued for one lagging subscriber before it is dropped (default 1000). */
  maxQueued?: number;
  onError?: (message: string, error: unknown) => void;
  /** Metrics hooks, as for job streams. */
  hooks?: StreamHooks;
}

/** What a trainingEvents subscriber asked to see. */
export interface TrainingFilter {
  /** Only these types; null or empty: all. */
  types?: readonly TrainingEventType[] | null;
  /** Only logs at or above this level; null: all. */
  minLogLevel?: LogLevel | null;
}

type Head = { epoch: string; offset: number; runId: string };

/** What a training stream starts from: the run's log head and its job's status. */
interface StreamHead {
  log: LogHead<TrainingStreamState>;
  jobStatus: JobStatus;
}

/**
 * How a training stream treats its events (the event half of its
 * LiveStreamPolicy): one object for every stream, method syntax so that no
 * per-stream closures are made (see JOB_EVENTS in jobs.ts).
 */
const TRAINING_EVENTS = {
  offsetOf(e: TrainingEvent): number {
    return e.offset;
  },
  isConflatable(e: TrainingEvent): boolean {
    return e.type === 'TRAINING_PROGRESS' || e.type === 'SYSTEM_STATS';
  },
  conflationKey(e: TrainingEvent): string {
    return e.type;
  },
  isFinal: isFinalTrainingEvent,
  isReset(e: TrainingEvent): boolean {
    return e.snapshot;
  },
};

/** The training-status change that ends a run's training stream when its job finished by other means. */
function finalTrainingStatus(job: JobRecord): TrainingEventInput {
  const status = job.status === 'COMPLETED' ? 'COMPLETED' : job.status === 'FAILED' ? 'ERROR' : 'STOPPED';
  return {
    type: 'TRAINING_STATUS_CHANGE',
    status,
    message: job.status === 'FAILED' ? null : job.message,
    error: job.status === 'FAILED' ? job.errorMessage : null,
  };
}

/**
 * The training projection of one job change, as a pure step on the run's
 * training log: when the change finished the job (cancelBatchJob,
 * failBatchJob, completeBatchJob...) and the run's training stream has not
 * said a final status yet, the matching final TrainingStatusChange. Null
 * (nothing to commit) otherwise — in particular when the same change is
 * applied again: the stream then has its final status already.
 */
export function projectTrainingStatus(
  change: JobChangeRecord,
  head: Head,
  state: TrainingStreamState | null,
  nowMs: number,
  settings: TrainingStreamSettings,
): TrainingStreamChange | null {
  if (!state || !isTerminal(change.job.status) || !change.types.some((t) => t === change.job.status)) return null;
  const said = state.status?.status;
  if (said === 'COMPLETED' || said === 'ERROR' || said === 'STOPPED') return null;
  return applyTrainingBatch(state, head, [finalTrainingStatus(change.job)], nowMs, settings);
}

export class TrainingService {
  private readonly settings: TrainingStreamSettings;
  /** Where loss, learning rate and validation results go for charts (metricSeries), every value before conflation. */
  private readonly history: MetricHistoryStore;
  private readonly flushTimers = new Map<string, NodeJS.Timeout>();
  private readonly streams = new StreamRegistry<TrainingEvent>();
  private readonly backend: Backend;
  private readonly clock: () => number;
  /** The `training:` stream kind: trainingEvents subscriptions and the reconnect catch-up of training topics. */
  private readonly kind: StreamKind<TrainingEvent, StreamHead>;

  /** Training streams (trainingEvents subscriptions) open on this instance now. */
  get activeStreams(): number {
    return this.streams.size;
  }

  /** Runs with a training flush timer pending on this instance (diagnostics, tests). */
  get pendingFlushes(): number {
    return this.flushTimers.size;
  }

  /**
   * Registers the `training:` stream kind and the `training` projector (a run's training stream gets its final
   * status when its job finishes by other means; see {@link projectTrainingStatus}).
   */
  constructor(
    private readonly infra: Infra,
    private readonly opts: TrainingServiceOptions,
  ) {
    this.backend = infra.backend;
    this.clock = infra.clock;
    this.history = new MetricHistoryStore(infra.backend.logs, opts.onError);
    this.settings = {
      intervalMs: 1000 / opts.progressHz,
      logRatePerSecond: opts.logRatePerSecond ?? DEFAULT_LOG_LIMITS.logRatePerSecond,
      logBurst: opts.logBurst ?? DEFAULT_LOG_LIMITS.logBurst,
    };
    const logs = this.backend.logs;
    const runOf = (topic: string) => topic.slice(TRAINING_PREFIX.length);
    this.kind = infra.kinds.register<TrainingEvent, StreamHead>({
      prefix: TRAINING_PREFIX,
      events: TRAINING_EVENTS,
      readHead: async (topic) => {
        const log = await logs.head<TrainingStreamState>(topic);
        if (!log) return null;
        const job = await this.backend.store.get(runOf(topic));
        return { log, jobStatus: job?.status ?? 'RUNNING' };
      },
      positionOf: ({ log }) => log,
      positionOfEvent: (e) => decodeCursor(e.cursor),
      history: (topic, afterOffset) => logs.history<TrainingEvent>(topic, afterOffset),
      // A fresh start is several events at the head's offset (newest progress, stats, status): all are resets.
      freshStart: (topic, { log, jobStatus }) =>
        trainingSnapshot(log.state, { epoch: log.epoch, offset: log.offset, runId: runOf(topic) }, jobStatus, this.clock()),
      isFinished: ({ jobStatus }) => isTerminal(jobStatus),
    });
    infra.changes.project('training', (change) => this.project(change));
  }

  /** The `training` projector: see {@link projectTrainingStatus}. Idempotent (a second application commits nothing). */
  async project(change: JobChangeRecord): Promise<void> {
    if (!isTerminal(change.job.status)) return;
    const head = await this.backend.logs.head<TrainingStreamState>(trainingTopic(change.jobId));
    if (!head?.state) return;
    await this.append(change.jobId, (h, state) => projectTrainingStatus(change, h, state, this.clock(), this.settings)).catch((error: unknown) => {
      // The run's job is gone (retention): nothing to end.
      if (error instanceof DomainError && error.code === 'NOT_FOUND') return;
      throw error;
    });
  }

  /** The run's job record when the viewer may see it, else null. */
  private async visibleJob(viewer: Viewer, runId: string): Promise<JobRecord | null> {
    const job = await this.backend.store.get(runId);
    return job && canSeeJob(viewer, job) ? job : null;
  }

  /**
   * Publishes a batch of training events to a run, in order, and moves the
   * run's job (see domain `planJobOps`). All-or-nothing on validation.
   * @returns the number of events accepted: the batch size minus the log lines the rate limit dropped.
   * @throws DomainError BAD_USER_INPUT (invalid event, globalStep going down), NOT_FOUND (no such run in the viewer's tenant), CONFLICT (run finished).
   */
  async publish(viewer: Viewer, runId: string, inputs: readonly TrainingEventInput[]): Promise<number> {
    validateTrainingEvents(inputs);
    const job = await this.visibleJob(viewer, runId);
    if (!job) throw notFound(runId);
    const ops = planJobOps(job, inputs);
    let dropped = 0;
    const change = await this.append(runId, (head, state) => {
      const c = applyTrainingBatch(state, head, inputs, this.clock(), this.settings);
      dropped = c.droppedNow;
      return c;
    });
    if (change?.flushAtMs != null) this.scheduleFlush(runId, change.flushAtMs);
    await this.history.feed(runId, trainingSeries(inputs, this.clock()));
    for (const op of ops) await this.applyJobOp(viewer, runId, op);
    return inputs.length - dropped;
  }

  /** Moves the run's job (through the shared job write path; the viewer's tenancy was checked by `publish`). */
  private async applyJobOp(viewer: Viewer, runId: string, op: JobOp): Promise<void> {
    const interval = this.infra.writer.intervalMs;
    const step = (job: JobRecord, now: number): JobChange => {
      if (!canSeeJob(viewer, job)) throw notFound(runId);
      switch (op.op) {
        case 'progress':
          return applyProgress(job, { completed: op.completed, total: op.total }, now, interval);
        case 'start':
          return applyProgress(job, {}, now, interval);
        case 'pause':
        case 'resume':
          return setPaused(job, op.op === 'pause', op.message, now);
        case 'finish':
          return finishJob(job, op.outcome, op.message, now);
      }
    };
    try {
      await this.infra.writer.change(runId, step);
    } catch (error) {
      // The job was finished concurrently (e.g. cancelBatchJob): the events stand.
      if (error instanceof DomainError && error.code === 'CONFLICT') return;
      throw error;
    }
  }

  /** Appends to a run's training log through a pure step; returns the step's result when it committed. */
  private async append(
    runId: string,
    step: (head: Head, state: TrainingStreamState | null) => TrainingStreamChange | null,
  ): Promise<TrainingStreamChange | null> {
    const committed = await this.backend.logs.append<TrainingStreamState, TrainingEvent, TrainingStreamChange>(
      trainingTopic(runId),
      (head: LogHead<TrainingStreamState>): LogCommit<TrainingStreamState, TrainingEvent, TrainingStreamChange> | null => {
        const result = step({ epoch: head.epoch, offset: head.offset, runId }, head.state);
        if (!result) return null;
        // No expiry here: the log is removed with its run, RUNWATCH_RETENTION_DAYS after the run finishes.
        return { state: result.state, events: result.events, value: result };
      },
    );
    return committed?.value ?? null;
  }

  /** One timer per run: sends pending conflated events and dropped-line counts on the trailing edge. */
  private scheduleFlush(runId: string, atMs: number): void {
    if (this.flushTimers.has(runId)) return;
    const timer = setTimeout(() => {
      this.flushTimers.delete(runId);
      this.append(runId, (head, state) => flushTraining(state, head, this.clock(), this.settings))
        .then((change) => {
          if (change?.flushAtMs != null) this.scheduleFlush(runId, change.flushAtMs);
        })
        .catch((error) => {
          // The run is gone or finished: nothing is owed. Redis away: try again later (the outage is logged once).
          if (error instanceof DomainError && error.code !== 'SERVICE_UNAVAILABLE') return;
          if (!isUnavailable(error)) this.opts.onError?.(`training flush of run ${runId} failed; retrying`, error);
          this.scheduleFlush(runId, this.clock() + this.settings.intervalMs);
        });
    }, Math.max(0, atMs - this.clock()));
    timer.unref();
    this.flushTimers.set(runId, timer);
  }

  /**
   * Opens a run's training stream: the events after `after` from history
   * (or, without a cursor or when history no longer covers it, a fresh start:
   * the newest TrainingProgress and SystemStats, then the current
   * TrainingStatusChange, all with `snapshot: true`), then live events in
   * offset order, filtered per `filter`; it ends after a final
   * TrainingStatusChange (STOPPED, ERROR, COMPLETED) even when the filter hides it.
   * @throws DomainError NOT_FOUND (no such run in the viewer's tenant), BAD_USER_INPUT (bad cursor).
   */
  async openStream(
    viewer: Viewer,
    runId: string,
    filter: TrainingFilter,
    after: string | null,
    transport: StreamTransport = {},
  ): Promise<AsyncIterableIterator<TrainingEvent>> {
    const position = after ? decodeCursor(after) : null;
    const stream = await this.infra.kinds.open(this.kind, {
      topic: trainingTopic(runId),
      after: position,
      queue: queuePolicy(this.opts, transport),
      registry: this.streams,
      readHead: () => this.readStreamHead(viewer, runId),
      onReplayed: (count) => this.opts.hooks?.onReplayed?.(count),
    });
    const types = filter.types?.length ? new Set(filter.types) : null;
    const minLevel = filter.minLogLevel ?? null;
    if (!types && !minLevel) return stream;
    return new FilteredStream(
      stream,
      (e) => (!types || types.has(e.type)) && (!minLevel || e.type !== 'TRAINING_LOG' || logLevelAtLeast(e.level, minLevel)),
    );
  }

  /** The run's job status and training log head, giving a run without a log one (so the fresh start's cursor means something). */
  private async readStreamHead(viewer: Viewer, runId: string): Promise<StreamHead> {
    const topic = trainingTopic(runId);
    const job = await this.visibleJob(viewer, runId);
    if (!job) throw notFound(runId);
    let head = await this.backend.logs.head<TrainingStreamState>(topic);
    if (!head) {
      await this.backend.logs.append<TrainingStreamState, TrainingEvent>(topic, (h) =>
        h.state ? null : { state: emptyTrainingState(this.settings), events: [] },
      );
      head = await this.backend.logs.head<TrainingStreamState>(topic);
      if (!head) throw new Error(`training log ${topic} vanished`);
    }
    return { log: head, jobStatus: job.status };
  }

  /** Shutdown: stops flush timers and ends open streams with SERVICE_UNAVAILABLE (clients resume elsewhere with `after`). */
  close(): void {
    for (const timer of this.flushTimers.values()) clearTimeout(timer);
    this.flushTimers.clear();
    this.streams.closeAll(RESTARTING);
  }
}
