/**
 * Metric history: the whole curve of a numeric series (training loss,
 * learning rate, validation loss, a gauge, an item metric) in bounded memory,
 * so a chart of a finished 100,000-step run shows every region of it and
 * every extreme.
 *
 * The scheme is M4 aggregation (Jugel, Jerzak, Hackenbroich, Markl, "M4: A
 * Visualization-Oriented Time Series Data Aggregation", PVLDB 7(10), 2014):
 * a bucket of consecutive points keeps only its first, last, minimum and
 * maximum point, which is exactly what a line chart of the bucket's pixel
 * column draws. Buckets are count-based and merge pairwise when there are too
 * many (the bucket size doubles), the way an exponential histogram halves its
 * resolution (Datar, Gionis, Indyk, Motwani, "Maintaining Stream Statistics
 * over Sliding Windows", SIAM J. Comput. 31(6), 2002): memory stays at most
 * `capacity` buckets of 4 points however long the series grows, older and
 * newer regions keep the same resolution, and a merge of two M4 buckets is
 * the M4 bucket of their union, so the global first, last, minimum and
 * maximum point are never lost. Reading with a smaller budget merges
 * neighbouring buckets the same way.
 *
 * Points arrive in the order they are fed (the series' `step`s normally grow;
 * a step that goes back is kept in arrival order). Pure: the state is plain
 * JSON that backends store as it is.
 */
import { badInput } from './errors.js';

/** One point of a series: its x (`step`: a training step, or the n-th value of a gauge or item metric), value and time (epoch ms). */
export interface MetricPoint {
  step: number;
  value: number;
  /** Epoch milliseconds when the value was reported. */
  timestamp: number;
}

/** A point of a named series, to feed into a job's history. */
export interface NamedPoint extends MetricPoint {
  name: string;
}

/**
 * A bucket of consecutive points, flattened for compact JSON:
 * `[count, ...first, ...min, ...max, ...last]`, each point as `step, value, timestamp`.
 */
export type Bucket = number[];

/** The stored state of one series. */
export interface SeriesState {
  /** Points per full bucket (a power of two); doubles on every merge. */
  width: number;
  /** Buckets in arrival order; all but the last hold `width` points. */
  buckets: Bucket[];
  /** Points fed so far. */
  count: number;
}

/** Bounds of the metric history. */
export const HISTORY_LIMITS = {
  /** Buckets kept per series (at most 4 points each): a series costs at most 128 × 13 numbers (about 3 KiB of JSON). */
  bucketsPerSeries: 128,
  /** Fewest points a read may ask for: one bucket's first, minimum, maximum and last. */
  minReadPoints: 4,
  /** Most points a read may ask for. */
  maxReadPoints: 2000,
} as const;

/** A series with no points. */
export const emptySeries = (): SeriesState => ({ width: 1, buckets: [], count: 0 });

const FIRST = 1;
const MIN = 4;
const MAX = 7;
const LAST = 10;

const bucketOf = (p: MetricPoint): Bucket => [1, p.step, p.value, p.timestamp, p.step, p.value, p.timestamp, p.step, p.value, p.timestamp, p.step, p.value, p.timestamp];

const pointAt = (b: Bucket, at: number): MetricPoint => ({ step: b[at]!, value: b[at + 1]!, timestamp: b[at + 2]! });

/** The M4 bucket of two neighbouring buckets (`a` before `b`): first of a, last of b, the lower minimum and higher maximum (the earlier on ties). */
export function mergeBuckets(a: Bucket, b: Bucket): Bucket {
  const min = b[MIN + 1]! < a[MIN + 1]! ? b : a;
  const max = b[MAX + 1]! > a[MAX + 1]! ? b : a;
  return [
    a[0]! + b[0]!,
    a[FIRST]!, a[FIRST + 1]!, a[FIRST + 2]!,
    min[MIN]!, min[MIN + 1]!, min[MIN + 2]!,
    max[MAX]!, max[MAX + 1]!, max[MAX + 2]!,
    b[LAST]!, b[LAST + 1]!, b[LAST + 2]!,
  ];
}

/** Merges neighbours pairwise (0+1, 2+3, ...); an odd last bucket stays alone. */
function halve(buckets: readonly Bucket[]): Bucket[] {
  const out: Bucket[] = [];
  for (let i = 0; i < buckets.length; i += 2) out.push(i + 1 < buckets.length ? mergeBuckets(buckets[i]!, buckets[i + 1]!) : buckets[i]!);
  return out;
}

/**
 * Feeds points (in order) into a series; returns the new state (the input is not changed).
 * Values must be finite (callers validate: see metrics.ts `checkMetricValue`).
 * @param capacity buckets kept (default {@link HISTORY_LIMITS.bucketsPerSeries}); at least 2.
 */
export function addPoints(series: SeriesState, points: readonly MetricPoint[], capacity: number = HISTORY_LIMITS.bucketsPerSeries): SeriesState {
  let { width, count } = series;
  let buckets = series.buckets.slice();
  for (const p of points) {
    const last = buckets[buckets.length - 1];
    if (last && last[0]! < width) buckets[buckets.length - 1] = mergeBuckets(last, bucketOf(p));
    else buckets.push(bucketOf(p));
    count++;
    if (buckets.length > capacity) {
      buckets = halve(buckets);
      width *= 2;
    }
  }
  return { width, buckets, count };
}

/** A bucket's distinct points in arrival order (first, then min and max in step order, then last). */
function pointsOf(b: Bucket): MetricPoint[] {
  if (b[0] === 1) return [pointAt(b, FIRST)];
  const inner = [MIN, MAX].sort((x, y) => b[x]! - b[y]! || x - y);
  const slots = [FIRST, ...inner, LAST];
  const out: MetricPoint[] = [];
  for (const at of slots) {
    const p = pointAt(b, at);
    const prev = out[out.length - 1];
    if (prev && prev.step === p.step && prev.value === p.value && prev.timestamp === p.timestamp) continue;
    out.push(p);
  }
  return out;
}

/**
 * The series as at most `maxPoints` points in arrival order: its first and
 * last point, its global minimum and maximum, and between them the first,
 * minimum, maximum and last point of every bucket (neighbouring buckets
 * merged until they fit). All points when they fit.
 * @throws DomainError BAD_USER_INPUT (field `maxPoints`) unless 4 ≤ maxPoints ≤ 2000.
 */
export function readSeries(series: SeriesState, maxPoints: number): MetricPoint[] {
  if (!Number.isInteger(maxPoints) || maxPoints < HISTORY_LIMITS.minReadPoints || maxPoints > HISTORY_LIMITS.maxReadPoints)
    throw badInput('maxPoints', `maxPoints must be a whole number from ${HISTORY_LIMITS.minReadPoints} to ${HISTORY_LIMITS.maxReadPoints}, got ${maxPoints}`);
  let buckets = series.buckets;
  for (;;) {
    const points = buckets.flatMap(pointsOf);
    if (points.length <= maxPoints) return points;
    buckets = halve(buckets);
  }
}
