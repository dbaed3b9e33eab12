/**
 * Redis backend: job state, history and pub/sub shared by every instance, on
 * one Redis ({@link createRedisBackend}) or a Redis Cluster
 * ({@link createRedisClusterBackend}), with the same keys (redis-keys.ts: every
 * key carries a hash tag, so that every script touches one slot):
 * - `runwatch:{<P>}:job:<id>`         hash {v: version, data: JSON record, idem: its idempotency key's name}
 * - `runwatch:{<P>}:job:<id>:events`  stream of the job's events, entry id `<offset>-0`,
 *                                     approximately the newest RUNWATCH_HISTORY kept (XADD MAXLEN ~)
 * - `runwatch:{<P>}:log:<topic>`      the job's own topic logs (training, commands, items, metrics)
 * - `runwatch:{<P>}:changes`          partition P of the change log (stream; redis-changes.ts): the
 *                                     commit scripts XADD each job creation / change with events
 * - `runwatch:{<P>}:retention`        sorted set of the partition's finished jobs
 *                                     ("<tenant index key>\n<id>\n<idempotency key>") by removal time (Redis TIME, s)
 * - `runwatch:{tenant:<inst>:<env>}:jobs`       the tenant's job ids by creation time (ms)
 * - `runwatch:{tenant:<inst>:<env>}:idem:<key>` idempotency key → "<jobId>\n<fingerprint>\n<claimed at ms>", 7 days
 * - `runwatch:partitions`             the change-partition count, fixed at first start
 * - `runwatch:{deadlines:<n>}`        16 sorted sets of job ids by next stall check (ms); see redis-deadlines.ts
 * - `runwatch:{q:<name>}:…`           BullMQ's keys of a work queue (webhook deliveries); see bullmq-queue.ts
 * where `<P>` is the tag of the job's change partition (redis-keys.ts partitionTag).
 * Channels: `runwatch:{<tag>}:<topic>`, e.g. `runwatch:{<P>}:job:<id>`.
 *
 * Retention: the commit that finishes a job also sets, in the same script, an
 * expiry of RUNWATCH_RETENTION_DAYS on the record, its history and its own
 * topic logs, and adds it to its partition's retention set. Redis removes the
 * keys; a sweep on every instance removes the expired ids from the tenant
 * indexes and their idempotency keys (in the tenant's slot, so not in the
 * finishing commit), and `list` drops expired ids on the way. Unfinished jobs
 * never expire. An idempotency key whose job is gone is void (see
 * {@link RedisJobStore.create}).
 *
 * A job is a topic log (redis-log.ts): the log `job:<id>` whose state is the
 * job record. Its updates are that log's compare-and-set commits: the change
 * is computed in TypeScript (the domain is the single source of the rules) and
 * one Lua script commits the record, appends the events to the stream, XADDs
 * the change to the change log and publishes the events only if the version
 * is unchanged — otherwise the update is recomputed. Redis runs the script
 * atomically, so every instance sees one order; concurrent updates of one job
 * on one instance share one commit. What a job has beyond its log is here:
 * the tenant index, the idempotency table and retention.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { DomainError, isUnavailable, notFound } from '../domain/errors.js';
import type { JobChange, JobEvent, JobRecord, Tenant } from '../domain/job.js';
import { BullWorkQueues } from './bullmq-queue.js';
import { creationChange, updateChange } from '../domain/changes.js';
import { newEpoch } from '../domain/ids.js';
import { JOB_OWNED, jobTopic, type JobOwnedTopics } from '../domain/topics.js';
import { RedisChangeFeed } from './redis-changes.js';
import { RedisChannels, type PubSubChannels, type RedisChannelsHooks } from './redis-channels.js';
import { RedisDeadlineIndex } from './redis-deadlines.js';
import { PARTITIONS_KEY, RedisKeyspace } from './redis-keys.js';
import { firstVersion, RedisTopicLogStore, shardedScript, type RedisClient, type RedisLogLayout } from './redis-log.js';
import { RedisShardedChannels } from './redis-sharded-channels.js';
import { TopicFanout } from './topic-fanout.js';
import {
  matchesFilter,
  type Backend,
  type BusEvent,
  type EventBus,
  type GapHandler,
  type HistoryRead,
  type JobFilter,
  type JobStore,
  type ListPosition,
  type RetentionOptions,
} from './types.js';

export { KEY_PREFIX, RedisKeyspace } from './redis-keys.js';
export type { RedisClient } from './redis-log.js';
/** Most expired jobs one sweep step removes from the indexes. */
const SWEEP_BATCH = 500;
const IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600;
/**
 * Milliseconds after its creation time during which a job id in a tenant index without a record, or an
 * idempotency key whose job has no record, counts as a creation in progress (see {@link RedisJobStore.create});
 * after that, as the leftover of a creation that failed half-way (or of a job removed by retention).
 */
export const CREATE_GRACE_MS = 30_000;
/** Most milliseconds a create waits for an earlier creation with the same idempotency key to finish. */
const IDEMPOTENT_WAIT_MS = 2000;

// Step 1 of a create, in the tenant's slot. KEYS: 1 tenant index, 2 idempotency key (KEYS[1] when none).
// ARGV: 1 createdAt (ms), 2 id, 3 idempotency value, 4 its TTL (s), 5 the value it replaces ('' none).
// Claims the idempotency key (or, with ARGV[5], replaces a void claim if it still holds that value) and
// indexes the job. Returns false when done, else the claim found.
const CLAIM_LUA = `
if KEYS[2] ~= KEYS[1] then
  local seen = redis.call('GET', KEYS[2])
  if seen and seen ~= ARGV[5] then return seen end
  redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[4])
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
return false
`;

// Step 2 of a create, in the job's slot. KEYS: 1 record, 2 change-log partition.
// ARGV: 1 data, 2 first version, 3 change JSON, 4 change-log maxlen, 5 the idempotency key's name ('' none).
// Returns 1 created, 0 it existed.
const CREATE_LUA = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'data', ARGV[1], 'idem', ARGV[5])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'c', ARGV[3])
return 1
`;

// In the job's slot. KEYS: 1 record, 2 its partition's retention set.
// ARGV: 1 data, 2 retention seconds (0: unfinished), 3 retention member, 4 first version.
const RESTORE_LUA = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[4], 'data', ARGV[1])
local ttl = tonumber(ARGV[2])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('ZADD', KEYS[2], tonumber(redis.call('TIME')[1]) + ttl, ARGV[3])
end
return 1
`;

// In one partition's slot. KEYS: 1 the partition's retention set. ARGV: 1 batch size, 2 the partition's record key prefix.
// Members: "<tenant index>\n<id>[\n<idempotency key>]". Of the due members: those whose record is gone are
// returned (the caller removes them from their tenant's keys, then from this set); kept ones (no expiry) leave
// the set; others get their new removal time.
const SWEEP_LUA = `
local now = tonumber(redis.call('TIME')[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local gone = {}
for _, member in ipairs(due) do
  local sep = string.find(member, '\\n', 1, true)
  local id = string.sub(member, sep + 1)
  local idEnd = string.find(id, '\\n', 1, true)
  if idEnd then id = string.sub(id, 1, idEnd - 1) end
  local left = redis.call('TTL', ARGV[2] .. id)
  if left == -2 then
    gone[#gone + 1] = member
  elseif left == -1 then
    redis.call('ZREM', KEYS[1], member)
  else
    redis.call('ZADD', KEYS[1], now + left, member)
  end
end
return gone
`;

// In the tenant's slot: a removed job leaves its tenant's keys. KEYS: 1 tenant index, 2 its idempotency key (KEYS[1]
// when none). ARGV: 1 id. The idempotency key is deleted only while it still names the job.
const UNINDEX_LUA = `
redis.call('ZREM', KEYS[1], ARGV[1])
if KEYS[2] ~= KEYS[1] then
  local claim = redis.call('GET', KEYS[2])
  if claim and string.sub(claim, 1, #ARGV[1] + 1) == ARGV[1] .. '\\n' then redis.call('DEL', KEYS[2]) end
end
return 1
`;

type ScriptedRedis = RedisClient & {
  runwatchUnindex(tenantKey: string, idemKey: string, id: string): Promise<number>;
  runwatchClaim(tenantKey: string, idemKey: string, ...args: (string | number)[]): Promise<string | null>;
  runwatchCreate(jobKey: string, changesKey: string, ...args: (string | number)[]): Promise<number>;
  runwatchRestore(jobKey: string, retentionKey: string, ...args: (string | number)[]): Promise<number>;
  runwatchSweep(retentionKey: string, batch: number, recordPrefix: string): Promise<string[]>;
};

/**
 * Failures that mean "Redis is unreachable right now": the connection is down, or, on a Redis Cluster, the
 * cluster is failing over (CLUSTERDOWN, TRYAGAIN, a MOVED/ASK the client could not follow in time, no
 * reachable node, a stale slot map).
 */
const UNAVAILABLE =
  /Stream isn't writeable|Connection is closed|ECONNREFUSED|ECONNRESET|Command timed out|EPIPE|max retries|CLUSTERDOWN|TRYAGAIN|^MOVED|^ASK|Too many Cluster redirections|Cluster isn't ready|None of startup nodes is available|Failed to refresh slots cache|MasterDown|LOADING/i;

/** Whether an error from ioredis means the backend is unreachable now (see {@link UNAVAILABLE}). */
export const isRedisUnreachable = (error: unknown) => UNAVAILABLE.test(error instanceof Error ? error.message : String(error));

/** Maps "Redis is unreachable" failures to SERVICE_UNAVAILABLE; everything else passes through. */
async function guard<T>(redis: RedisClient, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (error) {
    if (error instanceof DomainError) throw error;
    if (redis.status !== 'ready' || isRedisUnreachable(error)) {
      throw new DomainError('SERVICE_UNAVAILABLE', 'the backend (Redis) is unreachable; retry later');
    }
    throw error;
  }
}

/**
 * The layout of jobs' topic logs (see {@link RedisLogLayout}): the record hash
 * `runwatch:{P}:job:<id>` {v, data: the record's JSON} and the history stream
 * `runwatch:{P}:job:<id>:events`. The head's epoch and offset are the record's.
 * A missing job is NOT_FOUND, never created by a commit. The commit that
 * finishes a job retains it: the record, its history and its own topic logs
 * expire `retentionSeconds` later, and the job joins its partition's retention set.
 */
export function jobLogLayout(keys: RedisKeyspace, retentionSeconds: number, owned: JobOwnedTopics = JOB_OWNED): RedisLogLayout<JobRecord> {
  const idOf = (topic: string) => topic.slice(jobTopic('').length);
  return {
    headKey: (topic) => keys.job(idOf(topic)),
    eventsKey: (topic) => keys.jobEvents(idOf(topic)),
    fields: ['data', 'idem'],
    decode: ([data]) => {
      if (data == null) return null;
      const job = JSON.parse(data) as JobRecord;
      return { epoch: job.epoch, offset: job.offset, state: job };
    },
    encode: (head) => ['data', JSON.stringify(head.state)],
    missing: (topic) => {
      throw notFound(idOf(topic));
    },
    owner: () => null,
    retention: (topic, head, [, idem]) =>
      head.state!.finishedAt === null
        ? null
        : {
            seconds: retentionSeconds,
            set: keys.retentionOf(idOf(topic)),
            member: keys.retentionMember(head.state!, idem || null),
            keys: owned.of(idOf(topic)).flatMap((t) => [keys.logHead(t), keys.logEvents(t)]),
          },
    changesKey: (change) => keys.changesOf(change.jobId),
  };
}

/** {@link JobStore} on Redis: each job is the topic log `job:<id>` of `logs` (see {@link jobLogLayout}), plus the tenant index and idempotency table. */
export class RedisJobStore implements JobStore {
  private readonly redis: ScriptedRedis;

  /**
   * @param redis the command connection (one Redis or a Cluster).
   * @param logs the topic-log store, with {@link jobLogLayout} for `job:` topics.
   * @param retention how long finished jobs are kept (see the header), the keyspace and the change-log length.
   */
  constructor(
    redis: RedisClient,
    private readonly logs: RedisTopicLogStore,
    private readonly retention: RetentionOptions & { keys: RedisKeyspace; changeLogMaxLen: number },
  ) {
    redis.defineCommand('runwatchClaim', { numberOfKeys: 2, lua: CLAIM_LUA });
    redis.defineCommand('runwatchCreate', { numberOfKeys: 2, lua: CREATE_LUA });
    redis.defineCommand('runwatchRestore', { numberOfKeys: 2, lua: RESTORE_LUA });
    redis.defineCommand('runwatchSweep', { numberOfKeys: 1, lua: SWEEP_LUA });
    redis.defineCommand('runwatchUnindex', { numberOfKeys: 2, lua: UNINDEX_LUA });
    this.redis = redis as ScriptedRedis;
  }

  private get keys(): RedisKeyspace {
    return this.retention.keys;
  }

  /**
   * Removes the ids of jobs whose retention ended from their tenant indexes,
   * and their idempotency keys (Redis already removed their own keys),
   * partition by partition: first from the tenant's keys, then from the
   * retention set, so a sweep cut short is finished by the next. Idempotent,
   * safe on every instance at once.
   * @returns how many jobs left the indexes.
   */
  async sweep(): Promise<number> {
    let total = 0;
    for (let p = 0; p < this.keys.partitions; p++) {
      const set = this.keys.retention(p);
      for (;;) {
        const gone = await this.redis.runwatchSweep(set, SWEEP_BATCH, this.keys.jobPrefix(p));
        await Promise.all(
          gone.map((member) => {
            const [index, id, idem] = member.split('\n') as [string, string, string | undefined];
            return this.redis.runwatchUnindex(index, idem || index, id);
          }),
        );
        if (gone.length > 0) await this.redis.zrem(set, ...gone);
        total += gone.length;
        if (gone.length < SWEEP_BATCH) break;
      }
    }
    return total;
  }

  /**
   * {@link JobStore.create} in two ordered steps, since a job's keys and its
   * tenant's keys are in different slots (no script may span two):
   * 1. in the tenant's slot: claim the idempotency key ("<id>\n<fingerprint>\n<now ms>",
   *    SET only if absent) and add the id to the tenant index;
   * 2. in the job's slot: write the record and XADD its creation to the change log.
   * A failure between them leaves an indexed id without a record, which is
   * invisible: `list` skips ids without a record and drops them once older
   * than {@link CREATE_GRACE_MS}. An idempotency key whose job has no record is
   * a creation in progress while younger than CREATE_GRACE_MS (a retry waits up
   * to 2 s for it, then fails with SERVICE_UNAVAILABLE), else void (the creation
   * failed half-way, or retention removed the job): the next create with it
   * replaces it — only if it still holds the value seen, so two such creates
   * cannot both win.
   * @throws DomainError SERVICE_UNAVAILABLE when Redis is unreachable, or an earlier creation with the same
   *   idempotency key is still in progress.
   */
  create(job: JobRecord, idem?: { key: string; fingerprint: string }) {
    return guard(this.redis, async () => {
      const tenantKey = this.keys.tenantJobs(job.tenant);
      const idemKey = idem ? this.keys.idem(job.tenant, idem.key) : tenantKey;
      const claim = idem ? `${job.id}\n${idem.fingerprint}\n${Date.now()}` : '';
      let replacing = '';
      for (let attempt = 0; ; attempt++) {
        const seen = await this.redis.runwatchClaim(tenantKey, idemKey, job.createdAt, job.id, claim, IDEMPOTENCY_TTL_SECONDS, replacing);
        if (seen === null) break;
        const [id, fingerprint, claimedAt] = seen.split('\n') as [string, string, string | undefined];
        const existing = await this.awaitRecord(id, Number(claimedAt ?? 0));
        if (existing) return { job: existing, created: false, fingerprint };
        if (attempt >= 3) throw new DomainError('SERVICE_UNAVAILABLE', 'the idempotency key is being claimed concurrently; retry');
        replacing = seen; // void: replace it if it still holds what was seen
      }
      await this.redis.runwatchCreate(
        this.keys.job(job.id),
        this.keys.changesOf(job.id),
        JSON.stringify(job),
        firstVersion(),
        JSON.stringify(creationChange(job)),
        this.retention.changeLogMaxLen,
        idem ? idemKey : '',
      );
      return { job, created: true };
    });
  }

  /**
   * The record of the job an idempotency key claimed at `claimedAtMs` names; while the claim is younger than
   * {@link CREATE_GRACE_MS} and the record missing, waits up to {@link IDEMPOTENT_WAIT_MS} for it.
   * @returns the record, or null when the claim is void (older, and no record).
   * @throws DomainError SERVICE_UNAVAILABLE when a young claim's record does not appear in time.
   */
  private async awaitRecord(id: string, claimedAtMs: number): Promise<JobRecord | null> {
    const until = Date.now() + IDEMPOTENT_WAIT_MS;
    for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
      const job = await this.get(id);
      if (job) return job;
      if (Date.now() - claimedAtMs >= CREATE_GRACE_MS) return null;
      if (Date.now() >= until) throw new DomainError('SERVICE_UNAVAILABLE', 'an earlier creation with this idempotency key is still in progress; retry');
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  get(id: string) {
    return guard(this.redis, async () => {
      const data = await this.redis.hget(this.keys.job(id), 'data');
      return data === null ? null : (JSON.parse(data) as JobRecord);
    });
  }

  list(tenant: Tenant, filter: JobFilter, first: number, after: ListPosition | null) {
    return guard(this.redis, async () => {
      const key = this.keys.tenantJobs(tenant);
      const jobs: JobRecord[] = [];
      const batch = Math.max(50, first * 2);
      const max = after ? String(after.createdAt) : '+inf';
      for (let offset = 0; ; offset += batch) {
        const rows = await this.redis.zrevrangebyscore(key, max, '-inf', 'WITHSCORES', 'LIMIT', offset, batch);
        if (rows.length === 0) return { jobs, hasNextPage: false };
        const ids: string[] = [];
        const createdAt: number[] = [];
        for (let i = 0; i < rows.length; i += 2) {
          const id = rows[i]!;
          if (after && Number(rows[i + 1]) === after.createdAt && id >= after.id) continue;
          ids.push(id);
          createdAt.push(Number(rows[i + 1]));
        }
        // One command per record: on a cluster they are in different slots (ioredis sends them back to back).
        const results = await Promise.all(ids.map((id) => this.redis.hget(this.keys.job(id), 'data')));
        // Ids without a record: expired (retention), or the leftover of a create that failed half-way; they
        // leave the index now rather than at the next sweep. Younger ones may be a create in progress: skipped.
        const staleBefore = Date.now() - CREATE_GRACE_MS;
        const gone = ids.filter((_, i) => results[i] === null && createdAt[i]! < staleBefore);
        if (gone.length > 0) await this.redis.zrem(key, ...gone);
        for (const data of results) {
          if (typeof data !== 'string') continue;
          const job = JSON.parse(data) as JobRecord;
          if (!matchesFilter(job, filter)) continue;
          if (jobs.length === first) return { jobs, hasNextPage: true };
          jobs.push(job);
        }
        if (rows.length < batch * 2) return { jobs, hasNextPage: false };
      }
    });
  }

  /**
   * {@link JobStore.update}: a commit of the job's topic log. Many workers
   * reporting to one job share one read and one compare-and-set per batch on
   * each instance (RedisTopicLogStore.append); the domain still sees the
   * changes one at a time (gap-free offsets, conflation rules, exact counts).
   */
  update(id: string, change: (job: JobRecord) => JobChange | null): Promise<JobChange | null> {
    return guard(this.redis, async () => {
      // The change may run more than once (a lost compare-and-set): the last run is the one committed.
      let result: JobChange | null = null;
      const committed = await this.logs.append<JobRecord, JobEvent>(jobTopic(id), (head) => {
        result = change(head.state!);
        return result && { state: result.job, events: result.events, change: updateChange(result.job, result.events.map((e) => e.type)) ?? undefined };
      });
      return committed && result;
    });
  }

  /** {@link JobStore.restore}: the tenant index first (an id without a record is invisible), then the record. */
  restore(job: JobRecord) {
    return guard(this.redis, async () => {
      await this.redis.zadd(this.keys.tenantJobs(job.tenant), job.createdAt, job.id);
      const restored = await this.redis.runwatchRestore(
        this.keys.job(job.id),
        this.keys.retentionOf(job.id),
        JSON.stringify(job),
        job.finishedAt !== null ? this.retention.retentionSeconds : 0,
        this.keys.retentionMember(job),
        firstVersion(),
      );
      return restored === 1;
    });
  }

  history(id: string, afterOffset: number): Promise<HistoryRead> {
    return guard(this.redis, () => this.logs.history<JobEvent>(jobTopic(id), afterOffset));
  }

  async ping() {
    await guard(this.redis, () => this.redis.ping());
  }

  async close() {}
}

/** Every bus message is a JSON object with a numeric `offset` (job events, topic-log entries, activity notices). */
const isBusEvent = (value: unknown): value is BusEvent =>
  typeof value === 'object' && value !== null && typeof (value as BusEvent).offset === 'number';

/**
 * {@link EventBus} on Redis pub/sub: one subscription per channel per instance
 * ({@link RedisChannels}: SUBSCRIBE on one Redis; {@link RedisShardedChannels}:
 * SSUBSCRIBE on the owning master of a Redis Cluster), released when the
 * topic's last local listener leaves, also while Redis is away. A malformed
 * message is logged and dropped. After a reconnect (or a failover, or a slot
 * move) every open topic's gap is filled by the gap handler (onGap).
 */
export class RedisEventBus implements EventBus {
  private readonly fanout: TopicFanout<string>;
  private readonly channels: PubSubChannels;
  private gapHandler: GapHandler | null = null;
  private recovering: Promise<void> | null = null;
  private recoverAgain = false;
  private closed = false;

  /**
   * @param channels makes the channel set with the bus's hooks (e.g. `(hooks) => new RedisChannels(subscriber, hooks)`).
   * @param keys names each topic's channel.
   */
  constructor(
    channels: (hooks: RedisChannelsHooks) => PubSubChannels,
    private readonly keys: RedisKeyspace,
    private readonly onError: (topic: string, error: unknown) => void,
  ) {
    this.channels = channels({
      onLost: () => this.fanout.holdAll(),
      onResubscribed: () => this.startRecovery(),
      onError: (context, error) => onError(context, error),
    });
    this.fanout = new TopicFanout<string>(
      async (topic, deliver) => {
        const channel = this.keys.channel(topic);
        await this.channels.subscribe(channel, (raw) => {
          let message: unknown;
          try {
            message = JSON.parse(raw);
          } catch {
            message = undefined;
          }
          if (isBusEvent(message)) deliver(message);
          else onError(topic, new Error('malformed message dropped'));
        });
        return channel;
      },
      (_topic, channel) => this.channels.unsubscribe(channel),
      onError,
    );
  }

  /** The subscriber connection on one Redis (diagnostics and fault-injection tests); on a cluster see {@link shards}. */
  get subscriber(): Redis {
    if (!(this.channels instanceof RedisChannels)) throw new Error('a Redis Cluster bus has one subscriber per shard: see shards');
    return this.channels.subscriber;
  }

  /** On a Redis Cluster: the shard subscriber connections by node (`host:port`); empty on one Redis. */
  get shards(): ReadonlyMap<string, Redis> {
    return this.channels instanceof RedisShardedChannels ? this.channels.subscribers : new Map();
  }

  /** Channels the subscriber connection listens to (or will, once reconnected). */
  subscribedChannels(): string[] {
    return this.channels.channels;
  }

  subscribe<E extends BusEvent = JobEvent>(topic: string, listener: (event: E) => void) {
    return this.fanout.subscribe(topic, listener);
  }
  topicCount() {
    return this.fanout.size;
  }
  onGap(handler: GapHandler) {
    this.gapHandler = handler;
  }

  /** One recovery at a time; a reconnect during one runs another after it. */
  private startRecovery(): void {
    if (this.recovering) {
      this.recoverAgain = true;
      return;
    }
    this.recovering = this.recover()
      .catch((error: unknown) => this.onError('recovery', error))
      .finally(() => {
        this.recovering = null;
        if (this.recoverAgain && !this.closed) {
          this.recoverAgain = false;
          this.startRecovery();
        }
      });
  }

  /**
   * After a reconnect (the desired channels are subscribed again and a PING
   * behind them answered, so nothing published from now on is missed): each
   * open topic catches up from history, and then gets the live events held
   * back since the connection dropped (see {@link TopicFanout.holdAll}). A topic whose catch-up fails (Redis
   * flapping) is retried with backoff, up to ~30 s; failures while Redis is
   * unreachable are not reported (the outage itself is logged once).
   */
  private async recover(): Promise<void> {
    const pending = this.fanout.openTopics();
    try {
      for (let attempt = 0; pending.length > 0 && attempt < 30 && !this.closed; attempt++) {
        if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(200 * attempt, 2000)).unref());
        for (let i = pending.length - 1; i >= 0; i--) {
          const { topic, last } = pending[i]!;
          try {
            const fill = this.gapHandler ? await this.gapHandler(topic, last) : null;
            // Live events held back since the connection dropped follow the caught-up ones, in offset order.
            this.fanout.resume(topic, fill?.events ?? [], fill?.isReset);
            pending.splice(i, 1);
          } catch (error) {
            if (!isUnavailable(error)) this.onError(topic, error);
          }
        }
      }
    } finally {
      // Given up on (or closing): deliver what was held back rather than hold it forever.
      for (const { topic } of pending) this.fanout.resume(topic, []);
    }
  }

  async close() {
    this.closed = true;
    if (this.channels instanceof RedisShardedChannels) this.channels.close();
  }
}

/** Options of {@link createRedisBackend} and {@link createRedisClusterBackend}. */
export interface RedisBackendOptions {
  /** One Redis: its URL (`redis://` or `rediss://`). Not used by {@link createRedisClusterBackend}. */
  url: string;
  historySize: number;
  /** Called for pub/sub errors (logging); never for the connection errors of an outage (see onConnectionChange). */
  onError: (context: string, error: unknown) => void;
  /** Called for every connection error event, including each failed reconnect attempt (counting only). */
  onConnectionError?: (error: unknown) => void;
  /**
   * Called once when an outage starts (`up` false, with the error that came
   * with it) and once when it ends (`up` true, with its duration in ms).
   * An outage starts when either connection (commands, subscriber) is lost
   * and ends when both are ready again. On a Redis Cluster: when the command
   * connection (the cluster client) or a shard subscriber is lost.
   */
  onConnectionChange?: (up: boolean, info: { downMs?: number; error?: string }) => void;
  /** Most milliseconds to wait for Redis at start. */
  connectTimeoutMs?: number;
  /** Seconds a finished job is kept (RUNWATCH_RETENTION_DAYS); default 30 days. */
  retentionSeconds?: number;
  /** The topic logs that belong to a job (default domain/topics.ts JOB_OWNED). */
  owned?: JobOwnedTopics;
  /**
   * Partitions of the change log (RUNWATCH_CHANGE_PARTITIONS); unset: {@link DEFAULT_CHANGE_PARTITIONS} on one
   * Redis, {@link DEFAULT_CLUSTER_CHANGE_PARTITIONS} on a cluster. Only the first start of a deployment sets it:
   * the count is stored in Redis (`runwatch:partitions`) and later starts use the stored one (job keys are named
   * after their partition), reporting a different configured count through onError.
   */
  changePartitions?: number;
  /** Milliseconds an unacknowledged change waits before another instance takes it over (RUNWATCH_CHANGE_CLAIM_MS; default 5000). */
  changeClaimIdleMs?: number;
  /** Entries kept per change-log partition (approximately; default {@link DEFAULT_CHANGE_LOG_MAXLEN}). */
  changeLogMaxLen?: number;
}

/** Options of {@link createRedisClusterBackend}: those of one Redis but the URL, and the seed nodes. */
export interface RedisClusterBackendOptions extends Omit<RedisBackendOptions, 'url'> {
  /** Seed nodes (REDIS_CLUSTER_NODES): any reachable node will do, the client discovers the others. */
  nodes: { host: string; port: number }[];
  /** Options of every node connection (password, TLS, …). */
  redisOptions?: RedisOptions;
}

/** Default number of change-log partitions on one Redis. */
export const DEFAULT_CHANGE_PARTITIONS = 4;
/**
 * Default number of change-log partitions on a Redis Cluster: job keys live in their partition's slot, so
 * partitions are what spreads jobs over masters; 16 evenly spaced slots (redis-keys.ts partitionTag) put
 * 5 or 6 on each of 3 masters, 4 on each of 4, and so on. Raise it (at the first start) for more than 8 masters.
 */
export const DEFAULT_CLUSTER_CHANGE_PARTITIONS = 16;
/**
 * Default entries kept per change-log partition (approximately). An entry carries the job's record (about 1 KB plus
 * its metadata), so 4 partitions hold about 40 MB with small metadata. Trimming does not wait for consumers: the
 * projectors must not fall this far behind (they read within milliseconds; see docs/operations.md).
 */
export const DEFAULT_CHANGE_LOG_MAXLEN = 10_000;

/** Default retention: 30 days, in seconds. */
export const DEFAULT_RETENTION_SECONDS = 30 * 24 * 3600;

/** Milliseconds between index sweeps: half the retention, from 0.5 s to 60 s. */
export const sweepIntervalMs = (retentionSeconds: number) => Math.min(60_000, Math.max(500, (retentionSeconds * 1000) / 2));

/** Options every connection of one Redis shares: reconnect every 100..1000 ms, one retry per command. */
const COMMON: RedisOptions = {
  maxRetriesPerRequest: 1,
  retryStrategy: (times) => Math.min(times * 100, 1000),
  connectTimeout: 2000,
};

/**
 * Connects to one Redis (two connections: commands, and subscriptions) and
 * resolves once both are ready. Every promise on these connections is
 * handled: an outage never ends the process.
 * @throws Error when Redis cannot be reached within `connectTimeoutMs` (default 10 s).
 */
export async function createRedisBackend(opts: RedisBackendOptions): Promise<Backend> {
  // Commands fail fast while Redis is away instead of queueing without bound.
  const commands = new Redis(opts.url, { ...COMMON, enableOfflineQueue: false, commandTimeout: 3000 });
  // Subscriptions are re-established by RedisChannels, not by ioredis (see redis-channels.ts).
  const subscriber = new Redis(opts.url, { ...COMMON, enableOfflineQueue: false, autoResubscribe: false });
  const outage = trackOutage([commands, subscriber], opts);
  await awaitReady([commands, subscriber], opts.connectTimeoutMs, `cannot reach Redis at ${redactUrl(opts.url)}`);
  outage.started();
  return assemble(commands, opts, {
    kind: 'redis',
    sharded: false,
    defaultPartitions: DEFAULT_CHANGE_PARTITIONS,
    channels: (hooks) => new RedisChannels(subscriber, hooks),
    connect: () => new Redis(opts.url, { ...COMMON, enableOfflineQueue: false }),
    queueConnection: () => new Redis(opts.url, { maxRetriesPerRequest: null, retryStrategy: (times) => Math.min(times * 100, 1000) }),
    close: () => {
      outage.stop();
      commands.disconnect();
      subscriber.disconnect();
    },
  });
}

/**
 * Connects to a Redis Cluster (Redis 7: sharded pub/sub) through `nodes` and resolves once the cluster client
 * is ready (it has the slot map and reaches the masters). Commands go to the master of their key's slot and
 * fail fast (no offline queue) while their master is unreachable or failing over (SERVICE_UNAVAILABLE);
 * subscriptions are one SSUBSCRIBE per channel per instance on the master owning the channel
 * ({@link RedisShardedChannels}), re-established and caught up from history after a failover or slot move.
 * Every promise is handled: a node outage never ends the process.
 * @throws Error when the cluster cannot be reached within `connectTimeoutMs` (default 10 s).
 */
export async function createRedisClusterBackend(opts: RedisClusterBackendOptions): Promise<Backend> {
  const nodeOptions: RedisOptions = { ...COMMON, ...opts.redisOptions };
  const clusterOptions = (extra: Partial<ClusterOptions> = {}): ClusterOptions => ({
    // Fail fast: no queue while the cluster is not ready; a command whose node is down fails with its error.
    enableOfflineQueue: false,
    // During a failover: MOVED/ASK are followed a few times, CLUSTERDOWN/TRYAGAIN retried briefly, then fail.
    maxRedirections: 4,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    retryDelayOnFailover: 100,
    clusterRetryStrategy: (times) => Math.min(times * 100, 1000),
    slotsRefreshTimeout: 2000,
    redisOptions: { ...nodeOptions, commandTimeout: 3000 },
    ...extra,
  });
  const commands = new Cluster(opts.nodes, clusterOptions());
  const seeds = opts.nodes.map((n) => `${n.host}:${n.port}`).join(',');
  const outage = trackOutage([commands], opts);
  await awaitReady([commands], opts.connectTimeoutMs, `cannot reach the Redis Cluster at ${seeds}`);
  outage.started();
  let sharded: RedisShardedChannels | null = null;
  return assemble(commands, opts, {
    kind: 'redis-cluster',
    sharded: true,
    defaultPartitions: DEFAULT_CLUSTER_CHANGE_PARTITIONS,
    channels: (hooks) => {
      // A shard subscriber's loss is an outage like the command connection's (see RedisBackendOptions.onConnectionChange).
      sharded = new RedisShardedChannels(
        commands,
        {
          onLost: () => {
            outage.shardsDown(true);
            hooks.onLost();
          },
          onResubscribed: () => {
            outage.shardsDown(false);
            hooks.onResubscribed();
          },
          onError: hooks.onError,
        },
        { connection: nodeOptions, onConnectionError: (_node, error) => opts.onConnectionError?.(error) },
      );
      return sharded;
    },
    connect: () => new Cluster(opts.nodes, clusterOptions({ redisOptions: nodeOptions })),
    // BullMQ blocks on its worker connection and needs `maxRetriesPerRequest: null`; its keys share the queue's tag.
    queueConnection: () => new Cluster(opts.nodes, { redisOptions: { ...opts.redisOptions, maxRetriesPerRequest: null }, clusterRetryStrategy: (times) => Math.min(times * 100, 1000) }),
    close: () => {
      outage.stop();
      sharded?.close();
      commands.disconnect();
    },
  });
}

/** What differs between one Redis and a cluster when {@link assemble} builds the backend. */
interface Wiring {
  kind: Backend['kind'];
  /** SPUBLISH in the commit scripts (a cluster) instead of PUBLISH. */
  sharded: boolean;
  defaultPartitions: number;
  /** The bus's channel set, made with the bus's hooks. */
  channels: (hooks: RedisChannelsHooks) => PubSubChannels;
  /** A new connection for a projector's reads. */
  connect: () => RedisClient;
  /** A new connection for BullMQ. */
  queueConnection: () => RedisClient;
  /** Ends the connections `assemble` did not make. */
  close: () => void;
}

/** The backend's parts on a ready command connection (one Redis or a cluster). */
async function assemble(commands: RedisClient, opts: Omit<RedisBackendOptions, 'url'>, wiring: Wiring): Promise<Backend> {
  let partitions: number;
  try {
    partitions = await storedPartitions(commands, opts.changePartitions ?? wiring.defaultPartitions);
  } catch (error) {
    wiring.close();
    throw error;
  }
  if (opts.changePartitions !== undefined && opts.changePartitions !== partitions) {
    opts.onError(
      'RUNWATCH_CHANGE_PARTITIONS',
      new Error(`set to ${opts.changePartitions}, but this Redis was started with ${partitions} change partitions (runwatch:partitions); using ${partitions}: job keys are named after their partition. To change it, see docs/operations.md "Moving to a Redis Cluster"`),
    );
  }
  const keys = new RedisKeyspace(partitions);
  const retentionSeconds = opts.retentionSeconds ?? DEFAULT_RETENTION_SECONDS;
  const owned = opts.owned ?? JOB_OWNED;
  const changeLogMaxLen = opts.changeLogMaxLen ?? DEFAULT_CHANGE_LOG_MAXLEN;
  const logs = new RedisTopicLogStore(commands, {
    historySize: opts.historySize,
    keys,
    sharded: wiring.sharded,
    layouts: { [jobTopic('')]: jobLogLayout(keys, retentionSeconds, owned) },
    owned,
    changeLogMaxLen,
  });
  const store = new RedisJobStore(commands, logs, { retentionSeconds, keys, changeLogMaxLen });
  const changes = new RedisChangeFeed(commands, {
    partitions,
    consumer: `${process.pid}-${newEpoch()}`,
    claimIdleMs: opts.changeClaimIdleMs,
    connect: wiring.connect,
    onError: opts.onError,
  });
  const sweeper = setInterval(() => {
    if (commands.status !== 'ready') return; // an outage is reported elsewhere; the next sweep catches up
    store.sweep().catch((error: unknown) => {
      if (!isRedisUnreachable(error) && !isUnavailable(error)) opts.onError('retention sweep', error);
    });
  }, sweepIntervalMs(retentionSeconds));
  sweeper.unref();
  const bus = new RedisEventBus(wiring.channels, keys, (topic, error) => opts.onError(`pubsub ${topic}`, error));
  const queues = new BullWorkQueues(wiring.queueConnection, opts.onError);
  return {
    kind: wiring.kind,
    store,
    bus,
    logs,
    deadlines: new RedisDeadlineIndex(commands),
    queues,
    changes,
    close: async () => {
      clearInterval(sweeper);
      await queues.close();
      await changes.close();
      await bus.close();
      wiring.close();
    },
  };
}

/**
 * The deployment's change-partition count: the one stored at `runwatch:partitions` (SET NX by the first start,
 * with `wanted`). Accepts only a positive integer.
 */
async function storedPartitions(redis: RedisClient, wanted: number): Promise<number> {
  await redis.set(PARTITIONS_KEY, String(wanted), 'NX');
  const stored = Number(await redis.get(PARTITIONS_KEY));
  if (!Number.isInteger(stored) || stored < 1) throw new Error(`${PARTITIONS_KEY} holds ${stored}, not a positive integer`);
  return stored;
}

/** Resolves once every client is ready. @throws Error `<what> within <ms> ms` after `timeoutMs` (default 10 s), disconnecting them. */
async function awaitReady(clients: RedisClient[], timeoutMs = 10_000, what: string): Promise<void> {
  const ready = (client: RedisClient) =>
    client.status === 'ready' ? Promise.resolve() : new Promise<void>((resolve) => client.once('ready', () => resolve()));
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      Promise.all(clients.map(ready)),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } catch (error) {
    for (const client of clients) client.disconnect();
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Turns the connections' events into one "down" and one "up" notice per
 * outage: errors while Redis is known to be down are only counted. On a
 * cluster, a shard subscriber that is down (`shardsDown(true)`) counts too.
 */
function trackOutage(clients: RedisClient[], opts: Omit<RedisBackendOptions, 'url'>) {
  let started = false;
  let stopped = false;
  let downSince: number | null = null;
  let lastError: string | undefined;
  let shardsDown = false;
  const check = () => {
    if (!started || stopped) return;
    const allReady = clients.every((c) => c.status === 'ready') && !shardsDown;
    if (downSince === null && !allReady) {
      downSince = Date.now();
      opts.onConnectionChange?.(false, { error: lastError });
    } else if (downSince !== null && allReady) {
      const downMs = Date.now() - downSince;
      downSince = null;
      lastError = undefined;
      opts.onConnectionChange?.(true, { downMs });
    }
  };
  for (const client of clients) {
    client.on('error', (error: Error) => {
      lastError = error.message;
      opts.onConnectionError?.(error);
    });
    client.on('close', check);
    client.on('end', check);
    client.on('ready', check);
  }
  return {
    started: () => {
      started = true;
    },
    stop: () => {
      stopped = true;
    },
    shardsDown: (down: boolean) => {
      shardsDown = down;
      check();
    },
  };
}

/** The URL without its password, for logs and errors. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'redis://<unparseable>';
  }
}
