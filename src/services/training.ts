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
import type { Viewer } from '../auth/tokens.js';
import { trainingTopic, type Backend } from '../backends/types.js';
import { decodeCursor } from '../domain/cursor.js';
import { DomainError, isUnavailable, notFound } from '../domain/errors.js';
import { isTerminal, type JobRecord, type JobStatus } from '../domain/job.js';
import {
  logLevelAtLeast,
  planJobOps,
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
import { catchUpEvents } from '../delivery/catch-up.js';
import { FilteredStream } from '../delivery/filtered-stream.js';
import { queuePolicy } from '../delivery/live-stream.js';
import { openTopicStream, StreamRegistry } from '../delivery/topic-stream.js';
import type { LogCommit, LogHead } from '../backends/topic-log.js';
import type { Clock } from './clock.js';
import type { NamedPoint } from './results.js';
import { RESTARTING, type JobService, type StreamHooks, type StreamTransport } from './jobs.js';

/** The topic of a run's training events (removed with the run when retention ends; see backends/types.ts). */
export { trainingTopic } from '../backends/types.js';

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
  /** Where loss, learning rate and validation results go for charts (ResultsService), every value before conflation. */
  history?: { feedHistory(jobId: string, points: readonly NamedPoint[]): Promise<void> };
}

/**
 * The chart series of a training batch, every value (before conflation): `loss` and `learningRate` at `globalStep`,
 * `validationLoss` and `validation.<metric>` at the result's `step` (else the batch's newest globalStep, else 0).
 */
export function trainingSeries(inputs: readonly TrainingEventInput[], nowMs: number): NamedPoint[] {
  const points: NamedPoint[] = [];
  let lastStep = 0;
  for (const e of inputs) {
    const timestamp = e.timestamp ?? nowMs;
    if (e.type === 'TRAINING_PROGRESS') {
      lastStep = e.globalStep;
      if (e.loss != null) points.push({ name: 'loss', step: e.globalStep, value: e.loss, timestamp });
      if (e.learningRate != null) points.push({ name: 'learningRate', step: e.globalStep, value: e.learningRate, timestamp });
    } else if (e.type === 'VALIDATION_RESULT') {
      const step = e.step ?? lastStep;
      points.push({ name: 'validationLoss', step, value: e.validationLoss, timestamp });
      for (const m of e.metrics) points.push({ name: `validation.${m.name}`, step, value: m.value, timestamp });
    }
  }
  return points;
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

export class TrainingService {
  private readonly settings: TrainingStreamSettings;
  private readonly flushTimers = new Map<string, NodeJS.Timeout>();
  private readonly streams = new StreamRegistry<TrainingEvent>();

  /** Training streams (trainingEvents subscriptions) open on this instance now. */
  get activeStreams(): number {
    return this.streams.size;
  }

  /** Runs with a training flush timer pending on this instance (diagnostics, tests). */
  get pendingFlushes(): number {
    return this.flushTimers.size;
  }

  constructor(
    private readonly backend: Backend,
    private readonly jobs: JobService,
    private readonly clock: Clock,
    private readonly opts: TrainingServiceOptions,
  ) {
    this.settings = {
      intervalMs: 1000 / opts.progressHz,
      logRatePerSecond: opts.logRatePerSecond ?? DEFAULT_LOG_LIMITS.logRatePerSecond,
      logBurst: opts.logBurst ?? DEFAULT_LOG_LIMITS.logBurst,
    };
    // A fresh start is several events at the head's offset (newest progress, stats, status): all are resets.
    backend.bus.onReconnect<TrainingEvent>(trainingTopic(''), (topic, last) => this.catchUp(topic, last), (e) => e.snapshot);
    jobs.onChange((before, after) => this.onJobChanged(before, after));
  }

  /**
   * Catch-up of one training topic after the bus reconnected (see
   * EventBus.onReconnect and delivery/catch-up.ts): the events stored after
   * the newest one this instance saw, or — when history does not cover it or
   * the epoch changed — a fresh start (snapshot events, which reset subscribers).
   */
  private catchUp(topic: string, last: TrainingEvent | null): Promise<TrainingEvent[]> {
    const runId = topic.slice(trainingTopic('').length);
    return catchUpEvents<TrainingEvent, LogHead<TrainingStreamState>>(last, {
      readHead: () => this.backend.logs.head<TrainingStreamState>(topic),
      positionOf: (head) => head,
      history: (afterOffset) => this.backend.logs.history<TrainingEvent>(topic, afterOffset),
      freshStart: async (head) => {
        const job = await this.backend.store.get(runId);
        return trainingSnapshot(head.state, { epoch: head.epoch, offset: head.offset, runId }, job?.status ?? 'RUNNING', this.clock());
      },
    });
  }

  /**
   * Publishes a batch of training events to a run, in order, and moves the
   * run's job (see domain `planJobOps`). All-or-nothing on validation.
   * @returns the number of events accepted: the batch size minus the log lines the rate limit dropped.
   * @throws DomainError BAD_USER_INPUT (invalid event, globalStep going down), NOT_FOUND (no such run in the viewer's tenant), CONFLICT (run finished).
   */
  async publish(viewer: Viewer, runId: string, inputs: readonly TrainingEventInput[]): Promise<number> {
    validateTrainingEvents(inputs);
    const job = await this.jobs.get(viewer, runId);
    if (!job) throw notFound(runId);
    const ops = planJobOps(job, inputs);
    let dropped = 0;
    const change = await this.append(runId, (head, state) => {
      const c = applyTrainingBatch(state, head, inputs, this.clock(), this.settings);
      dropped = c.droppedNow;
      return c;
    });
    if (change?.flushAtMs != null) this.scheduleFlush(runId, change.flushAtMs);
    await this.opts.history?.feedHistory(runId, trainingSeries(inputs, this.clock()));
    for (const op of ops) await this.applyJobOp(viewer, runId, op);
    return inputs.length - dropped;
  }

  private async applyJobOp(viewer: Viewer, runId: string, op: JobOp): Promise<void> {
    try {
      switch (op.op) {
        case 'progress':
          await this.jobs.report(viewer, runId, { completed: op.completed, total: op.total });
          return;
        case 'start':
          await this.jobs.report(viewer, runId, {});
          return;
        case 'pause':
        case 'resume':
          await this.jobs.setPaused(viewer, runId, op.op === 'pause', op.message);
          return;
        case 'finish':
          await this.jobs.finish(viewer, runId, op.outcome, op.message);
          return;
      }
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
    let result: TrainingStreamChange | null = null;
    const committed = await this.backend.logs.append<TrainingStreamState, TrainingEvent>(
      trainingTopic(runId),
      (head: LogHead<TrainingStreamState>): LogCommit<TrainingStreamState, TrainingEvent> | null => {
        result = step({ epoch: head.epoch, offset: head.offset, runId }, head.state);
        if (!result) return null;
        // No expiry here: the log is removed with its run, RUNWATCH_RETENTION_DAYS after the run finishes.
        return { state: result.state, events: result.events };
      },
    );
    return committed ? result : null;
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
   * Called for every job change (registered with JobService `onChange`): when a run whose
   * training log exists is finished by other means (cancelBatchJob,
   * failBatchJob, completeBatchJob), its training stream gets the matching
   * final TrainingStatusChange, so trainingEvents subscribers end too.
   */
  private async onJobChanged(before: JobRecord, after: JobRecord): Promise<void> {
    if (isTerminal(before.status) || !isTerminal(after.status)) return;
    const head = await this.backend.logs.head<TrainingStreamState>(trainingTopic(after.id));
    if (!head?.state) return;
    const status = after.status === 'COMPLETED' ? 'COMPLETED' : after.status === 'FAILED' ? 'ERROR' : 'STOPPED';
    await this.append(after.id, (h, state) => {
      const said = state?.status?.status;
      if (said === 'COMPLETED' || said === 'ERROR' || said === 'STOPPED') return null;
      const input: TrainingEventInput = {
        type: 'TRAINING_STATUS_CHANGE',
        status,
        message: after.status === 'FAILED' ? null : after.message,
        error: after.status === 'FAILED' ? after.errorMessage : null,
      };
      return applyTrainingBatch(state, h, [input], this.clock(), this.settings);
    });
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
    const topic = trainingTopic(runId);
    const stream = await openTopicStream<TrainingEvent, StreamHead>({
      source: { bus: this.backend.bus, topic },
      policy: { ...TRAINING_EVENTS, ...queuePolicy(this.opts, transport) },
      registry: this.streams,
      readHead: () => this.readStreamHead(viewer, runId),
      freshStart: ({ log, jobStatus }) => trainingSnapshot(log.state, { epoch: log.epoch, offset: log.offset, runId }, jobStatus, this.clock()),
      resume: {
        after: position,
        positionOf: ({ log }) => log,
        history: (afterOffset) => this.backend.logs.history<TrainingEvent>(topic, afterOffset),
        isFinished: ({ jobStatus }) => isTerminal(jobStatus),
        onReplayed: (count) => this.opts.hooks?.onReplayed?.(count),
      },
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
    const job = await this.jobs.get(viewer, runId);
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
