/**
 * Account activity on behalf of a viewer: the active jobs of a scope with
 * their resources and totals, the tenant's budget, and the live `activity`
 * stream (updates, billing, hints).
 *
 * Storage (topic logs, see backends/topic-log.ts):
 * - `activity:<inst>`: state = the institute's active jobs (ActivityState),
 *   updated by the `activity` projector from job changes (the change log) when a
 *   job starts, pauses, resumes, finishes or changes resources;
 * - `budget:<inst>:<env>`: state = the tenant's Budget.
 * Both publish small notices, in the same atomic step, on per-scope topics,
 * so an instance subscribes only to the scopes its clients watch:
 * - `activity:env:<inst>:<env>`, `activity:inst:<inst>`, `activity:user:<inst>:<env>:<user>`:
 *   "the active set changed" and job hints;
 * - `activity:billing:<inst>:<env>` (and `activity:inst:<inst>`): BillingUpdates and budget hints.
 *
 * Per instance and per watched scope there is one {@link ScopeTopic}: it
 * holds the bus subscriptions, recomputes the ActivityUpdate at most
 * `updateHz` times a second (one read of the state and of the active jobs,
 * shared by all its subscribers), throttles hints to one a second, and fans
 * the resulting objects out. No work or timer per subscriber.
 */
import { canSeeJob, type Viewer } from '../auth/tokens.js';
import type { Backend } from '../backends/types.js';
import type { JobChangeRecord } from '../domain/changes.js';
import {
  ACTIVITY_NOTICE_PREFIX,
  activityBillingTopic as billingTopic,
  activityEnvTopic as envTopic,
  activityInstTopic as instTopic,
  activityStateTopic as stateTopic,
  activityUserTopic as userTopic,
  budgetTopic,
} from '../domain/topics.js';
import {
  entriesInScope,
  emptyHintThrottle,
  isActive,
  projectActivity,
  throttleHint,
  totalsOf,
  type ActivityScope,
  type ActivityState,
  type Hint,
  type HintThrottleState,
  type ResourceTotals,
  type ThrottledHint,
} from '../domain/activity.js';
import { emptyBudget, recordUsage, setBudget, viewBudget, type Budget, type BudgetHint, type BudgetView } from '../domain/budget.js';
import { isUnavailable, notFound } from '../domain/errors.js';
import { viewJob, type JobView, type Resources, type Tenant } from '../domain/job.js';
import type { Infra } from '../delivery/job-writer.js';
import type { LiveStream, StreamTransport } from '../delivery/live-stream.js';
import { openTopicStream, StreamRegistry } from '../delivery/topic-stream.js';

/** A notice on a scope topic (offset 0: notices are not a stream of their own). */
interface ActivityNotice {
  offset: number;
  jobsChanged: boolean;
  hint: Hint | null;
  billing: (BudgetView & { environmentId: string; version: number; timestamp: number }) | null;
}

/** One active job in an update: the job now, and what it holds. */
export interface ActiveJob {
  job: JobView;
  resources: Resources;
}

const NO_RESOURCES: Resources = { containers: 0, cpuCores: 0, memoryGb: 0, gpus: 0 };

/** The activity of a scope at one time (query `activity`, and the body of an ActivityUpdate). */
export interface ActivityView {
  scope: ActivityScope;
  activeJobs: ActiveJob[];
  totals: ResourceTotals;
  /** Epoch ms. */
  timestamp: number;
}

/** Events of the `activity` subscription (discriminated by `type`, the GraphQL type name). */
export type ActivityEvent =
  | (ActivityView & { type: 'ActivityUpdate'; offset: number; snapshot: boolean })
  | (BudgetView & { type: 'BillingUpdate'; offset: number; environmentId: string; timestamp: number })
  | (ThrottledHint & { type: 'ActivityHint'; offset: number })
  | { type: 'ContextMismatch'; offset: number; requestedEnvironmentId: string; tokenEnvironmentId: string; message: string; timestamp: number };

/** The query `activity`: the scope's view plus the tenant's budget. */
export type ActivitySnapshot = ActivityView & { budget: BudgetView };

/** Settings of {@link ActivityService}. */
export interface ActivityServiceOptions {
  /** Most ActivityUpdates per second per scope (default 4). */
  updateHz?: number;
  onError?: (message: string, error: unknown) => void;
  /**
   * Called once per budget crossing after its commit, on the instance that made it (OVER_BUDGET webhooks):
   * the tenant, the hint, the budget then, its version (unique per change) and the time (epoch ms).
   * A throw is reported to `onError`; the usage stands.
   */
  onBudgetHint?: (tenant: Tenant, kind: BudgetHint, budget: BudgetView, version: number, atMs: number) => Promise<void> | void;
}

/** A subscriber of a scope topic. */
interface Member {
  /** Hands the member a live event (its stream's `push`). */
  push(event: ActivityEvent): void;
  /** Offset the member's snapshot gets (the topic's offset when it joined). */
  joinOffset: number;
  awaitingSnapshot: boolean;
  /** Resolves the member's snapshot (its stream's head) with the view of the next computation. */
  snapshot(view: ActivityView): void;
}

/** One watched scope on this instance. */
class ScopeTopic {
  readonly members = new Set<Member>();
  private offset = 0;
  private dirty = false;
  private computing = false;
  private lastComputeMs: number | null = null;
  private computeTimer: NodeJS.Timeout | null = null;
  private hints: HintThrottleState = emptyHintThrottle();
  private hintTimer: NodeJS.Timeout | null = null;
  private unsubscribes: (() => void)[] = [];
  readonly ready: Promise<void>;

  constructor(
    private readonly service: ActivityService,
    readonly key: string,
    private readonly scope: ActivityScope,
    private readonly viewer: { tenant: Tenant; userId: string },
    channels: string[],
  ) {
    this.ready = (async () => {
      for (const channel of channels) this.unsubscribes.push(await service.backend.bus.subscribe<ActivityNotice>(channel, this.onNotice));
    })();
    this.ready.catch((error) => {
      if (!isUnavailable(error)) service.reportError(`activity subscription ${key} failed`, error);
      service.releaseTopic(this);
      this.releaseChannels(); // the channels subscribed before the failure
    });
  }

  private onNotice = (notice: ActivityNotice): void => {
    if (notice.jobsChanged) {
      this.dirty = true;
      this.scheduleCompute(false);
    }
    if (notice.billing) {
      const { version: _v, ...billing } = notice.billing;
      this.broadcast({ ...billing, type: 'BillingUpdate', offset: ++this.offset });
    }
    if (notice.hint) this.offerHint(notice.hint);
  };

  private broadcast(event: ActivityEvent): void {
    for (const m of this.members) m.push(event);
  }

  private offerHint(hint: Hint | null): void {
    const r = throttleHint(this.hints, hint, this.service.clock());
    this.hints = r.state;
    if (r.send) this.broadcast({ ...r.send, type: 'ActivityHint', offset: ++this.offset });
    if (r.nextAtMs !== null && !this.hintTimer) {
      this.hintTimer = setTimeout(() => {
        this.hintTimer = null;
        this.offerHint(null);
      }, Math.max(0, r.nextAtMs - this.service.clock()));
      this.hintTimer.unref();
    }
  }

  /**
   * Adds a subscriber: `push` gets the scope's live events from now on, and
   * the returned `snapshot` resolves with the view of the next computation
   * (the member's fresh start; offset `joinOffset`). Resolves once the
   * scope's channels are subscribed; `leave` removes the member (the last one
   * releases the channels). @throws what subscribing threw (the member has left).
   */
  async join(push: (event: ActivityEvent) => void): Promise<{ joinOffset: number; snapshot: Promise<ActivityView>; leave: () => void }> {
    let snapshot!: (view: ActivityView) => void;
    const ready = new Promise<ActivityView>((resolve) => (snapshot = resolve));
    const member: Member = { push, joinOffset: this.offset, awaitingSnapshot: true, snapshot };
    this.members.add(member);
    let left = false;
    const leave = () => {
      if (left) return;
      left = true;
      this.leave(member);
    };
    try {
      await this.ready;
    } catch (error) {
      leave();
      throw error;
    }
    this.scheduleCompute(true);
    return { joinOffset: member.joinOffset, snapshot: ready, leave };
  }

  private leave(member: Member): void {
    this.members.delete(member);
    if (this.members.size > 0) return;
    this.service.releaseTopic(this);
    void this.ready.then(
      () => this.releaseChannels(),
      () => {},
    );
    if (this.computeTimer) clearTimeout(this.computeTimer);
    if (this.hintTimer) clearTimeout(this.hintTimer);
    this.computeTimer = this.hintTimer = null;
  }

  private releaseChannels(): void {
    for (const u of this.unsubscribes) u();
    this.unsubscribes = [];
  }

  /** Runs a computation now (snapshots) or at the throttle's next slot (updates). One at a time; one timer per topic. */
  private scheduleCompute(now: boolean): void {
    if (this.computing || this.computeTimer) return;
    const interval = this.service.updateIntervalMs;
    const at = now || this.lastComputeMs === null ? 0 : this.lastComputeMs + interval - this.service.clock();
    this.computeTimer = setTimeout(() => {
      this.computeTimer = null;
      this.compute().catch((error: unknown) => this.service.reportError(`activity update of ${this.key} failed`, error));
    }, Math.max(0, at));
    this.computeTimer.unref();
  }

  private async compute(): Promise<void> {
    if (this.members.size === 0) return;
    this.computing = true;
    this.lastComputeMs = this.service.clock();
    const broadcast = this.dirty;
    this.dirty = false;
    const waiting = [...this.members].filter((m) => m.awaitingSnapshot);
    let failed = false;
    try {
      const view = await this.service.computeView(this.scope, this.viewer);
      for (const m of waiting) {
        m.awaitingSnapshot = false;
        m.snapshot(view);
      }
      if (broadcast) {
        const update: ActivityEvent = { ...view, type: 'ActivityUpdate', offset: ++this.offset, snapshot: false };
        for (const m of this.members) if (!m.awaitingSnapshot && !waiting.includes(m)) m.push(update);
      }
    } catch (error) {
      failed = true;
      // Redis away: retry quietly (the outage is logged once); anything else is worth a line.
      if (!isUnavailable(error)) this.service.reportError(`activity update of ${this.key} failed; retrying`, error);
      this.dirty ||= broadcast;
      for (const m of waiting) m.awaitingSnapshot = true;
    } finally {
      this.computing = false;
    }
    const awaiting = [...this.members].some((m) => m.awaitingSnapshot);
    // After a failure the retry waits one update interval, never spins.
    if (awaiting || (this.dirty && this.members.size > 0)) this.scheduleCompute(awaiting && !failed);
  }
}

/**
 * The gap fill of an activity notice channel after the bus reconnected: notices have no history, so a missed one
 * is replaced by "the active set changed" (a reset, delivered whatever its offset), and every scope watching the
 * channel recomputes its view.
 */
const RECOMPUTE: ActivityNotice = { offset: 0, jobsChanged: true, hint: null, billing: null };

/** How an activity stream treats its events: one object for every stream (no per-stream closures). */
const ACTIVITY_EVENTS = {
  offsetOf(e: ActivityEvent): number {
    return e.offset;
  },
  isConflatable(e: ActivityEvent): boolean {
    return e.type === 'ActivityUpdate' || e.type === 'BillingUpdate';
  },
  conflationKey(e: ActivityEvent): string {
    return e.type === 'BillingUpdate' ? `billing:${e.environmentId}` : e.type;
  },
  isFinal(e: ActivityEvent): boolean {
    return e.type === 'ContextMismatch';
  },
};

export class ActivityService {
  readonly updateIntervalMs: number;
  private readonly topics = new Map<string, ScopeTopic>();
  /** Open activity streams, ended on shutdown. */
  private readonly streams = new StreamRegistry<ActivityEvent>();

  readonly backend: Backend;
  readonly clock: () => number;

  /**
   * Registers the `activity:` notice stream kind (the reconnect catch-up of notice channels: a recompute) and the
   * `activity` projector (the institute's active set and job hints, from job changes; see domain `projectActivity`).
   */
  constructor(
    infra: Infra,
    private readonly opts: ActivityServiceOptions = {},
  ) {
    this.backend = infra.backend;
    this.clock = infra.clock;
    this.updateIntervalMs = 1000 / (opts.updateHz ?? 4);
    infra.kinds.register<ActivityNotice, true>({
      prefix: ACTIVITY_NOTICE_PREFIX,
      // Method syntax: no closures per stream.
      events: {
        offsetOf(e: ActivityNotice): number {
          return e.offset;
        },
        isConflatable(): boolean {
          return false;
        },
        isFinal(): boolean {
          return false;
        },
        isReset(): boolean {
          return true;
        },
      },
      readHead: async () => true,
      freshStart: () => [RECOMPUTE],
    });
    infra.changes.project('activity', (change) => this.project(change));
  }

  /** Activity streams open on this instance now (diagnostics, tests). */
  get activeStreams(): number {
    return this.streams.size;
  }

  /** Scopes watched on this instance now (one per distinct scope with subscribers; diagnostics, tests). */
  get watchedScopes(): number {
    return this.topics.size;
  }

  /** @internal */
  reportError(message: string, error: unknown): void {
    this.opts.onError?.(message, error);
  }

  /** @internal */
  releaseTopic(topic: ScopeTopic): void {
    if (this.topics.get(topic.key) === topic) this.topics.delete(topic.key);
  }

  /**
   * The `activity` projector: keeps the institute's active set and notifies the job's scopes (with a hint when it
   * started, finished, failed or was cancelled). Idempotent: a change applied already commits nothing and
   * notifies nobody (see domain `projectActivity`).
   */
  async project(change: JobChangeRecord): Promise<void> {
    const job = change.job;
    const { institute, environment } = job.tenant;
    await this.backend.logs.append<ActivityState, never>(stateTopic(institute), (head) => {
      const projected = projectActivity(head.state, change, this.clock());
      if (!projected) return null;
      const notice: ActivityNotice = { offset: 0, jobsChanged: true, hint: projected.hint, billing: null };
      return {
        state: projected.state,
        events: [],
        notify: [envTopic(institute, environment), instTopic(institute), userTopic(institute, environment, job.ownerId)].map((topic) => ({
          topic,
          message: notice,
        })),
      };
    });
  }

  /** @internal One read of the scope's state and jobs. */
  async computeView(scope: ActivityScope, viewer: { tenant: Tenant; userId: string }): Promise<ActivityView> {
    const head = await this.backend.logs.head<ActivityState>(stateTopic(viewer.tenant.institute));
    const entries = entriesInScope(head?.state ?? null, scope, { userId: viewer.userId, environment: viewer.tenant.environment });
    const records = await Promise.all(entries.map((e) => this.backend.store.get(e.jobId)));
    const now = this.clock();
    const activeJobs: ActiveJob[] = [];
    for (const record of records) {
      if (!record || !isActive(record.status) || record.tenant.institute !== viewer.tenant.institute) continue;
      activeJobs.push({ job: viewJob(record, now), resources: record.resources ?? NO_RESOURCES });
    }
    return { scope, activeJobs, totals: totalsOf(activeJobs), timestamp: now };
  }

  /** The scope's activity now, with the tenant's budget (query `activity`). */
  async snapshot(viewer: Viewer, scope: ActivityScope): Promise<ActivitySnapshot> {
    const [view, budget] = await Promise.all([this.computeView(scope, viewer), this.budget(viewer)]);
    return { ...view, budget };
  }

  /** The viewer's tenant's budget. */
  async budget(viewer: Viewer): Promise<BudgetView> {
    const head = await this.backend.logs.head<Budget>(budgetTopic(viewer.tenant));
    return viewBudget(head?.state ?? emptyBudget());
  }

  private async changeBudget(viewer: Viewer, step: (b: Budget) => { budget: Budget; hints: BudgetHint[] }): Promise<BudgetView> {
    const { institute, environment } = viewer.tenant;
    const committed = await this.backend.logs.append<Budget, never, { hints: BudgetHint[]; at: number }>(budgetTopic(viewer.tenant), (head) => {
      const now = this.clock();
      const { budget, hints } = step(head.state ?? emptyBudget());
      const view = viewBudget(budget);
      const billing = { ...view, environmentId: environment, version: budget.version, timestamp: now };
      const notices: ActivityNotice[] = [{ offset: 0, jobsChanged: false, hint: null, billing }];
      for (const kind of hints) {
        const pct = view.percentUsed === null ? '' : ` (${Math.round(view.percentUsed)}% used)`;
        const message = kind === 'OVER_BUDGET' ? `over budget${pct}` : `near budget${pct}`;
        notices.push({ offset: 0, jobsChanged: false, billing: null, hint: { kind, message, jobId: null, environment, ownerId: null, timestamp: now } });
      }
      return {
        state: budget,
        events: [],
        notify: notices.flatMap((message) => [billingTopic(institute, environment), instTopic(institute)].map((topic) => ({ topic, message }))),
        value: { hints, at: now },
      };
    });
    // Never null: the change always commits.
    const { state: budget, value } = committed!;
    const { hints: crossed, at } = value!;
    for (const kind of crossed) {
      try {
        await this.opts.onBudgetHint?.(viewer.tenant, kind, viewBudget(budget), budget.version, at);
      } catch (error) {
        this.opts.onError?.(`budget hint listener failed (${kind})`, error);
      }
    }
    return viewBudget(budget);
  }

  /**
   * Records usage (currency units) of a job against its tenant's budget. Over budget is allowed (OVER_BUDGET hint).
   * @throws DomainError NOT_FOUND (no such job in the viewer's tenant), BAD_USER_INPUT (amount not positive and finite).
   */
  async recordUsage(viewer: Viewer, jobId: string, amount: number): Promise<BudgetView> {
    const job = await this.backend.store.get(jobId);
    if (!job || !canSeeJob(viewer, job)) throw notFound(jobId);
    return this.changeBudget(viewer, (b) => recordUsage(b, amount));
  }

  /** Sets the viewer's tenant's budget. @throws DomainError BAD_USER_INPUT (total, currency). */
  setBudget(viewer: Viewer, total: number, currency: string): Promise<BudgetView> {
    return this.changeBudget(viewer, (b) => setBudget(b, total, currency));
  }

  /**
   * Opens the `activity` stream: first an ActivityUpdate snapshot, then
   * ActivityUpdates (at most updateHz a second per scope), BillingUpdates and
   * throttled ActivityHints. When `environmentId` is given and is not the
   * token's environment: one ContextMismatch, then the stream completes.
   */
  async openStream(viewer: Viewer, scope: ActivityScope, environmentId: string | null, transport: StreamTransport = {}): Promise<LiveStream<ActivityEvent>> {
    // Method syntax: tsx names arrows in object literals with defineProperty, a dictionary per closure per stream.
    const policy = {
      ...ACTIVITY_EVENTS,
      conflateAbove: 32,
      maxQueued: 500,
      onOverflow() {
        transport.dropSlowConsumer?.();
      },
    };
    const { institute, environment } = viewer.tenant;
    if (environmentId !== null && environmentId !== environment) {
      // Nothing to watch: one ContextMismatch, and the stream ends.
      const mismatch: ActivityEvent = {
        type: 'ContextMismatch',
        offset: 1,
        requestedEnvironmentId: environmentId,
        tokenEnvironmentId: environment,
        message: `this token acts in environment ${JSON.stringify(environment)}, not ${JSON.stringify(environmentId)}: use a token for that environment`,
        timestamp: this.clock(),
      };
      return openTopicStream<ActivityEvent, ActivityEvent>({
        source: { subscribe: async () => () => {} },
        policy,
        registry: this.streams,
        readHead: async () => mismatch,
        freshStart: (event) => [event],
      });
    }
    let key: string;
    let channels: string[];
    if (scope === 'INSTITUTE') {
      key = instTopic(institute);
      channels = [key];
    } else {
      key = scope === 'USER' ? userTopic(institute, environment, viewer.userId) : envTopic(institute, environment);
      channels = [key, billingTopic(institute, environment)];
    }
    let topic = this.topics.get(key);
    if (!topic) {
      topic = new ScopeTopic(this, key, scope, { tenant: viewer.tenant, userId: viewer.userId }, channels);
      this.topics.set(key, topic);
    }
    const scopeTopic = topic;
    let joined: { joinOffset: number; snapshot: Promise<ActivityView> } | null = null;
    return openTopicStream<ActivityEvent, ActivityView>({
      // The scope's shared subscription (one per scope per instance, whatever the number of subscribers).
      source: {
        subscribe: async (push) => {
          const membership = await scopeTopic.join(push);
          joined = membership;
          return membership.leave;
        },
      },
      policy,
      registry: this.streams,
      // The scope's next computation, shared by every member waiting for one; retried while Redis is away.
      readHead: () => joined!.snapshot,
      freshStart: (view) => [{ ...view, type: 'ActivityUpdate', offset: joined!.joinOffset, snapshot: true }],
      awaitHead: false,
    });
  }

  /** Shutdown: ends open activity streams with SERVICE_UNAVAILABLE (clients resubscribe elsewhere). */
  close(): void {
    this.streams.closeAll('server restarting: resubscribe');
  }
}
