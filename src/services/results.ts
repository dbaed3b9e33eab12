/**
 * What jobs produce, on behalf of a viewer: item results (reportItems,
 * itemResults), steps (reportStep), log lines (appendLogs), gauges
 * (reportProgress with metrics) and the metric history behind charts
 * (metricSeries).
 *
 * Each write is first one atomic commit of the job through the shared write
 * path (delivery/job-writer.ts: the counters, summaries, steps or log bucket
 * change together with the one event that carries them on the job's stream).
 * Two projections of the committed events follow, each a job-owned topic log
 * removed with the job when retention ends (domain/topics.ts `jobOwnedTopics`):
 * - `items:<jobId>`: one event per item result, so its history holds the
 *   job's newest RUNWATCH_HISTORY results (what itemResults pages);
 * - `metrics:<jobId>`: no events; its state is the downsampled history of
 *   every series (domain/metric-history.ts), fed with every value before
 *   conflation: gauges, item metrics and latencies, and training loss,
 *   learning rate and validation results (TrainingService feeds the same
 *   delivery/metric-history.ts store).
 * They are written right after the commit rather than by a projector of the
 * change log (backends ChangeFeed): the change log carries the job record,
 * not the events' payloads (item results), and conflated reports (gauges
 * inside the PROGRESS interval) are not in it at all, while the history must
 * see every value. A projection that fails (Redis away between the two
 * writes) is reported to `onError` and the mutation still succeeds: the job's
 * own commit stands and a retry would count the items twice; the history or
 * the kept results then miss that batch.
 */
import { canSeeJob, type Viewer } from '../auth/tokens.js';
import type { BusEvent } from '../backends/types.js';
import { badInput, notFound } from '../domain/errors.js';
import type { ItemResult, ItemResultInput } from '../domain/items.js';
import {
  applyItems,
  applyLogs,
  applyProgress,
  applyStep,
  viewJob,
  type JobChange,
  type JobRecord,
  type JobView,
  type LogLineInput,
  type ProgressReport,
} from '../domain/job.js';
import { DEFAULT_LOG_LIMITS, type LogLimits } from '../domain/log-limit.js';
import type { MetricPoint, NamedPoint } from '../domain/metric-history.js';
import { LATENCY_METRIC } from '../domain/metrics.js';
import type { StepReport } from '../domain/steps.js';
import { itemsTopic } from '../domain/topics.js';
import type { Infra } from '../delivery/job-writer.js';
import { MetricHistoryStore } from '../delivery/metric-history.js';

/** An item result as stored in `items:<jobId>`: the result at its offset in that log. */
type StoredItem = ItemResult & BusEvent;

/** A page of {@link ResultsService.itemResults}, newest first. */
export interface ItemPage {
  /** Each result with the cursor to pass as `after` for the (older) results after it. */
  edges: { cursor: string; node: ItemResult }[];
  hasNextPage: boolean;
}

/** Settings of {@link ResultsService}: the per-job log limits (default 200 lines at once, 50 per second). */
export interface ResultsServiceOptions extends Partial<LogLimits> {
  onError?: (message: string, error: unknown) => void;
}

/** Most item results per itemResults page; default 20. */
export const MAX_ITEMS_PAGE = 100;

/** Item results, steps, logs, gauges and metric history of jobs, for resolvers (see the module comment). */
export class ResultsService {
  private readonly logLimits: LogLimits;
  private readonly history: MetricHistoryStore;

  constructor(
    private readonly infra: Infra,
    private readonly opts: ResultsServiceOptions = {},
  ) {
    this.logLimits = {
      logRatePerSecond: opts.logRatePerSecond ?? DEFAULT_LOG_LIMITS.logRatePerSecond,
      logBurst: opts.logBurst ?? DEFAULT_LOG_LIMITS.logBurst,
    };
    this.history = new MetricHistoryStore(infra.backend.logs, opts.onError);
  }

  /** Commits a domain change to a job the viewer can see. @throws DomainError NOT_FOUND and whatever `apply` throws; nothing changes then. */
  private async commit(viewer: Viewer, jobId: string, apply: (job: JobRecord, nowMs: number) => JobChange): Promise<JobChange> {
    const change = await this.infra.writer.change(jobId, (job, now) => {
      if (!canSeeJob(viewer, job)) throw notFound(jobId);
      return apply(job, now);
    });
    return change!;
  }

  /** @throws DomainError NOT_FOUND unless the viewer can see the job. */
  private async assertVisible(viewer: Viewer, jobId: string): Promise<void> {
    const job = await this.infra.backend.store.get(jobId);
    if (!job || !canSeeJob(viewer, job)) throw notFound(jobId);
  }

  /**
   * Reports a batch of item results as one commit (domain `applyItems`):
   * counters, summaries and one ITEM_RESULTS event; then keeps the results
   * for itemResults and feeds their metrics and latencies (x: the item's
   * `seq`) into the history.
   * @throws DomainError NOT_FOUND, CONFLICT (finished), BAD_USER_INPUT; nothing changes on error.
   */
  async reportItems(viewer: Viewer, jobId: string, items: readonly ItemResultInput[]): Promise<JobView> {
    const change = await this.commit(viewer, jobId, (job, now) => applyItems(job, items, now));
    const results = change.events.find((e) => e.type === 'ITEM_RESULTS')?.items ?? [];
    try {
      await this.infra.backend.logs.append<{ kept: number }, StoredItem>(itemsTopic(jobId), (head) => ({
        state: { kept: (head.state?.kept ?? 0) + results.length },
        events: results.map((r, i) => ({ ...r, offset: head.offset + i + 1 })),
      }));
    } catch (error) {
      this.opts.onError?.(`keeping the item results of job ${jobId} failed`, error);
    }
    const points: NamedPoint[] = [];
    for (const r of results) {
      if (r.latencySeconds !== null) points.push({ name: LATENCY_METRIC, step: r.seq, value: r.latencySeconds, timestamp: r.timestamp });
      for (const m of r.metrics) points.push({ name: m.name, step: r.seq, value: m.value, timestamp: r.timestamp });
    }
    await this.history.feed(jobId, points);
    return viewJob(change.job, this.infra.clock());
  }

  /**
   * A progress report (domain `applyProgress`, as JobService.report) whose
   * gauges (`metrics`) also feed the history: x is the gauge's count of values so far.
   * @throws DomainError NOT_FOUND, CONFLICT, BAD_USER_INPUT; nothing changes on error.
   */
  async reportProgress(viewer: Viewer, jobId: string, report: ProgressReport): Promise<JobView> {
    const change = await this.commit(viewer, jobId, (job, now) => applyProgress(job, report, now, this.infra.writer.intervalMs));
    if (report.metrics?.length) {
      const counts = new Map((change.job.metrics ?? []).map((s) => [s.name, s.count]));
      const at = change.job.updatedAt;
      await this.history.feed(
        jobId,
        report.metrics.map((m) => ({ name: m.name, step: counts.get(m.name) ?? 1, value: m.value, timestamp: at })),
      );
    }
    return viewJob(change.job, this.infra.clock());
  }

  /** Reports one step (domain `applyStep`). @throws DomainError NOT_FOUND, CONFLICT, BAD_USER_INPUT. */
  async reportStep(viewer: Viewer, jobId: string, report: StepReport): Promise<JobView> {
    const change = await this.commit(viewer, jobId, (job, now) => applyStep(job, report, now));
    return viewJob(change.job, this.infra.clock());
  }

  /**
   * Appends log lines to a job's stream through its rate limit (domain `applyLogs`).
   * @returns the lines that passed (the others are counted in the next passing line's `droppedBefore`).
   * @throws DomainError NOT_FOUND, CONFLICT (finished), BAD_USER_INPUT.
   */
  async appendLogs(viewer: Viewer, jobId: string, lines: readonly LogLineInput[]): Promise<number> {
    let accepted = 0;
    await this.commit(viewer, jobId, (job, now) => {
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
    await this.assertVisible(viewer, jobId);
    const { events } = await this.infra.backend.logs.history<StoredItem>(itemsTopic(jobId), 0);
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
   * The history of one series of a job: at most `maxPoints` points spanning
   * its first to its last value and keeping its extremes
   * (domain/metric-history.ts); [] for a name with no values.
   * @throws DomainError NOT_FOUND (missing or another tenant's job), BAD_USER_INPUT (maxPoints outside 4..2000).
   */
  async metricSeries(viewer: Viewer, jobId: string, name: string, maxPoints: number): Promise<MetricPoint[]> {
    await this.assertVisible(viewer, jobId);
    return this.history.read(jobId, name, maxPoints);
  }
}
