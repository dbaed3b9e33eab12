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
import { matchesFilter, type JobFilter, type ListPosition } from '../backends/types.js';
import type { JobChangeRecord } from '../domain/changes.js';
import { decodeCursor } from '../domain/cursor.js';
import { conflict, DomainError, notFound } from '../domain/errors.js';
import { applyChild, childDepth, wouldEndParent } from '../domain/groups.js';
import { projectJobList, shownBySnapshot, snapshotUpdate, updateConcerns, type JobListFilter, type JobListState, type JobUpdate } from '../domain/job-list.js';
import {
  applyProgress,
  createJob,
  DEFAULT_STALL_SECONDS,
  finishJob,
  firstStallCheckAt,
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
import { JOB_LIST_PREFIX, JOB_PREFIX, jobListTopic, jobTopic } from '../domain/topics.js';
import type { LogHead } from '../backends/topic-log.js';
import { FilteredStream } from '../delivery/filtered-stream.js';
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
    // The terminal event, or a SNAPSHOT of a finished job; a parent's CHILD event before its own COMPLETED is not.
    return isTerminal(e.job.status) && e.type !== 'PROGRESS' && e.type !== 'CHILD';
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
  /** RUNWATCH_STALL_SECONDS: `heartbeatSeconds` of a job created without one (0: no stall detection); default 300. */
  stallSeconds?: number;
  /** Subscriber queue length above which PROGRESS events conflate (events). */
  conflateAbove?: number;
  /** Most events queued for one lagging subscriber before it is dropped. */
  maxQueued?: number;
  onError?: (message: string, error: unknown) => void;
  /** Observability callbacks of every stream (metrics); each optional, called synchronously. */
  hooks?: StreamHooks;
}

/** How a jobUpdates stream treats its events: one object for every stream (no per-stream closures). */
const JOB_UPDATE_EVENTS = {
  offsetOf(e: JobUpdate): number {
    return e.offset;
  },
  isConflatable(e: JobUpdate): boolean {
    return e.type === 'PROGRESS';
  },
  conflationKey(e: JobUpdate): string {
    return e.job.id;
  },
  isFinal(): boolean {
    return false;
  },
  isReset(e: JobUpdate): boolean {
    return e.type === 'SNAPSHOT';
  },
};

/** Most children read from the job index when a change would end their parent (newest first: with more, the oldest are not checked, and those are the least likely to lag). */
const MAX_CHILDREN_COUNTED = 10_000;

/** Jobs in the first page of a jobUpdates stream (its SNAPSHOT events), newest first. */
export const JOB_UPDATES_SNAPSHOT = 100;

/** Input of {@link JobService.create}. */
export type CreateJobInput = NewJobInput & { idempotencyKey?: string | null; parentId?: string | null };

/** A page of {@link JobService.list}. */
export interface JobPage {
  jobs: JobView[];
  hasNextPage: boolean;
}

export class JobService {
  private readonly streams = new StreamRegistry<JobEvent>();
  /** The `job:` stream kind: runProgress subscriptions and the reconnect catch-up of job topics. */
  private readonly kind: StreamKind<JobEvent, JobRecord>;
  private readonly updateStreams = new StreamRegistry<JobUpdate>();
  /** The `joblist:` stream kind: jobUpdates subscriptions and the reconnect catch-up of tenant job lists. */
  private readonly listKind: StreamKind<JobUpdate, LogHead<JobListState>>;

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
    const logs = infra.backend.logs;
    this.listKind = infra.kinds.register<JobUpdate, LogHead<JobListState>>({
      prefix: JOB_LIST_PREFIX,
      events: JOB_UPDATE_EVENTS,
      readHead: (topic) => logs.head<JobListState>(topic),
      positionOf: (head) => head,
      positionOfEvent: (e) => decodeCursor(e.cursor),
      history: (topic, afterOffset) => logs.history<JobUpdate>(topic, afterOffset),
      // After a reconnect whose gap history no longer covers (more than RUNWATCH_HISTORY updates missed), nothing
      // is replayed: live updates continue, and a client that needs the full picture resubscribes without `after`.
      freshStart: () => [],
    });
    // Parent aggregation: each child change is applied to its parent's record, in the parent's own commit.
    infra.changes.project('groups', (change) => this.projectToParent(change));
    // The tenant's live job list.
    infra.changes.project('joblist', (change) => this.projectToList(change));
  }

  /**
   * The `groups` projector: a child's change moves its parent's aggregate (domain/groups.ts `applyChild`, which
   * skips a change the parent has at that offset or newer: idempotent). A parent removed by retention is skipped.
   * Why a projector and not inside the child's commit: a child and its parent are different records with
   * different keys (no shared hash tag), and many children report concurrently; the parent's compare-and-set
   * commit serializes them, and the per-child offset makes a retried change harmless.
   */
  async projectToParent(change: JobChangeRecord): Promise<void> {
    const parentId = change.job.parentId;
    if (!parentId) return;
    try {
      // A change that would end the parent is committed only once every child created under it (the job index) has
      // reached it: their creations come through their own partitions and may lag. The index is read (a scan of the
      // tenant's index) only then, and the change applied again with it: at most two passes.
      let created: string[] | undefined;
      for (;;) {
        let needsIndex = false;
        await this.infra.writer.change(parentId, (parent, now) => {
          const result = applyChild(parent, change, now, this.infra.writer.intervalMs, created);
          needsIndex = created === undefined && wouldEndParent(parent, result);
          return needsIndex ? null : result;
        });
        if (!needsIndex) return;
        created = (await this.infra.backend.store.list(change.job.tenant, { parentId }, MAX_CHILDREN_COUNTED, null)).jobs.map((job) => job.id);
      }
    } catch (error) {
      if (error instanceof DomainError && error.code === 'NOT_FOUND') return;
      throw error;
    }
  }

  /** The `joblist` projector: one update per job created, status change and PROGRESS, on the tenant's job list log (idempotent by offset). */
  async projectToList(change: JobChangeRecord): Promise<void> {
    await this.infra.backend.logs.append<JobListState, JobUpdate>(jobListTopic(change.job.tenant), (head) => {
      const projected = projectJobList(head.state, head, change, this.now());
      return projected && { state: projected.state, events: [projected.event] };
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
   * How a subscriber joining a shared channel of a job stream starts
   * (LiveStreamPolicy.joinStart): one SNAPSHOT of the job as the channel's
   * newest event `last` left it — the job's state now, as far as the
   * channel's subscribers know — stamped now. It carries `last`'s cursor and
   * offset, so the channel's next event follows it with no gap and no
   * duplicate. Its `job` view is the one `last` carries (made when `last` was).
   */
  private readonly joinStart = (last: JobEvent): JobEvent[] => [
    { cursor: last.cursor, offset: last.offset, runId: last.runId, type: 'SNAPSHOT', timestamp: this.now(), job: last.job, message: null, owner: last.owner },
  ];

  /**
   * Creates a QUEUED job in the viewer's tenant; with `parentId`, a child of that job (a job group, at most
   * MAX_DEPTH levels), whose parent then aggregates it. A reused `idempotencyKey` with the same input returns
   * the first job.
   * @throws DomainError BAD_USER_INPUT (invalid input, tags out of bounds, too deep), NOT_FOUND (no such parent
   *   in the viewer's tenant), CONFLICT (key reused with other input; the parent is finished).
   */
  async create(viewer: Viewer, input: CreateJobInput): Promise<JobView> {
    const now = this.now();
    const parentId = input.parentId ?? null;
    let depth: number | undefined;
    if (parentId !== null) {
      const parent = await this.getRecord(viewer, parentId);
      if (!parent) throw notFound(parentId);
      depth = childDepth(parent, await this.ancestry(parent));
    }
    const job = createJob({ ...input, heartbeatSeconds: input.heartbeatSeconds ?? this.opts.stallSeconds ?? DEFAULT_STALL_SECONDS }, { id: newJobId(now), epoch: newEpoch(), tenant: viewer.tenant, ownerId: viewer.userId, parentId, depth }, now);
    const key = input.idempotencyKey ?? undefined;
    const fingerprint = createHash('sha256')
      .update(JSON.stringify([job.name, job.kind, job.total, job.metadata, job.parentId ?? null, job.tags ?? []]))
      .digest('base64url');
    const result = await this.infra.backend.store.create(job, key ? { key, fingerprint } : undefined);
    if (!result.created && result.fingerprint !== fingerprint)
      throw conflict(`idempotencyKey ${JSON.stringify(key)} was already used with other input`);
    // Its first stall check (services/stalls.ts); reports never touch the index again.
    const checkAt = result.created ? firstStallCheckAt(result.job) : null;
    if (checkAt !== null) {
      await this.infra.backend.deadlines.schedule(job.id, checkAt).catch((error: unknown) => {
        this.opts.onError?.(`job ${job.id}: cannot schedule its stall check; it will not be marked stalled`, error);
      });
    }
    return viewJob(result.job, this.now());
  }

  /** The ids from a job up through its ancestors (at most MAX_DEPTH + 1 reads; stops at a repeat: the cycle check sees it). */
  private async ancestry(job: JobRecord): Promise<string[]> {
    const ids = [job.id];
    let current: JobRecord | null = job;
    while (current?.parentId && ids.length <= 4) {
      ids.push(current.parentId);
      if (ids.indexOf(current.parentId) !== ids.length - 1) break;
      current = await this.infra.backend.store.get(current.parentId);
    }
    return ids;
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
      const matches = job && matchesFilter(job, filter);
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
      queue: { ...queuePolicy(this.opts, transport), joinStart: this.joinStart },
      registry: this.streams,
      readHead: async () => {
        const job = await this.getRecord(viewer, jobId);
        if (!job) throw notFound(jobId);
        return job;
      },
      onReplayed: (count) => this.opts.hooks?.onReplayed?.(count),
      // A shared channel's stream: joiners with their own cursor replay from history (LiveStreamPolicy.joinAfter).
      shared: transport.members !== undefined,
    });
  }

  /**
   * Opens the viewer's tenant's live job list (`jobUpdates`): first a SNAPSHOT per matching job (the newest
   * {@link JOB_UPDATES_SNAPSHOT}), then every update of a matching job (created, status change, PROGRESS
   * conflated per job) in log order; with `after` (a cursor of a previous update), the updates after it from
   * history instead of the snapshot (no gap, no duplicate), or the snapshot when history no longer covers it.
   * A job-view token sees its one job only. Never ends by itself.
   * @throws DomainError BAD_USER_INPUT (bad cursor), SERVICE_UNAVAILABLE (Redis away).
   */
  async openUpdates(viewer: Viewer, filter: JobListFilter, after: string | null, transport: StreamTransport = {}): Promise<AsyncIterableIterator<JobUpdate>> {
    const position = after ? decodeCursor(after) : null;
    const topic = jobListTopic(viewer.tenant);
    const logs = this.infra.backend.logs;
    const stream = await this.infra.kinds.open(this.listKind, {
      topic,
      after: position,
      queue: queuePolicy(this.opts, transport),
      registry: this.updateStreams,
      readHead: async () => {
        let head = await logs.head<JobListState>(topic);
        if (!head) {
          // A tenant with no list yet gets one, so the snapshot's cursor means something.
          await logs.append<JobListState, JobUpdate>(topic, (h) => (h.state ? null : { state: { jobs: {} }, events: [] }));
          head = await logs.head<JobListState>(topic);
          if (!head) throw new Error(`job list ${topic} vanished`);
        }
        return head;
      },
      freshStart: async (head) => {
        const page = await this.list(viewer, filter, JOB_UPDATES_SNAPSHOT, null);
        const now = this.now();
        return page.jobs.map((job) => snapshotUpdate(job, head, now));
      },
      onReplayed: (count) => this.opts.hooks?.onReplayed?.(count),
    });
    const only = viewer.jobId;
    // Each job of the newest snapshot → its lastCursor there, so that updates the snapshot already showed are
    // dropped (shownBySnapshot). At most JOB_UPDATES_SNAPSHOT entries; a new snapshot (a reset) replaces them.
    const shown = new Map<string, string | null>();
    let snapshotting = false;
    return new FilteredStream(stream, (e) => {
      if (only !== null && e.job.id !== only) return false;
      if (e.type === 'SNAPSHOT') {
        if (!snapshotting) shown.clear();
        snapshotting = true;
        shown.set(e.job.id, e.job.lastCursor);
        return true;
      }
      snapshotting = false;
      return updateConcerns(e, filter) && !shownBySnapshot(e, shown.get(e.job.id));
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
    this.updateStreams.closeAll(RESTARTING);
  }
}
