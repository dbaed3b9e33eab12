/**
 * Steps: the stages of a job as first-class records with a status, start,
 * end and duration — a pipeline's tools, an evaluation's phases. Several may
 * run at once (parallel tools).
 *
 * Two ways in:
 * - `reportProgress(stage:)` — a sequential pipeline: a new stage opens (or
 *   re-opens) the step of that name and completes the step of the previous
 *   stage, if it is still RUNNING;
 * - `reportStep(name, status, ...)` — one step explicitly; any number may be
 *   RUNNING at once.
 * When the job finishes, its RUNNING steps finish with it: COMPLETED with a
 * completed job, FAILED (with the job's error) with a failed one, CANCELLED
 * with a cancelled one. PENDING steps stay PENDING.
 *
 * Status life: PENDING → RUNNING → COMPLETED | FAILED | CANCELLED; a finished
 * step may be reported RUNNING again (a retry): it restarts, keeping its place.
 *
 * Pure: plain values in, plain values or a DomainError out; times are epoch ms.
 */
import { badInput } from './errors.js';

export const STEP_STATUSES = ['PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED'] as const;
/** Where a step is. COMPLETED, FAILED and CANCELLED are finished. */
export type StepStatus = (typeof STEP_STATUSES)[number];

/** Bounds on steps (characters, steps). */
export const STEP_LIMITS = {
  /** Most steps per job. */
  perJob: 100,
  /** Longest step name (the same as a stage). */
  nameLength: 200,
  /** Longest step error message. */
  errorLength: 2000,
} as const;

const MAX_COUNT = 2_147_483_647;

/** The stored state of one step. */
export interface StepRecord {
  name: string;
  status: StepStatus;
  /** Epoch ms it started RUNNING; null while PENDING. */
  startedAt: number | null;
  /** Epoch ms it finished; null until then. */
  finishedAt: number | null;
  /** Units of the step done and in all (e.g. pages); null when not reported. */
  completed: number | null;
  total: number | null;
  /** Why it failed (FAILED only). */
  error: string | null;
}

/** What clients see of a step: the record and its duration. */
export interface StepView extends StepRecord {
  /** Seconds from start to finish, or to now while RUNNING; null while PENDING. */
  durationSeconds: number | null;
}

/** An explicit step report (reportStep). */
export interface StepReport {
  name: string;
  status: StepStatus;
  completed?: number | null;
  total?: number | null;
  error?: string | null;
}

/** Is this step status final? */
export const isStepFinished = (status: StepStatus) => status === 'COMPLETED' || status === 'FAILED' || status === 'CANCELLED';

/**
 * Views of steps whose view does not depend on the time (every step but a
 * RUNNING one), by record: records are never changed once made (a change
 * makes a new one), and a job's view is built several times per report (the
 * mutation's answer, its event, the job list's), each time for up to 100
 * steps, of which at most the running ones change. Weak: a view goes with its record.
 */
const timelessViews = new WeakMap<StepRecord, StepView>();

/**
 * The client's view of a step at `nowMs`. The view of a step that is not
 * RUNNING is made once per record and shared: callers must not modify it.
 */
export function viewStep(step: StepRecord, nowMs: number): StepView {
  const running = step.finishedAt === null && step.status === 'RUNNING';
  if (!running) {
    const cached = timelessViews.get(step);
    if (cached) return cached;
  }
  const view = makeView(step, nowMs);
  if (!running) timelessViews.set(step, view);
  return view;
}

/** A new view of a step at `nowMs` (see {@link viewStep}), not cached. */
function makeView(step: StepRecord, nowMs: number): StepView {
  const running = step.finishedAt === null && step.status === 'RUNNING';
  const end = step.finishedAt ?? (running ? nowMs : null);
  return { ...step, durationSeconds: step.startedAt === null || end === null ? null : Math.max(0, end - step.startedAt) / 1000 };
}

/** The views {@link viewSteps} made last of a steps array: at `nowMs`, and which of them are RUNNING (their view depends on the time). */
interface StepViews {
  nowMs: number;
  views: StepView[];
  running: number[];
}

/** By steps array: a job's steps array is never changed once made either (a change makes a new one). */
const viewsOfSteps = new WeakMap<readonly StepRecord[], StepViews>();

/**
 * The views of a job's steps at `nowMs`, in order (what {@link viewStep} gives for each). A job's view is built
 * several times per report (the mutation's answer, its event, the job list's entry) for the same steps array, of
 * which at most the RUNNING steps' views change with the time: the array of views is made once per steps array
 * and shared while the time is the same (or no step runs), else copied with only the RUNNING steps' views made
 * again — a few steps' work per view instead of up to 100. The array is shared: callers must not modify it.
 */
export function viewSteps(steps: readonly StepRecord[], nowMs: number): StepView[] {
  const known = viewsOfSteps.get(steps);
  if (known && (known.nowMs === nowMs || known.running.length === 0)) return known.views;
  let views: StepView[];
  let running: number[];
  if (known) {
    views = known.views.slice();
    running = known.running;
    for (const i of running) views[i] = viewStep(steps[i]!, nowMs);
  } else {
    views = new Array<StepView>(steps.length);
    running = [];
    // Records seen before (a job's steps, report after report) share their timeless views; records that are new
    // each time (parsed from a change-log entry) do not, and a view cached for each would only burden the GC
    // (a WeakMap entry per step): the first record's view is cached either way, so records seen again do from then on.
    const first = steps[0];
    const seen = first !== undefined && (timelessViews.has(first) || first.status === 'RUNNING');
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i]!;
      if (step.finishedAt === null && step.status === 'RUNNING') running.push(i);
      views[i] = seen || i === 0 ? viewStep(step, nowMs) : makeView(step, nowMs);
    }
  }
  viewsOfSteps.set(steps, { nowMs, views, running });
  return views;
}

function checkName(field: string, name: string): void {
  if (name.trim().length === 0) throw badInput(field, 'a step name must not be empty');
  if (name.length > STEP_LIMITS.nameLength) throw badInput(field, `a step name is at most ${STEP_LIMITS.nameLength} characters`);
}

function checkCount(field: string, value: number | null | undefined): void {
  if (value != null && (!Number.isInteger(value) || value < 0 || value > MAX_COUNT))
    throw badInput(field, `${field} must be a whole number from 0 to ${MAX_COUNT}, got ${value}`);
}

/** Moves one step to `status` at `nowMs` (start and finish times follow). */
function moved(step: StepRecord, status: StepStatus, nowMs: number): StepRecord {
  if (status === step.status) return step;
  if (status === 'PENDING') return { ...step, status, startedAt: null, finishedAt: null, error: null };
  if (status === 'RUNNING') return { ...step, status, startedAt: nowMs, finishedAt: null, error: null };
  return { ...step, status, startedAt: step.startedAt ?? nowMs, finishedAt: nowMs };
}

/** Adds or replaces a step; @throws BAD_USER_INPUT when a new one would exceed the bound. */
function put(steps: readonly StepRecord[], step: StepRecord, field: string): StepRecord[] {
  const i = steps.findIndex((s) => s.name === step.name);
  if (i >= 0) return steps.map((s, j) => (j === i ? step : s));
  if (steps.length >= STEP_LIMITS.perJob) throw badInput(field, `a job has at most ${STEP_LIMITS.perJob} steps`);
  return [...steps, step];
}

const fresh = (name: string): StepRecord => ({ name, status: 'PENDING', startedAt: null, finishedAt: null, completed: null, total: null, error: null });

/**
 * A stage change (`reportProgress(stage:)`): completes the previous stage's
 * step if it is RUNNING and (re)starts the step named `stage`. When the job
 * has 100 steps already, a new stage's step replaces the oldest finished one.
 * @returns the new steps and the started step.
 * @throws DomainError BAD_USER_INPUT (field `stage`) when a new step would exceed 100 and none is finished.
 */
export function enterStage(steps: readonly StepRecord[], previousStage: string | null, stage: string, nowMs: number): { steps: StepRecord[]; step: StepRecord } {
  // One copy and two scans of the (up to 100) steps: a stage report of a long pipeline is the common report.
  const next = steps.slice();
  if (previousStage !== null) {
    const i = next.findIndex((s) => s.name === previousStage);
    if (i >= 0 && next[i]!.status === 'RUNNING') next[i] = moved(next[i]!, 'COMPLETED', nowMs);
  }
  const at = next.findIndex((s) => s.name === stage);
  const existing = at >= 0 ? next[at]! : fresh(stage);
  const step = moved(existing.status === 'RUNNING' ? { ...existing, status: 'PENDING' } : existing, 'RUNNING', nowMs);
  if (at >= 0) {
    next[at] = step;
    return { steps: next, step };
  }
  if (next.length >= STEP_LIMITS.perJob) {
    // Stages predate steps and were never bounded: a new one makes room by dropping the oldest finished step.
    const oldest = next.findIndex((s) => isStepFinished(s.status));
    if (oldest >= 0) next.splice(oldest, 1);
    else throw badInput('stage', `a job has at most ${STEP_LIMITS.perJob} steps`);
  }
  next.push(step);
  return { steps: next, step };
}

/** Validates an explicit step report. @throws DomainError BAD_USER_INPUT naming the field. */
export function validateStepReport(report: StepReport): void {
  checkName('name', report.name);
  if (!(STEP_STATUSES as readonly string[]).includes(report.status)) throw badInput('status', `unknown step status ${report.status}`);
  checkCount('completed', report.completed);
  checkCount('total', report.total);
  if (report.completed != null && report.total != null && report.completed > report.total)
    throw badInput('completed', `completed (${report.completed}) exceeds total (${report.total})`);
  if (report.error != null) {
    if (report.status !== 'FAILED') throw badInput('error', 'error is only for a FAILED step');
    if (report.error.length > STEP_LIMITS.errorLength) throw badInput('error', `error is longer than ${STEP_LIMITS.errorLength} characters`);
  }
}

/**
 * Applies an explicit step report: creates the step if new, moves its
 * status (RUNNING sets `startedAt`; a finished status sets `finishedAt`, and
 * `startedAt` too if it never ran), and sets the counts and error given
 * (omitted counts keep their value).
 * @returns the new steps and the reported step.
 * @throws DomainError BAD_USER_INPUT (see {@link validateStepReport}; field `name` when a new step would exceed 100,
 *   field `completed` when completed would exceed the step's total).
 */
export function applyStepReport(steps: readonly StepRecord[], report: StepReport, nowMs: number): { steps: StepRecord[]; step: StepRecord } {
  validateStepReport(report);
  const existing = steps.find((s) => s.name === report.name) ?? fresh(report.name);
  const step: StepRecord = {
    ...moved(existing, report.status, nowMs),
    completed: report.completed ?? existing.completed,
    total: report.total ?? existing.total,
  };
  if (report.status === 'FAILED') step.error = report.error ?? existing.error;
  if (step.completed !== null && step.total !== null && step.completed > step.total)
    throw badInput('completed', `completed (${step.completed}) exceeds the step's total (${step.total})`);
  return { steps: put(steps, step, 'name'), step };
}

/** The steps of a job that just finished: RUNNING steps finish with it (see the module comment). */
export function finishSteps(steps: readonly StepRecord[], outcome: 'COMPLETED' | 'FAILED' | 'CANCELLED', error: string | null, nowMs: number): StepRecord[] {
  return steps.map((s) => {
    if (s.status !== 'RUNNING') return s;
    const step = moved(s, outcome, nowMs);
    return outcome === 'FAILED' ? { ...step, error: error ?? step.error } : step;
  });
}
