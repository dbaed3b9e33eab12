/**
 * The store of jobs' metric history (what `metricSeries` reads): a job-owned
 * topic log `metrics:<jobId>` (domain/topics.ts) with no events whose state
 * is one downsampled series per name (domain/metric-history.ts). Shared by
 * the services that see metric values (results: gauges, item metrics;
 * training: loss, learning rate, validation), which feed it every value
 * before conflation. It expires with its job (retention), and a feed after
 * the job is gone is refused by the log store (and reported, not thrown).
 */
import type { TopicLogStore } from '../backends/topic-log.js';
import type { BusEvent } from '../backends/types.js';
import { addPoints, emptySeries, readSeries, type MetricPoint, type NamedPoint, type SeriesState } from '../domain/metric-history.js';
import { metricsTopic } from '../domain/topics.js';

/** Most series a job's metric history keeps; values of further names are not kept (their summaries still are). */
export const MAX_SERIES_PER_JOB = 64;

/** The state of a job's `metrics:<jobId>` log: one series per name, in order of first value (pairs, not an object: any name is safe). */
interface HistoryState {
  series: [name: string, series: SeriesState][];
}

/** Reads and feeds jobs' `metrics:<jobId>` logs (see the module comment); stateless, so each service may hold one. */
export class MetricHistoryStore {
  constructor(
    private readonly logs: TopicLogStore,
    private readonly onError: (message: string, error: unknown) => void = () => {},
  ) {}

  /**
   * Feeds points into a job's history, in order, in one commit of its log.
   * Never throws: a failure (Redis away, the job removed) is reported to `onError`;
   * the values' summaries and events stand, the chart misses these points.
   */
  async feed(jobId: string, points: readonly NamedPoint[]): Promise<void> {
    if (points.length === 0) return;
    try {
      await this.logs.append<HistoryState, BusEvent>(metricsTopic(jobId), (head) => {
        const series = new Map(head.state?.series ?? []);
        const byName = new Map<string, MetricPoint[]>();
        for (const { name, ...point } of points) {
          let list = byName.get(name);
          if (!list) {
            if (!series.has(name) && series.size >= MAX_SERIES_PER_JOB) continue;
            byName.set(name, (list = []));
            if (!series.has(name)) series.set(name, emptySeries());
          }
          list.push(point);
        }
        for (const [name, list] of byName) series.set(name, addPoints(series.get(name)!, list));
        return { state: { series: [...series] }, events: [] };
      });
    } catch (error) {
      this.onError(`keeping the metric history of job ${jobId} failed`, error);
    }
  }

  /**
   * One series of a job as at most `maxPoints` points (domain `readSeries`); [] for a name with no values.
   * Tenancy is the caller's check. @throws DomainError BAD_USER_INPUT (maxPoints outside 4..2000).
   */
  async read(jobId: string, name: string, maxPoints: number): Promise<MetricPoint[]> {
    readSeries(emptySeries(), maxPoints); // validates maxPoints before any read
    const head = await this.logs.head<HistoryState>(metricsTopic(jobId));
    const series = head?.state?.series.find(([n]) => n === name)?.[1];
    return series ? readSeries(series, maxPoints) : [];
  }
}
