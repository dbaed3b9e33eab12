/**
 * Job operations on behalf of a viewer: the thin layer between resolvers,
 * the pure domain and a backend. It checks tenancy (another tenant's job is
 * NOT_FOUND), runs domain changes through the shared write path
 * (delivery/job-writer.ts: the store's atomic update and the trailing-edge
 * flush of conflated PROGRESS), and opens runProgress streams through the
 * `job:` stream kind. What reacts to job changes are projectors
 * (backends ChangeFeed), not callbacks of this service.
 */
import { createHash } from 'node:crypto';
import { canSeeJob, type Viewer } from '../auth/tokens.js';
import type { JobFilter, ListPosition } from '../backends/types.js';
import { decodeCursor } from '../domain/cursor.js';
import { conflict, notFound } from '../domain/errors.js';
import {
  applyProgress,
  createJob,
  finishJob,
  isTerminal,
  restoreJob,
  rotateEpoch,
  setPaused,
  snapshotEvent,
  viewJob,
  type JobEvent,
  type JobRecord,
  type JobView,
  type NewJobInput,
  type ProgressReport,
} from '../domain/job.js';
import { newEpoch, newJobId } from '../domain/ids.js';
import { JOB_PREFIX, jobTopic } from '../domain/topics.js';
import type { Infra } from '../delivery/job-writer.js';
import { queuePolicy, type LiveStream, type StreamHooks, type StreamTransport } from '../delivery/live-stream.js';
import type { StreamKind } from '../delivery/stream-kinds.js';
import { RESTARTING, StreamRegistry } from '../delivery/topic-stream.js';

/**
 * How a job stream treats its events (the event half of its LiveStreamPolicy):
 * one object for every stream, method syntax so that no per-stream closures
 * are made (tsx names each arrow in an object literal with `defineProperty`,
 * which gives every such closure a property dictionary of its own).
 */
const JOB_EVENTS = {
  offsetOf(e: JobEvent): number {
    return e.offset;
  },
  isConflatable(e: JobEvent): boolean {
    return e.type === 'PROGRESS';
  },
  isFinal(e: JobEvent): boolean {
    return isTerminal(e.job.status) && e.type !== 'PROGRESS';
  },
  isReset(e: JobEvent): boolean {
    return e.type === 'SNAPSHOT';
  },
};

/** The opt-in event types of a job stream (`runProgress(items:, logs:)`); both default to false. */
export interface StreamInclude {
  /** ITEM_RESULTS events (a batch of item results each). */
  items?: boolean;
  /** LOG events (log lines). */
  logs?: boolean;
}

/** The filter of a stream's opt-in events: one of four shared predicates (none made per subscriber); undefined: every event passes. */
function eventFilter(include: StreamInclude): ((e: JobEvent) => boolean) | undefined {
  return EVENT_FILTERS[(include.items ? 1 : 0) + (include.logs ? 2 : 0)];
}

const EVENT_FILTERS: readonly (((e: JobEvent) => boolean) | undefined)[] = [
  (e) => e.type !== 'ITEM_RESULTS' && e.type !== 'LOG',
  (e) => e.type !== 'LOG',
  (e) => e.type !== 'ITEM_RESULTS',
  undefined,
];

/** Settings of {@link JobService}. */
export interface JobServiceOptions {
  /** Subscriber queue length above which PROGRESS events conflate (events). */
  conflateAbove?: number;
  /** Most events queued for one lagging subscriber before it is dropped. */
  maxQueued?: number;
  onError?: (message: string, error: unknown) => void;
  /** Observability callbacks of every stream (metrics); each optional, called synchronously. */
  hooks?: StreamHooks;
}

/** A page of {@link JobService.list}. */
export interface JobPage {
  jobs: JobView[];
  hasNextPage: boolean;
}

export class JobService {
  private readonly streams = new StreamRegistry<JobEvent>();
  /** The `job:` stream kind: runProgress subscriptions and the reconnect catch-up of job topics. */
  private readonly kind: StreamKind<JobEvent, JobRecord>;

  /** Job streams (runProgress subscriptions) open on this instance now. */
  get activeStreams(): number {
    return this.streams.size;
  }

  /** Jobs with a conflation flush timer pending on this instance (at most one each; diagnostics, tests). */
  get pendingFlushes(): number {
    return this.infra.writer.pendingFlushes;
  }

  constructor(
    private readonly infra: Infra,
    private readonly opts: JobServiceOptions,
  ) {
    const store = infra.backend.store;
    const idOf = (topic: string) => topic.slice(JOB_PREFIX.length);
    this.kind = infra.kinds.register<JobEvent, JobRecord>({
      prefix: JOB_PREFIX,
      events: JOB_EVENTS,
      readHead: (topic) => store.get(idOf(topic)),
      positionOf: (job) => job,
      positionOfEvent: (e) => decodeCursor(e.cursor),
      history: (topic, afterOffset) => store.history(idOf(topic), afterOffset),
      freshStart: (_topic, job) => [snapshotEvent(job, infra.clock())],
      isFinished: (job) => isTerminal(job.status),
      repair: (topic, last) => this.repair(idOf(topic), last),
    });
  }

  /**
   * Before a job topic catches up after the bus reconnected: when Redis lost
   * the job (restarted empty), the job is restored from the newest event seen,
   * under a new epoch; when the job went back in time (Redis restored an older
   * state), its epoch is rotated so old cursors cannot resume into the new
   * timeline. The catch-up then delivers the events stored after the newest
   * one seen, or a SNAPSHOT (which resets subscribers) when the epoch changed
   * or history does not cover the gap (delivery/stream-kinds.ts).
   */
  private async repair(jobId: string, last: JobEvent | null): Promise<void> {
    const store = this.infra.backend.store;
    let job = await store.get(jobId);
    if (!job && last) {
      await store.restore(restoreJob(last, newEpoch()));
      job = await store.get(jobId);
    }
    if (job && last) {
      const seen = decodeCursor(last.cursor);
      if (seen.epoch === job.epoch && job.offset < seen.offset) {
        await store.update(jobId, (current) => (current.epoch === seen.epoch && current.offset < seen.offset ? rotateEpoch(current, newEpoch()) : null));
      }
    }
  }

  private now(): number {
    return this.infra.clock();
  }

  /**
   * Creates a QUEUED job in the viewer's tenant. A reused `idempotencyKey` with
   * the same input returns the first job.
   * @throws DomainError BAD_USER_INPUT (invalid input), CONFLICT (key reused with other input).
   */
  async create(viewer: Viewer, input: NewJobInput & { idempotencyKey?: string | null }): Promise<JobView> {
    const now = this.now();
    const job = createJob(input, { id: newJobId(now), epoch: newEpoch(), tenant: viewer.tenant, ownerId: viewer.userId }, now);
    const key = input.idempotencyKey ?? undefined;
    const fingerprint = createHash('sha256')
      .update(JSON.stringify([job.name, job.kind, job.total, job.metadata]))
      .digest('base64url');
    const result = await this.infra.backend.store.create(job, key ? { key, fingerprint } : undefined);
    if (!result.created && result.fingerprint !== fingerprint)
      throw conflict(`idempotencyKey ${JSON.stringify(key)} was already used with other input`);
    return viewJob(result.job, this.now());
  }

  /** The job as the viewer sees it, or null when missing or not the viewer's. */
  async get(viewer: Viewer, id: string): Promise<JobView | null> {
    const job = await this.getRecord(viewer, id);
    return job && viewJob(job, this.now());
  }

  private async getRecord(viewer: Viewer, id: string): Promise<JobRecord | null> {
    const job = await this.infra.backend.store.get(id);
    return job && canSeeJob(viewer, job) ? job : null;
  }

  /** A newest-first page of the viewer's tenant's jobs (a job-view token sees only its job). */
  async list(viewer: Viewer, filter: JobFilter, first: number, after: ListPosition | null): Promise<JobPage> {
    if (viewer.jobId !== null) {
      const job = after ? null : await this.getRecord(viewer, viewer.jobId);
      const matches =
        job && (!filter.status?.length || filter.status.includes(job.status)) && (!filter.kind?.length || filter.kind.includes(job.kind));
      return { jobs: matches && first > 0 ? [viewJob(job, this.now())] : [], hasNextPage: false };
    }
    const page = await this.infra.backend.store.list(viewer.tenant, filter, first, after);
    const now = this.now();
    return { jobs: page.jobs.map((j) => viewJob(j, now)), hasNextPage: page.hasNextPage };
  }

  /**
   * Applies a progress report (see domain `applyProgress`).
   * @throws DomainError NOT_FOUND, CONFLICT, BAD_USER_INPUT; nothing changes on error.
   */
  report(viewer: Viewer, jobId: string, report: ProgressReport): Promise<JobView> {
    return this.change(viewer, jobId, (job, now) => applyProgress(job, report, now, this.infra.writer.intervalMs));
  }

  /** Completes, fails or cancels a job. @throws DomainError NOT_FOUND, CONFLICT, BAD_USER_INPUT. */
  finish(viewer: Viewer, jobId: string, outcome: 'COMPLETED' | 'FAILED' | 'CANCELLED', message: string | null): Promise<JobView> {
    return this.change(viewer, jobId, (job, now) => finishJob(job, outcome, message, now));
  }

  /** Pauses or resumes a job. @throws DomainError NOT_FOUND, CONFLICT. */
  setPaused(viewer: Viewer, jobId: string, paused: boolean, message: string | null): Promise<JobView> {
    return this.change(viewer, jobId, (job, now) => setPaused(job, paused, message, now));
  }

  private async change(viewer: Viewer, jobId: string, apply: (job: JobRecord, nowMs: number) => ReturnType<typeof applyProgress>): Promise<JobView> {
    const change = await this.infra.writer.change(jobId, (job, now) => {
      if (!canSeeJob(viewer, job)) throw notFound(jobId);
      return apply(job, now);
    });
    return viewJob(change!.job, this.now());
  }

  /**
   * Opens a job's event stream for `runProgress`: a SNAPSHOT (or, with `after`,
   * the events after that cursor from history), then live events in offset
   * order; the stream ends after the terminal event. The topic subscription
   * opens before state is read, so nothing published in between is lost.
   * ITEM_RESULTS and LOG events are left out unless `include` asks for them
   * (a progress bar stays cheap), live and replayed alike.
   * @throws DomainError NOT_FOUND (missing or another tenant's), BAD_USER_INPUT (bad cursor).
   */
  async openStream(
    viewer: Viewer,
    jobId: string,
    after: string | null,
    transport: StreamTransport = {},
    include: StreamInclude = {},
  ): Promise<LiveStream<JobEvent>> {
    const position = after ? decodeCursor(after) : null;
    return this.infra.kinds.open(this.kind, {
      topic: jobTopic(jobId),
      accept: eventFilter(include),
      after: position,
      queue: queuePolicy(this.opts, transport),
      registry: this.streams,
      readHead: async () => {
        const job = await this.getRecord(viewer, jobId);
        if (!job) throw notFound(jobId);
        return job;
      },
      onReplayed: (count) => this.opts.hooks?.onReplayed?.(count),
    });
  }

  /**
   * Shutdown: stops conflation timers and ends every open stream with
   * SERVICE_UNAVAILABLE ("server restarting"), so SSE clients see an error
   * (not a normal completion) and resume from their cursor elsewhere.
   */
  close(): void {
    this.infra.writer.close();
    this.streams.closeAll(RESTARTING);
  }
}
