/**
 * What jobs produce, on behalf of a viewer: item results (reportItems,
 * itemResults), steps (reportStep), log lines (appendLogs), gauges
 * (reportProgress with metrics) and the metric history behind charts
 * (metricSeries).
 *
 * Each write is first one atomic commit of the job (JobService.commit: the
 * counters, summaries, steps or log bucket change together with the one
 * event that carries them on the job's stream). Two projections of the
 * committed events follow, each a job-owned topic log removed with the job
 * when retention ends (backends/types.ts `jobLogTopics`):
 * - `items:<jobId>`: one event per item result, so its history holds the
 *   job's newest RUNWATCH_HISTORY results (what itemResults pages);
 * - `metrics:<jobId>`: no events; its state is the downsampled history of
 *   every series (domain/metric-history.ts), fed with every value before
 *   conflation: gauges, item metrics and latencies, and training loss,
 *   learning rate and validation results (TrainingService calls
 *   {@link ResultsService.feedHistory}).
 * A projection that fails (Redis away between the two writes) is reported
 * to `onError` and the mutation still succeeds: the job's own commit stands
 * and a retry would count the items twice; the history then misses those points.
 */
import type { Viewer } from '../auth/tokens.js';
import { itemsTopic, metricsTopic, type Backend, type BusEvent } from '../backends/types.js';
import { badInput, notFound } from '../domain/errors.js';
import type { ItemResult, ItemResultInput } from '../domain/items.js';
import { applyItems, applyLogs, applyStep, viewJob, type JobChange, type JobView, type LogLineInput, type ProgressReport } from '../domain/job.js';
import { DEFAULT_LOG_LIMITS, type LogLimits } from '../domain/log-limit.js';
import { addPoints, emptySeries, readSeries, type MetricPoint, type SeriesState } from '../domain/metric-history.js';
import type { StepReport } from '../domain/steps.js';
import type { Clock } from './clock.js';
import type { JobService } from './jobs.js';

/** A point of a named series, to feed into a job's metric history. */
export interface NamedPoint extends MetricPoint {
  name: string;
}

/** Most series a job's metric history keeps; values of further names are not kept (their summaries still are). */
export const MAX_SERIES_PER_JOB = 64;

/** The state of a job's `metrics:<jobId>` log: one downsampled series per name, in order of first value (pairs, not an object: any name is safe). */
interface HistoryState {
  series: [name: string, series: SeriesState][];
}

/** An item result as stored in `items:<jobId>`: the result at its offset in that log. */
type StoredItem = ItemResult & BusEvent;

/** A page of {@link ResultsService.itemResults}, newest first. */
export interface ItemPage {
  /** Each result with the cursor to pass as `after` for the results after it. */
  edges: { cursor: string; node: ItemResult }[];
  hasNextPage: boolean;
}

/** Settings of {@link ResultsService}. */
export interface ResultsServiceOptions extends Partial<LogLimits> {
  onError?: (message: string, error: unknown) => void;
}

/** Most item results per itemResults page; default 20. */
export const MAX_ITEMS_PAGE = 100;

export class ResultsService {
  private readonly logLimits: LogLimits;

  constructor(
    private readonly backend: Backend,
    private readonly jobs: JobService,
    private readonly clock: Clock,
    private readonly opts: ResultsServiceOptions = {},
  ) {
    this.logLimits = {
      logRatePerSecond: opts.logRatePerSecond ?? DEFAULT_LOG_LIMITS.logRatePerSecond,
      logBurst: opts.logBurst ?? DEFAULT_LOG_LIMITS.logBurst,
    };
  }

  /**
   * Reports a batch of item results as one commit (domain `applyItems`):
   * counters, summaries and one ITEM_RESULTS event; then keeps the results
   * for itemResults and feeds their metrics (x: the item's `seq`) and
   * latencies into the history.
   * @throws DomainError NOT_FOUND, CONFLICT (finished), BAD_USER_INPUT; nothing changes on error.
   */
  async reportItems(viewer: Viewer, jobId: string, items: readonly ItemResultInput[]): Promise<JobView> {
    const change = await this.jobs.commit(viewer, jobId, (job, now) => applyItems(job, items, now));
    const results = change.events.find((e) => e.type === 'ITEM_RESULTS')?.items ?? [];
    await this.project(jobId, 'item results', async () => {
      await this.backend.logs.append<{ kept: number }, StoredItem>(itemsTopic(jobId), (head) => ({
        state: { kept: (head.state?.kept ?? 0) + results.length },
        events: results.map((r, i) => ({ ...r, offset: head.offset + i + 1 })),
      }));
    });
    const points: NamedPoint[] = [];
    for (const r of results) {
      if (r.latencySeconds !== null) points.push({ name: 'latencySeconds', step: r.seq, value: r.latencySeconds, timestamp: r.timestamp });
      for (const m of r.metrics) points.push({ name: m.name, step: r.seq, value: m.value, timestamp: r.timestamp });
    }
    await this.feedHistory(jobId, points);
    return viewJob(change.job, this.clock());
  }

  /**
   * A progress report (JobService.report) whose gauges (`metrics`) also
   * feed the history: x is the gauge's count of values so far.
   * @throws DomainError as JobService.report.
   */
  async reportProgress(viewer: Viewer, jobId: string, report: ProgressReport): Promise<JobView> {
    const change: JobChange = await this.jobs.reportChange(viewer, jobId, report);
    if (report.metrics?.length) {
      const summaries = new Map((change.job.metrics ?? []).map((s) => [s.name, s]));
      const now = change.job.updatedAt;
      await this.feedHistory(
        jobId,
        report.metrics.map((m) => ({ name: m.name, step: summaries.get(m.name)?.count ?? 1, value: m.value, timestamp: now })),
      );
    }
    return viewJob(change.job, this.clock());
  }

  /** Reports one step (domain `applyStep`). @throws DomainError NOT_FOUND, CONFLICT, BAD_USER_INPUT. */
  async reportStep(viewer: Viewer, jobId: string, report: StepReport): Promise<JobView> {
    const change = await this.jobs.commit(viewer, jobId, (job, now) => applyStep(job, report, now));
    return viewJob(change.job, this.clock());
  }

  /**
   * Appends log lines to a job's stream through its rate limit (domain `applyLogs`).
   * @returns the lines that passed (the others are counted in the next passing line's `droppedBefore`).
   * @throws DomainError NOT_FOUND, CONFLICT (finished), BAD_USER_INPUT.
   */
  async appendLogs(viewer: Viewer, jobId: string, lines: readonly LogLineInput[]): Promise<number> {
    let accepted = 0;
    await this.jobs.commit(viewer, jobId, (job, now) => {
      const result = applyLogs(job, lines, now, this.logLimits);
      accepted = result.accepted;
      return result.change;
    });
    return accepted;
  }

  /**
   * A page of the job's newest item results (at most RUNWATCH_HISTORY are
   * kept per job), newest first; `ok` filters; `after` is a cursor of a
   * previous page's result.
   * @throws DomainError NOT_FOUND (missing or another tenant's job), BAD_USER_INPUT (`first` outside 0..100, a bad `after`).
   */
  async itemResults(viewer: Viewer, jobId: string, args: { first?: number | null; after?: string | null; ok?: boolean | null }): Promise<ItemPage> {
    const first = args.first ?? 20;
    if (!Number.isInteger(first) || first < 0 || first > MAX_ITEMS_PAGE) throw badInput('first', `first must be from 0 to ${MAX_ITEMS_PAGE}`);
    const before = args.after == null ? Infinity : /^[1-9][0-9]{0,15}$/.test(args.after) ? Number(args.after) : NaN;
    if (Number.isNaN(before)) throw badInput('after', 'not a cursor from itemResults');
    if (!(await this.jobs.get(viewer, jobId))) throw notFound(jobId);
    const { events } = await this.backend.logs.history<StoredItem>(itemsTopic(jobId), 0);
    const edges: ItemPage['edges'] = [];
    for (let i = events.length - 1; i >= 0; i--) {
      const { offset, ...node } = events[i]!;
      if (offset >= before || (args.ok != null && node.ok !== args.ok)) continue;
      if (edges.length === first) return { edges, hasNextPage: true };
      edges.push({ cursor: String(offset), node });
    }
    return { edges, hasNextPage: false };
  }

  /**
   * The history of one series of a job, at most `maxPoints` points spanning
   * its first to its last value and keeping its extremes
   * (domain/metric-history.ts); [] for a name with no values.
   * @throws DomainError NOT_FOUND (missing or another tenant's job), BAD_USER_INPUT (maxPoints outside 4..2000).
   */
  async metricSeries(viewer: Viewer, jobId: string, name: string, maxPoints: number): Promise<MetricPoint[]> {
    readSeries(emptySeries(), maxPoints); // validates maxPoints before any read
    if (!(await this.jobs.get(viewer, jobId))) throw notFound(jobId);
    const head = await this.backend.logs.head<HistoryState>(metricsTopic(jobId));
    const series = head?.state?.series.find(([n]) => n === name)?.[1];
    return series ? readSeries(series, maxPoints) : [];
  }

  /**
   * Feeds points into a job's metric history, in order, in one commit of its
   * `metrics:<jobId>` log. Never throws: a failure is reported to `onError`
   * (the values' summaries and events stand; the chart misses these points).
   */
  async feedHistory(jobId: string, points: readonly NamedPoint[]): Promise<void> {
    if (points.length === 0) return;
    await this.project(jobId, 'metric history', async () => {
      await this.backend.logs.append<HistoryState, BusEvent>(metricsTopic(jobId), (head) => {
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
    });
  }

  private async project(jobId: string, what: string, write: () => Promise<void>): Promise<void> {
    try {
      await write();
    } catch (error) {
      this.opts.onError?.(`keeping the ${what} of job ${jobId} failed`, error);
    }
  }
}
