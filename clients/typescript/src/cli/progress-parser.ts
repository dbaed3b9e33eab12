/**
 * Turns the progress a command prints into counts, for `runwatch run`. Pure:
 * no I/O, no clock.
 *
 * Recognised, in this order, on one line (ANSI escapes removed first):
 * 1. JSON objects with numeric `completed` and/or `total` (also `stage`, `message`);
 * 2. tqdm bars: `desc:  45%|████▌     | 45/100 [00:01<00:01, 44.2it/s]`, with unit-scaled
 *    counts (`1.2k/10k`), and tqdm without a total: `desc: 123it [00:01, 99.1it/s]`;
 * 3. counters `N/M` or `N of M` (the first one on the line, with N ≤ M);
 * 4. percentages `45%` / `45.5 %` (0..100).
 * Training metrics ride along (they become TrainingProgress / ValidationResult on a TRAINING job):
 * - Hugging Face–style log lines, Python dict or JSON: `{'loss': 0.31, 'learning_rate': 4.8e-05, 'epoch': 0.12}`
 *   → `training` (`epoch` floored; `step`/`global_step` → `globalStep`), and
 *   `{'eval_loss': 0.44, 'eval_accuracy': 0.87, 'epoch': 1.0}` → `validation` (other `eval_*` numbers become metrics);
 * - `loss=0.12` / `loss: 0.12` and `lr=`/`learning_rate=` anywhere else on a line, e.g. in a tqdm postfix
 *   (`[00:05<00:05, 1.00s/it, loss=0.123, lr=1e-4]`); `val_loss=` and `train_loss=` are not the loss.
 * The cases both runners must agree on are in test/fixtures/progress-samples.json (read by the Node and
 * the Python test suites).
 * Terminals overwrite bars with `\r`, so {@link LineSplitter} splits on `\r` as well as `\n`.
 */

/** Training metrics a line carries (a TrainingProgress on a TRAINING job). */
export interface ParsedTraining {
  loss?: number;
  learningRate?: number;
  /** Whole epochs (a fractional epoch is floored). */
  epoch?: number;
  /** Steps over the whole run, when the line says (`step` / `global_step`). */
  globalStep?: number;
}

/** A validation result a line carries (a ValidationResult on a TRAINING job). */
export interface ParsedValidation {
  validationLoss: number;
  epoch?: number;
  /** Further `eval_*` numbers, by name without the `eval_` prefix. */
  metrics?: Record<string, number>;
}

/** What one line says about progress. Counts are items; `percent` is 0..100. */
export interface ParsedProgress {
  completed?: number;
  total?: number;
  percent?: number;
  stage?: string;
  message?: string;
  training?: ParsedTraining;
  validation?: ParsedValidation;
}

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;?]*[ -/]*[@-~]|\u001b[@-_]/g;

/** Removes ANSI escape sequences (colours, cursor moves). */
export const stripAnsi = (text: string) => text.replace(ANSI, '');

const SCALE: Record<string, number> = { '': 1, k: 1e3, K: 1e3, M: 1e6, G: 1e9, T: 1e12 };

/** `1.23k` → 1230; NaN when not a number. */
function scaled(text: string): number {
  const m = /^(\d+(?:\.\d+)?)([kKMGT]?)$/.exec(text.trim());
  return m ? Math.round(Number(m[1]) * SCALE[m[2]!]!) : NaN;
}

const TQDM = /^\s*(?:(?<desc>.*?):\s*)?(?<pct>\d{1,3})%\s*\|.*?\|\s*(?<n>\d+(?:\.\d+)?[kKMGT]?)\s*\/\s*(?<total>\d+(?:\.\d+)?[kKMGT]?)(?:\s*[a-zA-Z]+)?\s*\[/;
const TQDM_NO_TOTAL = /^\s*(?:(?<desc>.*?):\s*)?(?<n>\d+(?:\.\d+)?[kKMGT]?)(?:[a-zA-Z]+|\s[a-zA-Z]+)\s*\[\d+:\d{2}(?::\d{2})?,/;
const COUNTER = /(?<![\w./:-])(\d+)\s*(?:\/|\bof\b)\s*(\d+)(?![\w./:-])/;
const PERCENT = /(?<![\w.])(\d{1,3}(?:\.\d+)?)\s?%/;

const NUM = String.raw`-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?`;
const DICT_PAIR = new RegExp(String.raw`['"]([A-Za-z_][\w./-]*)['"]\s*:\s*(${NUM})(?=\s*[,}])`, 'g');
const LOSS = new RegExp(String.raw`(?<![\w.])loss\s*[=:]\s*(${NUM})`);
const LR = new RegExp(String.raw`(?<![\w.])(?:lr|learning_rate)\s*[=:]\s*(${NUM})`);
const EVAL_NOT_METRICS = new Set(['eval_loss', 'eval_runtime', 'eval_samples_per_second', 'eval_steps_per_second']);

/** `{'loss': 0.3, ...}` (Python dict or JSON) → training and validation metrics; {} when none. */
function dictMetrics(line: string): Pick<ParsedProgress, 'training' | 'validation'> {
  const values = new Map<string, number>();
  for (const m of line.matchAll(DICT_PAIR)) {
    const value = Number(m[2]);
    if (Number.isFinite(value)) values.set(m[1]!, value);
  }
  const out: Pick<ParsedProgress, 'training' | 'validation'> = {};
  const epoch = values.get('epoch');
  const wholeEpoch = epoch !== undefined && epoch >= 0 ? Math.floor(epoch) : undefined;
  const loss = values.get('loss');
  const lr = values.get('learning_rate') ?? values.get('lr');
  if (loss !== undefined || lr !== undefined) {
    const training: ParsedTraining = {};
    if (loss !== undefined) training.loss = loss;
    if (lr !== undefined) training.learningRate = lr;
    if (wholeEpoch !== undefined) training.epoch = wholeEpoch;
    const step = values.get('global_step') ?? values.get('step');
    if (step !== undefined && Number.isInteger(step) && step >= 0) training.globalStep = step;
    out.training = training;
  }
  const evalLoss = values.get('eval_loss');
  if (evalLoss !== undefined) {
    const validation: ParsedValidation = { validationLoss: evalLoss };
    if (wholeEpoch !== undefined) validation.epoch = wholeEpoch;
    const metrics: Record<string, number> = {};
    for (const [key, value] of values) if (key.startsWith('eval_') && !EVAL_NOT_METRICS.has(key)) metrics[key.slice(5)] = value;
    if (Object.keys(metrics).length) validation.metrics = metrics;
    out.validation = validation;
  }
  return out;
}

/** `loss=0.12` / `lr=1e-4` anywhere on a line (a tqdm postfix, a log line); undefined when absent. */
function inlineTraining(line: string): ParsedTraining | undefined {
  const loss = LOSS.exec(line);
  const lr = LR.exec(line);
  if (!loss && !lr) return undefined;
  const training: ParsedTraining = {};
  if (loss && Number.isFinite(Number(loss[1]))) training.loss = Number(loss[1]);
  if (lr && Number.isFinite(Number(lr[1]))) training.learningRate = Number(lr[1]);
  return Object.keys(training).length ? training : undefined;
}

/** Parses one line; null when it says nothing about progress or training. */
export function parseProgressLine(raw: string): ParsedProgress | null {
  const line = stripAnsi(raw).trim();
  if (!line) return null;
  if (line.startsWith('{') && line.endsWith('}')) {
    const metrics = dictMetrics(line);
    const counts = parseCounts(line);
    if (!metrics.training && !metrics.validation) return counts;
    return { ...(counts ?? {}), ...metrics };
  }
  const counts = parseCounts(line);
  const training = inlineTraining(line);
  if (!training) return counts;
  return { ...(counts ?? {}), training };
}

/** The counting forms (JSON, tqdm, N/M, percent) of one ANSI-free, trimmed line. */
function parseCounts(line: string): ParsedProgress | null {

  if (line.startsWith('{') && line.endsWith('}')) {
    try {
      const obj = JSON.parse(line) as Record<string, unknown>;
      const out: ParsedProgress = {};
      const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : undefined);
      const completed = num(obj.completed);
      const total = num(obj.total);
      if (completed !== undefined) out.completed = completed;
      if (total !== undefined) out.total = total;
      if (typeof obj.percent === 'number' && obj.percent >= 0 && obj.percent <= 100) out.percent = obj.percent;
      if (typeof obj.stage === 'string' && obj.stage) out.stage = obj.stage;
      if (typeof obj.message === 'string' && obj.message) out.message = obj.message;
      return out.completed !== undefined || out.total !== undefined || out.percent !== undefined ? out : null;
    } catch {
      // not JSON after all: try the other forms
    }
  }

  const tqdm = TQDM.exec(line);
  if (tqdm?.groups) {
    const completed = scaled(tqdm.groups.n!);
    const total = scaled(tqdm.groups.total!);
    if (Number.isFinite(completed) && Number.isFinite(total)) {
      const out: ParsedProgress = { completed, total };
      const desc = tqdm.groups.desc?.trim();
      if (desc) out.stage = desc;
      return out;
    }
  }
  const open = TQDM_NO_TOTAL.exec(line);
  if (open?.groups) {
    const completed = scaled(open.groups.n!);
    if (Number.isFinite(completed)) {
      const desc = open.groups.desc?.trim();
      return desc ? { completed, stage: desc } : { completed };
    }
  }

  const counter = COUNTER.exec(line);
  if (counter) {
    const completed = Number(counter[1]);
    const total = Number(counter[2]);
    if (total > 0 && completed <= total) return { completed, total };
  }

  const percent = PERCENT.exec(line);
  if (percent) {
    const value = Number(percent[1]);
    if (value <= 100) return { percent: value };
  }
  return null;
}

/** The job change a tracker wants reported. */
export interface ProgressUpdate {
  completed: number;
  total: number | null;
  stage?: string;
  message?: string;
}

/**
 * Folds parsed lines into a job's monotonic progress.
 * - A counter that starts over (a second tqdm loop) is added on: the job's total grows by the
 *   new bar's total and completed continues from where it was, so completed never goes down.
 * - A percentage alone maps onto `fixedTotal` (from `--total`) or onto a total of 100.
 * - With `fixedTotal`, counts are clamped to it.
 */
export class ProgressTracker {
  completed = 0;
  total: number | null;
  stage: string | null = null;
  /** Items done in earlier segments (bars that already finished or restarted). */
  private offset = 0;
  private segmentTotal: number | null = null;
  private lastN = 0;

  constructor(private readonly fixedTotal: number | null = null) {
    this.total = fixedTotal;
  }

  /** Applies one parsed line; returns the new state when anything changed, else null. */
  update(parsed: ParsedProgress): ProgressUpdate | null {
    const before = { completed: this.completed, total: this.total, stage: this.stage };
    if (parsed.completed !== undefined || parsed.total !== undefined) {
      const n = parsed.completed ?? this.lastN;
      const segTotal = parsed.total ?? this.segmentTotal;
      const restarted = n < this.lastN || (segTotal !== null && this.segmentTotal !== null && segTotal !== this.segmentTotal && n <= this.lastN);
      if (restarted) this.offset += this.lastN;
      this.lastN = n;
      this.segmentTotal = segTotal;
      if (this.fixedTotal === null && segTotal !== null) this.total = this.offset + segTotal;
      this.completed = Math.max(this.completed, this.offset + n);
    } else if (parsed.percent !== undefined) {
      const scale = this.fixedTotal ?? 100;
      if (this.fixedTotal === null) this.total = Math.max(this.total ?? 0, 100);
      this.completed = Math.max(this.completed, Math.floor((parsed.percent / 100) * scale));
    }
    if (this.total !== null) this.completed = Math.min(this.completed, this.total);
    if (parsed.stage !== undefined) this.stage = parsed.stage;
    const changed = before.completed !== this.completed || before.total !== this.total || before.stage !== this.stage;
    if (!changed && parsed.message === undefined) return null;
    const out: ProgressUpdate = { completed: this.completed, total: this.total };
    if (this.stage !== null && this.stage !== before.stage) out.stage = this.stage;
    if (parsed.message !== undefined) out.message = parsed.message;
    return out;
  }
}

/** Splits a byte stream into lines at `\n`, `\r\n` and lone `\r` (how progress bars redraw). */
export class LineSplitter {
  private rest = '';

  /** Feeds a chunk; returns the complete lines in it (without terminators). */
  push(chunk: string): string[] {
    const parts = (this.rest + chunk).split(/\r\n|\r|\n/);
    this.rest = parts.pop() ?? '';
    // keep at most 64 KiB of an unterminated line
    if (this.rest.length > 65_536) this.rest = this.rest.slice(-65_536);
    return parts;
  }

  /**
   * The line being written now (no terminator yet). tqdm writes `\r` before each redraw, so the
   * newest bar is always this partial line: parse it too, or progress lags one redraw behind.
   */
  get partial(): string {
    return this.rest;
  }

  /** The unterminated remainder, at the end of the stream. */
  end(): string[] {
    const rest = this.rest;
    this.rest = '';
    return rest ? [rest] : [];
  }
}
