/**
 * What a job produces, on the worker's side: item results, gauges and log lines shaped into the server's inputs
 * and checked against its bounds before they are queued (private helpers of {@link ProgressReporter}), and
 * {@link guessLevel}, the level of a program's output line. The same rules as the Python client's `outputs.py`.
 */
import { RunwatchError } from './errors.js';
import type { ItemResultInput, LogLineInput, MetricInput } from './generated/graphql.js';

/** One item's result for `ProgressReporter.reportItems`. */
export interface ItemResult {
  /** The worker's id of the item, 1..200 characters. */
  itemId: string;
  /** Default true (counted in `completed`); false counts in `failed`. */
  ok?: boolean | undefined;
  /** Seconds it took (finite, ≥ 0); summarized as the metric `latencySeconds`. */
  latencySeconds?: number | undefined;
  /** Its metrics, name → finite value (at most 50), summarized per name in `BatchJob.metrics`. */
  metrics?: Record<string, number> | undefined;
  /** Why it failed, at most 2000 characters. */
  error?: string | undefined;
  /** What it produced: JSON, at most 4096 characters serialized. */
  data?: unknown;
}

/** A log level: the server's names, any case (`warn` and `fatal` too). */
export type LogLevelName = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR' | 'CRITICAL' | 'debug' | 'info' | 'warning' | 'warn' | 'error' | 'critical' | 'fatal';

/** Item results per reportItems request (the server's bound). */
export const ITEMS_PER_REQUEST = 500;
/** Log lines per appendLogs request (the server's bound). */
export const LOG_LINES_PER_REQUEST = 1000;
const DATA_JSON_MAX = 4096;
const NAME_MAX = 100;

const LEVELS: Record<string, LogLineInput['level']> = { debug: 'DEBUG', info: 'INFO', warning: 'WARNING', warn: 'WARNING', error: 'ERROR', critical: 'CRITICAL', fatal: 'CRITICAL' };
const LEVEL_IN_LINE = /\b(DEBUG|INFO|WARN(?:ING)?|ERROR|CRITICAL|FATAL)\b/i;

/**
 * The level of a program's output line, as `python -m runwatch run` guesses it: the first level word in its first
 * 40 characters (`WARNING:root:…`, `2026-12-07 10:00:00 ERROR …`), ERROR for a Python traceback's first line, else INFO.
 */
export function guessLevel(line: string): LogLineInput['level'] {
  const match = LEVEL_IN_LINE.exec(line.slice(0, 40));
  if (match) return LEVELS[match[1]!.toLowerCase()]!;
  return line.startsWith('Traceback (most recent call last)') ? 'ERROR' : 'INFO';
}

const finite = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);
const bad = (message: string) => new RunwatchError('BAD_USER_INPUT', message);

/**
 * A MetricInput `{ name, value }`.
 * @throws RunwatchError BAD_USER_INPUT for an empty or long (over 100) name, or a value that is not a finite number.
 */
export function metricInput(name: string, value: number, what = 'metric'): MetricInput {
  if (typeof name !== 'string' || !name.trim() || name.length > NAME_MAX) throw bad(`${what}: a name must have 1..${NAME_MAX} characters, got ${JSON.stringify(name)}`);
  if (!finite(value)) throw bad(`${what} ${JSON.stringify(name)} must be a finite number, got ${String(value)}`);
  return { name, value };
}

/**
 * An ItemResultInput (`ok` defaults to true, `error` cut to 2000 characters).
 * @throws RunwatchError BAD_USER_INPUT: no or a long id, a negative or non-finite latency, a bad metric, data over 4 KiB of JSON.
 */
export function itemInput(item: ItemResult): ItemResultInput {
  if (typeof item.itemId !== 'string' || !item.itemId || item.itemId.length > 200) throw bad(`an itemId must have 1..200 characters, got ${JSON.stringify(item.itemId)}`);
  const input: ItemResultInput = { itemId: item.itemId, ok: item.ok ?? true };
  if (item.latencySeconds !== undefined) {
    if (!(finite(item.latencySeconds) && item.latencySeconds >= 0)) throw bad(`item ${item.itemId}: latencySeconds must be a finite number ≥ 0`);
    input.latencySeconds = item.latencySeconds;
  }
  if (item.metrics) input.metrics = Object.entries(item.metrics).map(([name, value]) => metricInput(name, value, `item ${item.itemId}: metric`));
  if (item.error !== undefined) input.error = item.error.slice(0, 2000);
  if (item.data !== undefined) {
    if ((JSON.stringify(item.data)?.length ?? 0) > DATA_JSON_MAX) throw bad(`item ${item.itemId}: data is over ${DATA_JSON_MAX} characters of JSON`);
    input.data = item.data;
  }
  return input;
}

/** A LogLineInput stamped now: an unknown level is INFO, the message is cut to 8000 characters, the source to 200. */
export function logLine(message: string, level: LogLevelName | string = 'INFO', source?: string): LogLineInput {
  const line: LogLineInput = { level: LEVELS[level.toLowerCase()] ?? 'INFO', message: message.slice(0, 8000), timestamp: new Date().toISOString() };
  if (source) line.source = source.slice(0, 200);
  return line;
}
