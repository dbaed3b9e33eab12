/**
 * Live metrics of a job: gauges a worker sets (`reportProgress(metrics:)`:
 * tokens per second, cost so far) and metrics of item results (`reportItems`:
 * accuracy, latency), each summarized per name as `last`, `count`, `mean`,
 * `min` and `max`, plus the job's success rate over its item results.
 *
 * The mean is `sum / count` with the sum kept in arrival order, so a client
 * that adds the same values in the same order gets the same number (a
 * running mean such as Welford's would differ in the last bits).
 *
 * Pure: plain values in, plain values or a DomainError out.
 */
import { badInput } from './errors.js';

/** A named value, as reported (`{ name: "accuracy", value: 0.91 }`). */
export interface MetricInput {
  name: string;
  value: number;
}

/** Bounds on metric names and counts (characters, names). */
export const METRIC_LIMITS = {
  /** Longest metric name, characters. */
  nameLength: 100,
  /** Most distinct metric names per job (gauges, item metrics and `latencySeconds` together). */
  namesPerJob: 50,
  /** Most metrics in one report or on one item. */
  perReport: 50,
} as const;

/** The summary name under which item latencies (`latencySeconds`) are summarized. */
export const LATENCY_METRIC = 'latencySeconds';

/** The stored summary of one metric. */
export interface MetricSummary {
  name: string;
  /** The newest value. */
  last: number;
  /** Values received. */
  count: number;
  /** Sum of the values, in arrival order (the mean is sum / count). */
  sum: number;
  min: number;
  max: number;
  /** Epoch ms of the newest value. */
  updatedAt: number;
}

/** What clients see of a summary. */
export interface MetricSummaryView {
  name: string;
  last: number;
  count: number;
  /** sum / count. */
  mean: number;
  min: number;
  max: number;
  updatedAt: number;
}

/** Checks one metric name. @throws DomainError BAD_USER_INPUT naming `field` when empty (after trimming) or longer than 100 characters. */
export function checkMetricName(field: string, name: string): void {
  if (name.trim().length === 0) throw badInput(field, 'a metric name must not be empty');
  if (name.length > METRIC_LIMITS.nameLength) throw badInput(field, `a metric name is at most ${METRIC_LIMITS.nameLength} characters`);
}

/** Checks one metric value. @throws DomainError BAD_USER_INPUT naming `field` unless it is a finite number (no NaN, no ±Infinity). */
export function checkMetricValue(field: string, value: number): void {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw badInput(field, `a metric value must be a finite number, got ${value}`);
}

/**
 * Validates a list of metrics (a report's, or one item's): at most 50, names
 * valid and distinct, values finite.
 * @param at the field path of the list, e.g. `metrics` or `items[3].metrics`.
 * @throws DomainError BAD_USER_INPUT naming the offending field.
 */
export function validateMetrics(at: string, metrics: readonly MetricInput[]): void {
  if (metrics.length > METRIC_LIMITS.perReport) throw badInput(at, `at most ${METRIC_LIMITS.perReport} metrics at once`);
  const seen = new Set<string>();
  metrics.forEach((m, i) => {
    checkMetricName(`${at}[${i}].name`, m.name);
    checkMetricValue(`${at}[${i}].value`, m.value);
    if (seen.has(m.name)) throw badInput(`${at}[${i}].name`, `metric ${JSON.stringify(m.name)} given twice`);
    seen.add(m.name);
  });
}

/**
 * Adds values to the summaries (returns new ones; the input is not changed).
 * New names are added in order of first appearance.
 * @throws DomainError BAD_USER_INPUT (field `metrics`) when the job would have more than 50 metric names.
 */
export function summarize(summaries: readonly MetricSummary[], values: readonly MetricInput[], nowMs: number): MetricSummary[] {
  const out = summaries.map((s) => ({ ...s }));
  const index = new Map(out.map((s, i) => [s.name, i]));
  for (const { name, value } of values) {
    const i = index.get(name);
    if (i === undefined) {
      if (out.length >= METRIC_LIMITS.namesPerJob)
        throw badInput('metrics', `a job has at most ${METRIC_LIMITS.namesPerJob} metric names; ${JSON.stringify(name)} would be one more`);
      index.set(name, out.length);
      out.push({ name, last: value, count: 1, sum: value, min: value, max: value, updatedAt: nowMs });
      continue;
    }
    const s = out[i]!;
    s.last = value;
    s.count += 1;
    s.sum += value;
    if (value < s.min) s.min = value;
    if (value > s.max) s.max = value;
    s.updatedAt = nowMs;
  }
  return out;
}

/** The client's view of a summary. */
export const viewSummary = (s: MetricSummary): MetricSummaryView => ({
  name: s.name,
  last: s.last,
  count: s.count,
  mean: s.sum / s.count,
  min: s.min,
  max: s.max,
  updatedAt: s.updatedAt,
});

/** ok / (ok + failed) over the item results reported; null before the first. */
export function successRate(okItems: number, failedItems: number): number | null {
  const n = okItems + failedItems;
  return n === 0 ? null : okItems / n;
}
