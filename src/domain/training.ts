/**
 * Training runs: the event types of `trainingEvents`, their validation, and
 * how a batch of training events moves the run's job (a training run is a
 * job; TrainingProgress sets completed = globalStep and total = maxStep, and
 * status changes move the job's status).
 *
 * Pure: plain values in, plain values or a DomainError out.
 */
import { badInput, conflict } from './errors.js';
import { isTerminal, type JobStatus } from './job.js';
import type { NamedPoint } from './metric-history.js';

export const TRAINING_EVENT_TYPES = [
  'TRAINING_PROGRESS',
  'TRAINING_STATUS_CHANGE',
  'SAMPLE_GENERATED',
  'TRAINING_LOG',
  'SYSTEM_STATS',
  'VALIDATION_RESULT',
] as const;
/** The kinds of event on a training stream, one per member of the GraphQL union TrainingEvent. */
export type TrainingEventType = (typeof TRAINING_EVENT_TYPES)[number];

export const TRAINING_STATUSES = ['IDLE', 'STARTING', 'RUNNING', 'PAUSED', 'STOPPING', 'STOPPED', 'ERROR', 'COMPLETED'] as const;
/** What the trainer says it is doing. STOPPED, ERROR and COMPLETED are final. */
export type TrainingStatus = (typeof TRAINING_STATUSES)[number];

export const LOG_LEVELS = ['DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL'] as const;
/** Severity of a TrainingLog, in increasing order. */
export type LogLevel = (typeof LOG_LEVELS)[number];

export const SAMPLE_TYPES = ['IMAGE', 'TEXT', 'AUDIO', 'VIDEO', 'OTHER'] as const;
/** What a generated sample is. */
export type SampleType = (typeof SAMPLE_TYPES)[number];

/** Is this training status final (the stream ends after it)? */
export const isFinalTrainingStatus = (status: TrainingStatus) => status === 'STOPPED' || status === 'ERROR' || status === 'COMPLETED';

/** Does a log at `level` pass a `minLevel` filter? */
export const logLevelAtLeast = (level: LogLevel, minLevel: LogLevel) => LOG_LEVELS.indexOf(level) >= LOG_LEVELS.indexOf(minLevel);

/** A named validation metric (e.g. `{ name: "accuracy", value: 0.91 }`). */
export interface NamedMetric {
  name: string;
  value: number;
}

/** Progress of the optimiser. Steps and epochs are counts; `etaSeconds` in seconds. */
export interface TrainingProgressData {
  type: 'TRAINING_PROGRESS';
  step: number | null;
  epoch: number | null;
  epochStep: number | null;
  globalStep: number;
  maxStep: number | null;
  maxEpoch: number | null;
  loss: number | null;
  learningRate: number | null;
  etaSeconds: number | null;
}

export interface TrainingStatusChangeData {
  type: 'TRAINING_STATUS_CHANGE';
  status: TrainingStatus;
  message: string | null;
  error: string | null;
}

export interface SampleGeneratedData {
  type: 'SAMPLE_GENERATED';
  sampleId: string;
  /** Where the trainer wrote it (a path on its machine); `path` or `url` is set. */
  path: string | null;
  url: string | null;
  sampleType: SampleType;
  step: number | null;
  epoch: number | null;
  prompt: string | null;
  /** A small preview: an http(s) URL or a data: URI. */
  thumbnail: string | null;
}

export interface TrainingLogData {
  type: 'TRAINING_LOG';
  level: LogLevel;
  message: string;
  source: string | null;
  /** Log lines of this run dropped by the rate limit just before this one (set by runwatch). */
  droppedBefore: number;
}

/** Machine load. Memory in GB; utilisation in percent (0..100). */
export interface SystemStatsData {
  type: 'SYSTEM_STATS';
  gpuMemoryUsedGb: number | null;
  gpuMemoryTotalGb: number | null;
  gpuUtilizationPercent: number | null;
  cpuPercent: number | null;
  ramUsedGb: number | null;
  ramTotalGb: number | null;
}

export interface ValidationResultData {
  type: 'VALIDATION_RESULT';
  step: number | null;
  epoch: number | null;
  validationLoss: number;
  metrics: NamedMetric[];
}

/** The payload of one training event, by type. */
export type TrainingEventData =
  | TrainingProgressData
  | TrainingStatusChangeData
  | SampleGeneratedData
  | TrainingLogData
  | SystemStatsData
  | ValidationResultData;

/** One event of a run's training stream, as stored in history and published. */
export type TrainingEvent = TrainingEventData & {
  /** Position in the run's training stream (grows by one per stored event). */
  offset: number;
  cursor: string;
  runId: string;
  /** Epoch milliseconds: given by the trainer, or when runwatch received it. */
  timestamp: number;
  /** True for the fresh-start events that describe current state (not stored in history). */
  snapshot: boolean;
};

/** One event as a trainer publishes it: the payload, `droppedBefore` excluded, plus an optional timestamp (epoch ms). */
export type TrainingEventInput = (TrainingEventData extends infer D ? (D extends TrainingLogData ? Omit<D, 'droppedBefore'> : D) : never) & {
  timestamp?: number | null;
};

/** Limits on one publishTrainingEvents call and its fields (characters unless noted). */
export const TRAINING_LIMITS = {
  eventsPerCall: 1000,
  text: 2000,
  logMessage: 8000,
  name: 200,
  url: 2048,
  thumbnail: 100_000,
  metrics: 50,
} as const;

const MAX_INT = 2_147_483_647;

/** Validates one publishTrainingEvents batch. @throws DomainError BAD_USER_INPUT naming the field (e.g. `events[3].progress.loss`). */
export function validateTrainingEvents(events: readonly TrainingEventInput[]): void {
  if (events.length === 0) throw badInput('events', 'events must not be empty');
  if (events.length > TRAINING_LIMITS.eventsPerCall) throw badInput('events', `at most ${TRAINING_LIMITS.eventsPerCall} events per call`);
  events.forEach((event, i) => validateOne(event, `events[${i}].${INPUT_FIELD[event.type]}`));
}

/** The member of the GraphQL input `TrainingEventInput` (@oneOf) that carries each type. */
export const INPUT_FIELD: Record<TrainingEventType, string> = {
  TRAINING_PROGRESS: 'progress',
  TRAINING_STATUS_CHANGE: 'status',
  SAMPLE_GENERATED: 'sample',
  TRAINING_LOG: 'log',
  SYSTEM_STATS: 'systemStats',
  VALIDATION_RESULT: 'validation',
};

function validateOne(e: TrainingEventInput, at: string): void {
  const count = (name: string, v: number | null | undefined, required = false) => {
    if (v == null) {
      if (required) throw badInput(`${at}.${name}`, `${name} is required`);
      return;
    }
    if (!Number.isInteger(v) || v < 0 || v > MAX_INT) throw badInput(`${at}.${name}`, `${name} must be a whole number from 0 to ${MAX_INT}, got ${v}`);
  };
  const real = (name: string, v: number | null | undefined, min = -Infinity, max = Infinity) => {
    if (v == null) return;
    if (!Number.isFinite(v) || v < min || v > max) throw badInput(`${at}.${name}`, `${name} must be a finite number from ${min} to ${max}, got ${v}`);
  };
  const text = (name: string, v: string | null | undefined, max: number, required = false) => {
    if (v == null || v === '') {
      if (required) throw badInput(`${at}.${name}`, `${name} must not be empty`);
      return;
    }
    if (v.length > max) throw badInput(`${at}.${name}`, `${name} is longer than ${max} characters`);
  };
  if (e.timestamp != null && !Number.isFinite(e.timestamp)) throw badInput(`${at}.timestamp`, 'timestamp is not a valid time');
  switch (e.type) {
    case 'TRAINING_PROGRESS':
      for (const f of ['step', 'epoch', 'epochStep', 'maxStep', 'maxEpoch'] as const) count(f, e[f]);
      count('globalStep', e.globalStep, true);
      if (e.maxStep != null && e.globalStep > e.maxStep) throw badInput(`${at}.globalStep`, `globalStep (${e.globalStep}) exceeds maxStep (${e.maxStep})`);
      if (e.maxEpoch != null && e.epoch != null && e.epoch > e.maxEpoch) throw badInput(`${at}.epoch`, `epoch (${e.epoch}) exceeds maxEpoch (${e.maxEpoch})`);
      real('loss', e.loss);
      real('learningRate', e.learningRate, 0);
      real('etaSeconds', e.etaSeconds, 0);
      return;
    case 'TRAINING_STATUS_CHANGE':
      if (!(TRAINING_STATUSES as readonly string[]).includes(e.status)) throw badInput(`${at}.status`, `unknown status ${e.status}`);
      text('message', e.message, TRAINING_LIMITS.text);
      text('error', e.error, TRAINING_LIMITS.text);
      return;
    case 'SAMPLE_GENERATED':
      text('sampleId', e.sampleId, TRAINING_LIMITS.name, true);
      text('path', e.path, TRAINING_LIMITS.url);
      text('url', e.url, TRAINING_LIMITS.url);
      if (!e.path && !e.url) throw badInput(`${at}.path`, 'give path or url');
      if (e.url && !/^https?:\/\//i.test(e.url)) throw badInput(`${at}.url`, 'url must be an http(s) URL');
      text('thumbnail', e.thumbnail, TRAINING_LIMITS.thumbnail);
      if (e.thumbnail && !/^(https?:\/\/|data:image\/)/i.test(e.thumbnail)) throw badInput(`${at}.thumbnail`, 'thumbnail must be an http(s) URL or a data:image/ URI');
      text('prompt', e.prompt, TRAINING_LIMITS.text);
      count('step', e.step);
      count('epoch', e.epoch);
      return;
    case 'TRAINING_LOG':
      text('message', e.message, TRAINING_LIMITS.logMessage, true);
      text('source', e.source, TRAINING_LIMITS.name);
      return;
    case 'SYSTEM_STATS':
      for (const f of ['gpuMemoryUsedGb', 'gpuMemoryTotalGb', 'ramUsedGb', 'ramTotalGb'] as const) real(f, e[f], 0);
      real('gpuUtilizationPercent', e.gpuUtilizationPercent, 0, 100);
      real('cpuPercent', e.cpuPercent, 0, 100);
      if (e.gpuMemoryUsedGb != null && e.gpuMemoryTotalGb != null && e.gpuMemoryUsedGb > e.gpuMemoryTotalGb)
        throw badInput(`${at}.gpuMemoryUsedGb`, 'gpuMemoryUsedGb exceeds gpuMemoryTotalGb');
      if (e.ramUsedGb != null && e.ramTotalGb != null && e.ramUsedGb > e.ramTotalGb) throw badInput(`${at}.ramUsedGb`, 'ramUsedGb exceeds ramTotalGb');
      return;
    case 'VALIDATION_RESULT': {
      real('validationLoss', e.validationLoss);
      if (e.validationLoss == null) throw badInput(`${at}.validationLoss`, 'validationLoss is required');
      count('step', e.step);
      count('epoch', e.epoch);
      if (e.metrics.length > TRAINING_LIMITS.metrics) throw badInput(`${at}.metrics`, `at most ${TRAINING_LIMITS.metrics} metrics`);
      const names = new Set<string>();
      e.metrics.forEach((m, j) => {
        text(`metrics[${j}].name`, m.name, 100, true);
        real(`metrics[${j}].value`, m.value);
        if (names.has(m.name)) throw badInput(`${at}.metrics[${j}].name`, `metric ${m.name} given twice`);
        names.add(m.name);
      });
      return;
    }
  }
}

/** What a batch asks of the run's job, in order. */
export type JobOp =
  | { op: 'progress'; completed: number; total: number | null }
  | { op: 'start' }
  | { op: 'pause'; message: string | null }
  | { op: 'resume'; message: string | null }
  | { op: 'finish'; outcome: 'COMPLETED' | 'FAILED' | 'CANCELLED'; message: string | null };

/** The job fields {@link planJobOps} checks against. */
export interface JobProgressState {
  id: string;
  status: JobStatus;
  completed: number;
  failed: number;
  total: number | null;
}

/**
 * Plans the job changes of a validated batch: TrainingProgress → progress
 * (completed = globalStep, total = maxStep; consecutive ones merged into the
 * newest), RUNNING → start or resume, PAUSED → pause (starting first when
 * QUEUED), STOPPED → CANCELLED, ERROR → FAILED, COMPLETED → COMPLETED.
 * IDLE, STARTING and STOPPING leave the job alone. Events after a final
 * status in the same batch are published but move the job no further.
 * @throws DomainError CONFLICT when the job is already finished;
 *   BAD_USER_INPUT when globalStep goes down or exceeds the job's total.
 */
export function planJobOps(job: JobProgressState, events: readonly TrainingEventInput[]): JobOp[] {
  if (isTerminal(job.status)) throw conflict(`run ${job.id} is already ${job.status}`);
  const ops: JobOp[] = [];
  let status = job.status;
  let completed = job.completed;
  let total = job.total;
  events.forEach((e, i) => {
    if (isTerminal(status)) return;
    if (e.type === 'TRAINING_PROGRESS') {
      if (e.globalStep < completed)
        throw badInput(`events[${i}].progress.globalStep`, `globalStep may not go down (is ${completed}, got ${e.globalStep})`);
      total = e.maxStep ?? total;
      if (total !== null && e.globalStep + job.failed > total)
        throw badInput(`events[${i}].progress.globalStep`, `globalStep (${e.globalStep}) exceeds the run's total steps (${total})`);
      completed = e.globalStep;
      const last = ops[ops.length - 1];
      if (last?.op === 'progress') ops.pop();
      ops.push({ op: 'progress', completed, total });
      status = 'RUNNING';
    } else if (e.type === 'TRAINING_STATUS_CHANGE') {
      const message = e.message ?? null;
      switch (e.status) {
        case 'RUNNING':
          if (status === 'QUEUED') ops.push({ op: 'start' });
          else if (status === 'PAUSED') ops.push({ op: 'resume', message });
          status = 'RUNNING';
          break;
        case 'PAUSED':
          if (status === 'QUEUED') ops.push({ op: 'start' });
          if (status !== 'PAUSED') ops.push({ op: 'pause', message });
          status = 'PAUSED';
          break;
        case 'STOPPED':
          ops.push({ op: 'finish', outcome: 'CANCELLED', message });
          status = 'CANCELLED';
          break;
        case 'ERROR':
          ops.push({ op: 'finish', outcome: 'FAILED', message: e.error || message || 'the trainer reported an error' });
          status = 'FAILED';
          break;
        case 'COMPLETED':
          ops.push({ op: 'finish', outcome: 'COMPLETED', message });
          status = 'COMPLETED';
          break;
        default:
          break; // IDLE, STARTING, STOPPING: the job keeps its status
      }
    }
  });
  return ops;
}

/** The training status that describes a job when the trainer has not said (fresh start of a stream). */
export function trainingStatusOfJob(status: JobStatus): TrainingStatus {
  switch (status) {
    case 'QUEUED':
      return 'IDLE';
    case 'RUNNING':
      return 'RUNNING';
    case 'PAUSED':
      return 'PAUSED';
    case 'COMPLETED':
      return 'COMPLETED';
    case 'FAILED':
      return 'ERROR';
    case 'CANCELLED':
      return 'STOPPED';
  }
}

/**
 * The chart series of a training batch, every value (before conflation): `loss` and `learningRate` at `globalStep`,
 * `validationLoss` and `validation.<metric>` at the result's `step` (else the batch's newest globalStep, else 0).
 * Timestamps: the event's, else `nowMs`.
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
