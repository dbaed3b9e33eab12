/**
 * Job operations on behalf of a viewer: the thin layer between resolvers,
 * the pure domain and a backend. It checks tenancy (another tenant's job is
 * NOT_FOUND), runs domain changes through the store's atomic update, and
 * owns the trailing-edge flush of conflated PROGRESS (one timer per job with
 * a pending flush, on the instance that deferred it — never per subscriber).
 */
import { createHash } from 'node:crypto';
import { canSeeJob, type Viewer } from '../auth/tokens.js';
import { decodeCursor } from '../domain/cursor.js';
import { conflict, DomainError, isUnavailable, notFound } from '../domain/errors.js';
import {
  applyProgress,
  createJob,
  finishJob,
  flushProgress,
  isTerminal,
  restoreJob,
  rotateEpoch,
  setPaused,
  snapshotEvent,
  viewJob,
  type JobChange,
  type JobEvent,
  type JobRecord,
  type JobView,
  type NewJobInput,
  type ProgressReport,
} from '../domain/job.js';
import type { Backend, JobFilter, ListPosition } from '../backends/types.js';
import { jobTopic } from '../backends/types.js';
import { queuePolicy, type LiveStream, type LiveStreamPolicy, type StreamHooks, type StreamTransport } from '../delivery/live-stream.js';
import { catchUpEvents } from '../delivery/catch-up.js';
import { openTopicStream, StreamRegistry } from '../delivery/topic-stream.js';
import { newEpoch, newJobId } from '../domain/ids.js';
import type { Clock } from './clock.js';

const JOB_TOPIC_PREFIX = jobTopic('');
/** A job stream's fresh start (its reset rule, for streams and for the bus's catch-up). */
const isSnapshot = (e: JobEvent) => e.type === 'SNAPSHOT';

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
  isReset: isSnapshot,
} satisfies Partial<LiveStreamPolicy<JobEvent>>;

/**
 * Called after every committed change made through a {@link JobService}
 * (report, finish, pause/resume) with the record before and after it.
 * Awaited before the mutation returns; a throw is reported to `onError` and
 * the change stands.
 */
export type JobChangeListener = (before: JobRecord, after: JobRecord) => Promise<void> | void;

/** The opt-in event types of a job stream (`runProgress(items:, logs:)`); both default to false. */
export interface StreamInclude {
  /** ITEM_RESULTS events (a batch of item results each). */
  items?: boolean;
  /** LOG events (log lines). */
  logs?: boolean;
}

/** The filter of a stream's opt-in events, one of four shared predicates (none per subscriber); undefined: every event passes. */
function eventFilter(include: StreamInclude): ((e: JobEvent) => boolean) | undefined {
  return EVENT_FILTERS[(include.items ? 1 : 0) + (include.logs ? 2 : 0)];
}

const EVENT_FILTERS: readonly (((e: JobEvent) => boolean) | undefined)[] = [
  (e) => e.type !== 'ITEM_RESULTS' && e.type !== 'LOG',
  (e) => e.type !== 'LOG',
  (e) => e.type !== 'ITEM_RESULTS',
  undefined,
];

/** Message streams end with on shutdown (code SERVICE_UNAVAILABLE). */
export const RESTARTING = 'server restarting: resubscribe with `after` set to your last cursor';

/** Settings of {@link JobService}. */
export interface JobServiceOptions {
  /** RUNWATCH_PROGRESS_HZ: most PROGRESS events per second per job. */
  progressHz: number;
  /** Subscriber queue length above which PROGRESS events conflate (events). */
  conflateAbove?: number;
  /** Most events queued for one lagging subscriber before it is dropped. */
  maxQueued?: number;
  onError?: (message: string, error: unknown) => void;
  /** Observability callbacks of every stream (metrics); each optional, called synchronously. */
  hooks?: StreamHooks;
}

export type { StreamHooks, StreamTransport } from '../delivery/live-stream.js';

/** A page of {@link JobService.list}. */
export interface JobPage {
  jobs: JobView[];
  hasNextPage: boolean;
}

export class JobService {
  private readonly intervalMs: number;
  private readonly flushTimers = new Map<string, NodeJS.Timeout>();
  private readonly streams = new StreamRegistry<JobEvent>();
  private readonly changeListeners: JobChangeListener[] = [];

  /** Job streams (runProgress subscriptions) open on this instance now. */
  get activeStreams(): number {
    return this.streams.size;
  }

  /** Jobs with a conflation flush timer pending on this instance (at most one each; diagnostics, tests). */
  get pendingFlushes(): number {
    return this.flushTimers.size;
  }

  constructor(
    private readonly backend: Backend,
    private readonly clock: Clock,
    private readonly opts: JobServiceOptions,
  ) {
    this.intervalMs = 1000 / opts.progressHz;
    backend.bus.onReconnect<JobEvent>(JOB_TOPIC_PREFIX, (topic, last) => this.catchUp(topic, last), isSnapshot);
  }

  /**
   * Registers a listener of committed job changes (see {@link JobChangeListener}):
   * services that keep state derived from jobs (account activity, training
   * streams) register themselves when they are made. Listeners run
   * concurrently, after the change is stored and before the mutation returns,
   * on the instance that made the change (once per change, not once per
   * instance). @returns a function that removes the listener.
   */
  onChange(listener: JobChangeListener): () => void {
    this.changeListeners.push(listener);
    return () => {
      const i = this.changeListeners.indexOf(listener);
      if (i >= 0) this.changeListeners.splice(i, 1);
    };
  }

  /**
   * Catch-up of one job topic after the bus reconnected (see EventBus.onReconnect
   * and delivery/catch-up.ts): first, when Redis lost the job (restarted
   * empty), the job is restored from the newest event seen, under a new epoch;
   * when the job went back in time (Redis restored an older state), its epoch
   * is rotated so old cursors cannot resume into the new timeline. Then the
   * events stored after the newest one seen, or a SNAPSHOT (which resets
   * subscribers) when the epoch changed or history does not cover the gap.
   */
  private async catchUp(topic: string, last: JobEvent | null): Promise<JobEvent[]> {
    const jobId = topic.slice(JOB_TOPIC_PREFIX.length);
    const store = this.backend.store;
    let job = await store.get(jobId);
    if (!job && last) {
      await store.restore(restoreJob(last, newEpoch()));
      job = await store.get(jobId);
    }
    if (job && last) {
      const seen = decodeCursor(last.cursor);
      if (seen.epoch === job.epoch && job.offset < seen.offset) {
        const rotated = await store.update(jobId, (current) =>
          current.epoch === seen.epoch && current.offset < seen.offset ? rotateEpoch(current, newEpoch()) : null,
        );
        job = rotated?.job ?? (await store.get(jobId)) ?? job;
      }
    }
    const head = job;
    return catchUpEvents<JobEvent, JobRecord>(last, {
      readHead: async () => head,
      positionOf: (j) => j,
      history: (afterOffset) => store.history(jobId, afterOffset),
      freshStart: (j) => [snapshotEvent(j, this.clock())],
    });
  }

  /**
   * Creates a QUEUED job in the viewer's tenant. A reused `idempotencyKey` with
   * the same input returns the first job.
   * @throws DomainError BAD_USER_INPUT (invalid input), CONFLICT (key reused with other input).
   */
  async create(viewer: Viewer, input: NewJobInput & { idempotencyKey?: string | null }): Promise<JobView> {
    const now = this.clock();
    const job = createJob(input, { id: newJobId(now), epoch: newEpoch(), tenant: viewer.tenant, ownerId: viewer.userId }, now);
    const key = input.idempotencyKey ?? undefined;
    const fingerprint = createHash('sha256')
      .update(JSON.stringify([job.name, job.kind, job.total, job.metadata]))
      .digest('base64url');
    const result = await this.backend.store.create(job, key ? { key, fingerprint } : undefined);
    if (!result.created && result.fingerprint !== fingerprint)
      throw conflict(`idempotencyKey ${JSON.stringify(key)} was already used with other input`);
    return viewJob(result.job, this.clock());
  }

  /** The job as the viewer sees it, or null when missing or not the viewer's. */
  async get(viewer: Viewer, id: string): Promise<JobView | null> {
    const job = await this.getRecord(viewer, id);
    return job && viewJob(job, this.clock());
  }

  private async getRecord(viewer: Viewer, id: string): Promise<JobRecord | null> {
    const job = await this.backend.store.get(id);
    return job && canSeeJob(viewer, job) ? job : null;
  }

  /** A newest-first page of the viewer's tenant's jobs (a job-view token sees only its job). */
  async list(viewer: Viewer, filter: JobFilter, first: number, after: ListPosition | null): Promise<JobPage> {
    if (viewer.jobId !== null) {
      const job = after ? null : await this.getRecord(viewer, viewer.jobId);
      const matches =
        job && (!filter.status?.length || filter.status.includes(job.status)) && (!filter.kind?.length || filter.kind.includes(job.kind));
      return { jobs: matches && first > 0 ? [viewJob(job, this.clock())] : [], hasNextPage: false };
    }
    const page = await this.backend.store.list(viewer.tenant, filter, first, after);
    const now = this.clock();
    return { jobs: page.jobs.map((j) => viewJob(j, now)), hasNextPage: page.hasNextPage };
  }

  /**
   * Applies a progress report (see domain `applyProgress`).
   * @throws DomainError NOT_FOUND, CONFLICT, BAD_USER_INPUT; nothing changes on error.
   */
  report(viewer: Viewer, jobId: string, report: ProgressReport): Promise<JobView> {
    return this.change(viewer, jobId, (job, now) => applyProgress(job, report, now, this.intervalMs));
  }

  /** {@link report}, returning the committed change (for services that derive more from it: metric history). */
  reportChange(viewer: Viewer, jobId: string, report: ProgressReport): Promise<JobChange> {
    return this.commit(viewer, jobId, (job, now) => applyProgress(job, report, now, this.intervalMs));
  }

  /** Completes, fails or cancels a job. @throws DomainError NOT_FOUND, CONFLICT, BAD_USER_INPUT. */
  finish(viewer: Viewer, jobId: string, outcome: 'COMPLETED' | 'FAILED' | 'CANCELLED', message: string | null): Promise<JobView> {
    return this.change(viewer, jobId, (job, now) => finishJob(job, outcome, message, now));
  }

  /** Pauses or resumes a job. @throws DomainError NOT_FOUND, CONFLICT. */
  setPaused(viewer: Viewer, jobId: string, paused: boolean, message: string | null): Promise<JobView> {
    return this.change(viewer, jobId, (job, now) => setPaused(job, paused, message, now));
  }

  private async change(viewer: Viewer, jobId: string, apply: (job: JobRecord, nowMs: number) => JobChange): Promise<JobView> {
    const change = await this.commit(viewer, jobId, apply);
    return viewJob(change.job, this.clock());
  }

  /**
   * Applies a pure domain change to a job the viewer can see, as one atomic
   * commit (record, history, publication), then schedules the conflation
   * flush it owes and notifies the change listeners. For services whose
   * changes are more job changes (item results, steps, logs: services/results.ts).
   * @returns the committed change (the new record and its events).
   * @throws DomainError NOT_FOUND (missing or another tenant's job) and whatever `apply` throws; nothing changes then.
   */
  async commit(viewer: Viewer, jobId: string, apply: (job: JobRecord, nowMs: number) => JobChange): Promise<JobChange> {
    let before: JobRecord | null = null;
    const result = await this.backend.store.update(jobId, (job) => {
      if (!canSeeJob(viewer, job)) throw notFound(jobId);
      before = job;
      return apply(job, this.clock());
    });
    const change = result!;
    if (change.flushAtMs !== null) this.scheduleFlush(jobId, change.flushAtMs);
    if (before) await this.notifyChange(jobId, before, change.job);
    return change;
  }

  private async notifyChange(jobId: string, before: JobRecord, after: JobRecord): Promise<void> {
    await Promise.all(
      this.changeListeners.map(async (listener) => {
        try {
          await listener(before, after);
        } catch (error) {
          this.opts.onError?.(`job change listener failed for job ${jobId}`, error);
        }
      }),
    );
  }

  /** One timer per job: when it fires, the owed PROGRESS goes out if no newer event already carried the state. */
  private scheduleFlush(jobId: string, atMs: number): void {
    if (this.flushTimers.has(jobId)) return;
    const timer = setTimeout(() => {
      this.flushTimers.delete(jobId);
      this.backend.store
        .update(jobId, (job) => flushProgress(job, this.clock(), this.intervalMs))
        .then((change) => {
          if (change?.flushAtMs != null) this.scheduleFlush(jobId, change.flushAtMs);
        })
        .catch((error) => {
          // The job is gone or finished: nothing is owed. Redis away: try again later.
          if (error instanceof DomainError && error.code !== 'SERVICE_UNAVAILABLE') return;
          if (!isUnavailable(error)) this.opts.onError?.(`conflation flush of job ${jobId} failed; retrying`, error);
          this.scheduleFlush(jobId, this.clock() + this.intervalMs);
        });
    }, Math.max(0, atMs - this.clock()));
    timer.unref();
    this.flushTimers.set(jobId, timer);
  }

  /**
   * Opens a job's event stream for `runProgress`: a SNAPSHOT (or, with `after`,
   * the events after that cursor from history), then live events in offset
   * order; the stream ends after the terminal event. The topic subscription
   * opens before state is read, so nothing published in between is lost.
   * ITEM_RESULTS and LOG events are left out unless `include` asks for them
   * (a progress bar stays cheap): live ones before they are queued, replayed
   * ones as history is read.
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
    const accept = eventFilter(include);
    const history = (afterOffset: number) => this.backend.store.history(jobId, afterOffset);
    return openTopicStream<JobEvent, JobRecord>({
      source: { bus: this.backend.bus, topic: jobTopic(jobId), accept },
      policy: { ...JOB_EVENTS, ...queuePolicy(this.opts, transport) },
      registry: this.streams,
      readHead: async () => {
        const job = await this.getRecord(viewer, jobId);
        if (!job) throw notFound(jobId);
        return job;
      },
      freshStart: (job) => [snapshotEvent(job, this.clock())],
      resume: {
        after: position,
        positionOf: (job) => job,
        history: accept ? async (afterOffset) => {
          const read = await history(afterOffset);
          return { events: read.events.filter(accept), covered: read.covered };
        } : history,
        isFinished: (job) => isTerminal(job.status),
        onReplayed: (count) => this.opts.hooks?.onReplayed?.(count),
      },
    });
  }

  /**
   * Shutdown: stops conflation timers and ends every open stream with
   * SERVICE_UNAVAILABLE ("server restarting"), so SSE clients see an error
   * (not a normal completion) and resume from their cursor elsewhere.
   */
  close(): void {
    for (const timer of this.flushTimers.values()) clearTimeout(timer);
    this.flushTimers.clear();
    this.streams.closeAll(RESTARTING);
  }
}
