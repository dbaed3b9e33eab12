/**
 * The publishing side of a run's training stream: which events go out now,
 * which wait, which are dropped. Pure; the state lives in the run's topic
 * log (shared by every instance through the backend) and every function
 * takes the time as `nowMs`.
 *
 * - TrainingProgress and SystemStats are conflated per run, each on its own
 *   clock: at most one per `intervalMs` (1000 / RUNWATCH_PROGRESS_HZ) goes out;
 *   one arriving sooner waits as the run's *pending* one of its kind
 *   (a newer one replaces it) and goes out on the trailing edge
 *   ({@link flushTraining}), so the newest is always delivered.
 * - A pending conflated event never ends up behind a newer status change,
 *   sample or validation result: it is sent just before that event (so the
 *   stream's last progress before a final status is the newest one). Logs
 *   do not pull it forward: they are frequent, and would defeat the rate limit.
 * - TrainingLog is rate-limited per run by a token bucket (`logBurst` lines
 *   at once, `logRatePerSecond` sustained); dropped lines are counted, and the
 *   count goes out as `droppedBefore` on the next line that passes — or on a
 *   runwatch WARNING line on the trailing edge when no further line comes.
 * - Statuses, samples and validation results are never conflated or dropped.
 */
import { encodeCursor } from './cursor.js';
import { progressDue } from './conflation.js';
import { admitLogLine, droppedLinesMessage, droppedReportDueMs, refillInPlace, takeDroppedReport, type LogBucket, type LogLimits } from './log-limit.js';
import {
  isFinalTrainingStatus,
  trainingStatusOfJob,
  type SystemStatsData,
  type TrainingEvent,
  type TrainingEventData,
  type TrainingEventInput,
  type TrainingProgressData,
  type TrainingStatus,
} from './training.js';
import type { JobStatus } from './job.js';

/** Rate settings of a training stream: the conflation interval and the log limits (log-limit.ts). */
export interface TrainingStreamSettings extends LogLimits {
  /** Minimum milliseconds between two TrainingProgress (and, separately, two SystemStats) events: 1000 / RUNWATCH_PROGRESS_HZ. */
  intervalMs: number;
}

export { DEFAULT_LOG_LIMITS, refillLogTokens } from './log-limit.js';

type Conflated = 'progress' | 'stats';

/** A conflated event waiting for its trailing edge. */
interface Pending {
  data: TrainingProgressData | SystemStatsData;
  timestamp: number;
  /** Arrival order among pending events. */
  seq: number;
}

/** The state a run's training topic log keeps. Times are epoch ms. Its log bucket fields are log-limit.ts's {@link LogBucket}. */
export interface TrainingStreamState extends LogBucket {
  /** The newest status the trainer reported, and when; null before the first. */
  status: { status: TrainingStatus; message: string | null; error: string | null; timestamp: number } | null;
  /** The newest TrainingProgress / SystemStats received (sent or pending), for fresh starts. */
  latest: { progress: { data: TrainingProgressData; timestamp: number } | null; stats: { data: SystemStatsData; timestamp: number } | null };
  /** When the last event of each conflated kind went out; null: never. */
  lastSentMs: Record<Conflated, number | null>;
  pending: Record<Conflated, Pending | null>;
  seq: number;
}

/** The state of a run that has published nothing yet. */
export const emptyTrainingState = (settings: TrainingStreamSettings): TrainingStreamState => ({
  status: null,
  latest: { progress: null, stats: null },
  lastSentMs: { progress: null, stats: null },
  pending: { progress: null, stats: null },
  seq: 0,
  logTokens: settings.logBurst,
  logTokensAtMs: null,
  droppedLogs: 0,
});

/** The outcome of {@link applyTrainingBatch} and {@link flushTraining}. */
export interface TrainingStreamChange {
  state: TrainingStreamState;
  /** Events to append, offsets following `headOffset`. */
  events: TrainingEvent[];
  /** When something is owed (a pending conflated event, or a dropped-lines count), the time to call {@link flushTraining}; else null. */
  flushAtMs: number | null;
  /** Log lines this call dropped (rate limit). */
  droppedNow: number;
}

const kindOf = (type: TrainingEventData['type']): Conflated | null =>
  type === 'TRAINING_PROGRESS' ? 'progress' : type === 'SYSTEM_STATS' ? 'stats' : null;

class Builder {
  readonly events: TrainingEvent[] = [];
  readonly state: TrainingStreamState;
  droppedNow = 0;
  constructor(
    state: TrainingStreamState,
    private readonly head: { epoch: string; offset: number; runId: string },
    private readonly nowMs: number,
    private readonly settings: TrainingStreamSettings,
  ) {
    this.state = structuredClone(state);
    refillInPlace(this.state, nowMs, settings);
  }

  emit(data: TrainingEventData, timestamp: number): void {
    const offset = this.head.offset + this.events.length + 1;
    this.events.push({ ...data, offset, cursor: encodeCursor(this.head.epoch, offset), runId: this.head.runId, timestamp, snapshot: false });
  }

  /** Sends the pending conflated events, oldest first. */
  flushPending(onlyDue: boolean): void {
    const due = (['progress', 'stats'] as const)
      .map((kind) => ({ kind, pending: this.state.pending[kind] }))
      .filter((p): p is { kind: Conflated; pending: Pending } => p.pending !== null)
      .filter((p) => !onlyDue || progressDue(this.state.lastSentMs[p.kind], this.nowMs, this.settings.intervalMs))
      .sort((a, b) => a.pending.seq - b.pending.seq);
    for (const { kind, pending } of due) {
      this.emit(pending.data, pending.timestamp);
      this.state.pending[kind] = null;
      this.state.lastSentMs[kind] = this.nowMs;
    }
  }

  add(input: TrainingEventInput): void {
    const timestamp = input.timestamp ?? this.nowMs;
    const { timestamp: _drop, ...rest } = input;
    const data = (input.type === 'TRAINING_LOG' ? { ...rest, droppedBefore: 0 } : rest) as TrainingEventData;
    const kind = kindOf(data.type);
    if (kind) {
      const d = data as TrainingProgressData | SystemStatsData;
      if (kind === 'progress') this.state.latest.progress = { data: d as TrainingProgressData, timestamp };
      else this.state.latest.stats = { data: d as SystemStatsData, timestamp };
      if (progressDue(this.state.lastSentMs[kind], this.nowMs, this.settings.intervalMs)) {
        this.state.pending[kind] = null;
        this.state.lastSentMs[kind] = this.nowMs;
        this.emit(data, timestamp);
      } else {
        this.state.pending[kind] = { data: d, timestamp, seq: ++this.state.seq };
      }
      return;
    }
    if (data.type === 'TRAINING_LOG') {
      const droppedBefore = admitLogLine(this.state);
      if (droppedBefore === null) this.droppedNow++;
      else this.emit({ ...data, droppedBefore }, timestamp);
      return;
    }
    this.flushPending(false);
    if (data.type === 'TRAINING_STATUS_CHANGE') {
      this.state.status = { status: data.status, message: data.message, error: data.error, timestamp };
    }
    this.emit(data, timestamp);
  }

  /** Reports dropped log lines on a runwatch line when a token is available. */
  reportDropped(): void {
    const n = takeDroppedReport(this.state);
    if (n === null) return;
    this.emit({ type: 'TRAINING_LOG', level: 'WARNING', message: droppedLinesMessage(n), source: 'runwatch', droppedBefore: n }, this.nowMs);
  }

  result(): TrainingStreamChange {
    const times: number[] = [];
    for (const kind of ['progress', 'stats'] as const) {
      if (this.state.pending[kind]) times.push((this.state.lastSentMs[kind] ?? this.nowMs) + this.settings.intervalMs);
    }
    if (this.state.droppedLogs > 0) times.push(droppedReportDueMs(this.state, this.nowMs, this.settings));
    return { state: this.state, events: this.events, flushAtMs: times.length ? Math.min(...times) : null, droppedNow: this.droppedNow };
  }
}

/**
 * Applies a validated batch, in order. Events after a final status in the
 * batch are still stored (the trainer's last words), but the stream's
 * subscribers end at the final status.
 */
export function applyTrainingBatch(
  current: TrainingStreamState | null,
  head: { epoch: string; offset: number; runId: string },
  inputs: readonly TrainingEventInput[],
  nowMs: number,
  settings: TrainingStreamSettings,
): TrainingStreamChange {
  const b = new Builder(current ?? emptyTrainingState(settings), head, nowMs, settings);
  for (const input of inputs) b.add(input);
  return b.result();
}

/**
 * The trailing edge: sends pending conflated events that are due and reports
 * dropped log lines when the bucket allows.
 * @returns null when nothing is owed; otherwise the change (possibly with no
 *   events and a later `flushAtMs` when not yet due).
 */
export function flushTraining(
  current: TrainingStreamState | null,
  head: { epoch: string; offset: number; runId: string },
  nowMs: number,
  settings: TrainingStreamSettings,
): TrainingStreamChange | null {
  if (!current || (!current.pending.progress && !current.pending.stats && current.droppedLogs === 0)) return null;
  const b = new Builder(current, head, nowMs, settings);
  b.flushPending(true);
  b.reportDropped();
  return b.result();
}

/**
 * The fresh start of a stream (no cursor, or history no longer covers it):
 * the newest TrainingProgress and SystemStats if any, then a
 * TrainingStatusChange of the current status — the trainer's newest, or, when
 * it said none or the job finished another way (e.g. cancelBatchJob), the one
 * matching the job's status. All carry `snapshot: true` and the cursor of the
 * stream's newest event.
 */
export function trainingSnapshot(
  state: TrainingStreamState | null,
  head: { epoch: string; offset: number; runId: string },
  jobStatus: JobStatus,
  nowMs: number,
): TrainingEvent[] {
  const base = { offset: head.offset, cursor: encodeCursor(head.epoch, head.offset), runId: head.runId, snapshot: true };
  const events: TrainingEvent[] = [];
  if (state?.latest.progress) events.push({ ...state.latest.progress.data, ...base, timestamp: state.latest.progress.timestamp });
  if (state?.latest.stats) events.push({ ...state.latest.stats.data, ...base, timestamp: state.latest.stats.timestamp });
  const fromJob = trainingStatusOfJob(jobStatus);
  const said = state?.status ?? null;
  const jobFinished = fromJob === 'COMPLETED' || fromJob === 'ERROR' || fromJob === 'STOPPED';
  if (said && (!jobFinished || isFinalTrainingStatus(said.status))) {
    events.push({ type: 'TRAINING_STATUS_CHANGE', status: said.status, message: said.message, error: said.error, ...base, timestamp: said.timestamp });
  } else {
    events.push({ type: 'TRAINING_STATUS_CHANGE', status: fromJob, message: null, error: null, ...base, timestamp: nowMs });
  }
  return events;
}

/** Is this the event a training stream ends after (a final TrainingStatusChange)? */
export const isFinalTrainingEvent = (event: TrainingEvent) => event.type === 'TRAINING_STATUS_CHANGE' && isFinalTrainingStatus(event.status);
