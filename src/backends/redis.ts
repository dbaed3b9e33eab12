/**
 * Redis backend: job state, history and pub/sub shared by every instance.
 *
 * Keys (all under the `runwatch:` prefix; one Redis node, see docs/operations.md):
 * - `runwatch:job:<id>`          hash {v: version, data: JSON record, idem: its idempotency key's name}
 * - `runwatch:job:<id>:events`   stream of the job's events, entry id `<offset>-0`,
 *                                approximately the newest RUNWATCH_HISTORY kept (XADD MAXLEN ~)
 * - `runwatch:jobs:<inst>:<env>` sorted set of the tenant's job ids by creation time (ms)
 * - `runwatch:idem:<inst>:<env>:<key>` idempotency key → "<jobId>\n<fingerprint>", 7 days
 * - `runwatch:retention`         sorted set of finished jobs ("<tenant index key>\n<id>") by
 *                                removal time (Redis TIME, seconds), for the index sweep
 * Channels: `runwatch:<topic>`, e.g. `runwatch:job:<id>`.
 *
 * Retention: the commit that finishes a job also sets, in the same script, an
 * expiry of RUNWATCH_RETENTION_DAYS on the record, its history, its idempotency
 * key (unless that expires sooner) and its training and command logs, and adds
 * it to `runwatch:retention`. Redis removes the keys; a sweep on every instance
 * (and `list` on the way) removes the expired ids from the tenant indexes.
 * Unfinished jobs never expire.
 *
 * Updates are compare-and-set: read the record and its version, compute the
 * change in TypeScript (the domain is the single source of the rules), then a
 * Lua script commits the record, appends the events to the stream and
 * PUBLISHes them only if the version is unchanged — otherwise the update is
 * retried. Redis runs the script atomically, so every instance sees one order.
 * Concurrent updates of one job on one instance are combined into one read and
 * one compare-and-set (see {@link RedisJobStore.update}).
 */
import { Redis, type RedisOptions } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { DomainError, isUnavailable, notFound } from '../domain/errors.js';
import type { JobChange, JobEvent, JobRecord, Tenant } from '../domain/job.js';
import { RedisChannels } from './redis-channels.js';
import { RedisTopicLogStore } from './redis-log.js';
import { TopicFanout } from './topic-fanout.js';
import {
  jobLogTopics,
  type Backend,
  type BusEvent,
  type CatchUp,
  type EventBus,
  type HistoryRead,
  type JobFilter,
  type JobStore,
  type ListPosition,
  type RetentionOptions,
} from './types.js';

/** Prefix of every key and channel. */
export const KEY_PREFIX = 'runwatch:';
/** The Redis channel of a topic. */
export const channelFor = (topic: string) => `${KEY_PREFIX}${topic}`;
/** The key of a job's record. */
export const jobKey = (id: string) => `${KEY_PREFIX}job:${id}`;
const streamKey = (id: string) => `${KEY_PREFIX}job:${id}:events`;
const part = (s: string) => encodeURIComponent(s);
const tenantJobsKey = (t: Tenant) => `${KEY_PREFIX}jobs:${part(t.institute)}:${part(t.environment)}`;
const idemKey = (t: Tenant, key: string) => `${KEY_PREFIX}idem:${part(t.institute)}:${part(t.environment)}:${part(key)}`;
const logKeys = (topic: string) => [`${KEY_PREFIX}log:${topic}`, `${KEY_PREFIX}log:${topic}:events`];
/** Sorted set of finished jobs by removal time; see the header. */
export const RETENTION_KEY = `${KEY_PREFIX}retention`;
const retentionMember = (job: JobRecord) => `${tenantJobsKey(job.tenant)}\n${job.id}`;
/** Most expired jobs one sweep step removes from the indexes. */
const SWEEP_BATCH = 500;
const IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600;
const MAX_CAS_ATTEMPTS = 200;
/** Most job records {@link RedisJobStore} remembers as last committed (see `committed`). */
const COMMITTED_CACHE_SIZE = 1000;
/** Versions at or above this are random first versions (see {@link firstVersion}); records created before had version 0. */
const RANDOM_VERSION_FLOOR = 2 ** 30;

/**
 * A record's first version, random in [2^30, 2^40): a record created again
 * under the same key (restored after it expired, or after Redis lost its data)
 * starts from another number, so a version names one state of one
 * incarnation of the record and a cached `(version, data)` pair can be
 * checked by the compare-and-set alone. (Lua prints integers below 10^14 exactly.)
 */
const firstVersion = () => String(RANDOM_VERSION_FLOOR + Math.floor(Math.random() * (2 ** 40 - RANDOM_VERSION_FLOOR)));

// KEYS: 1 record, 2 tenant index, 3 idempotency key ('' when none).
// ARGV: 1 data, 2 createdAt, 3 id, 4 idempotency value, 5 its TTL, 6 first version.
const CREATE_LUA = `
if KEYS[3] ~= '' then
  local seen = redis.call('GET', KEYS[3])
  if seen then return seen end
  redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[5])
end
redis.call('HSET', KEYS[1], 'v', ARGV[6], 'data', ARGV[1])
if KEYS[3] ~= '' then redis.call('HSET', KEYS[1], 'idem', KEYS[3]) end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return false
`;

// ARGV: 1 data, 2 createdAt, 3 id, 4 retention seconds (0: unfinished), 5 retention member, 6 first version.
const RESTORE_LUA = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[6], 'data', ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
local ttl = tonumber(ARGV[4])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('ZADD', KEYS[3], tonumber(redis.call('TIME')[1]) + ttl, ARGV[5])
end
return 1
`;

// KEYS: 1 record, 2 history, 3 retention set, then the keys that expire with the job
// (idempotency key, training and command logs; '' when absent).
// ARGV: 1 expected version, 2 data, 3 channel, 4 maxlen, 5 retention seconds (0: unfinished),
// 6 retention member, then (offset, json) per event.
// The first commit of a finished job sets every expiry (one that would end sooner stays)
// and adds the job to the retention set; later commits keep them (a history stream
// created after that, e.g. for a restored job, gets the record's expiry).
const CAS_LUA = `
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return -1 end
if v ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', tostring(tonumber(v) + 1), 'data', ARGV[2])
for i = 7, #ARGV, 2 do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], ARGV[i] .. '-0', 'e', ARGV[i + 1])
  redis.call('PUBLISH', ARGV[3], ARGV[i + 1])
end
local ttl = tonumber(ARGV[5])
if ttl > 0 then
  local left = redis.call('PTTL', KEYS[1])
  if left == -1 then
    for k = 1, #KEYS do
      if k ~= 3 and KEYS[k] ~= '' then
        local current = redis.call('TTL', KEYS[k])
        if current == -1 or current > ttl then redis.call('EXPIRE', KEYS[k], ttl) end
      end
    end
    redis.call('ZADD', KEYS[3], tonumber(redis.call('TIME')[1]) + ttl, ARGV[6])
  elseif left > 0 and redis.call('TTL', KEYS[2]) == -1 then
    redis.call('PEXPIRE', KEYS[2], left)
  end
end
return 1
`;

// KEYS: 1 retention set. ARGV: 1 batch size, 2 record key prefix.
// Removes due jobs whose record is gone from their tenant index; returns how many were due.
const SWEEP_LUA = `
local now = tonumber(redis.call('TIME')[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, member in ipairs(due) do
  local sep = string.find(member, '\\n', 1, true)
  local index = string.sub(member, 1, sep - 1)
  local id = string.sub(member, sep + 1)
  local left = redis.call('TTL', ARGV[2] .. id)
  if left == -2 then
    redis.call('ZREM', index, id)
    redis.call('ZREM', KEYS[1], member)
  elseif left == -1 then
    redis.call('ZREM', KEYS[1], member)
  else
    redis.call('ZADD', KEYS[1], now + left, member)
  end
end
return #due
`;

type ScriptedRedis = Redis & {
  runwatchCreate(jobKey: string, tenantKey: string, idemKey: string, ...args: (string | number)[]): Promise<string | null>;
  runwatchCas(...keysThenArgs: (string | number)[]): Promise<number>;
  runwatchRestore(jobKey: string, tenantKey: string, retentionKey: string, ...args: (string | number)[]): Promise<number>;
  runwatchSweep(retentionKey: string, batch: number, recordPrefix: string): Promise<number>;
};

const UNAVAILABLE = /Stream isn't writeable|Connection is closed|ECONNREFUSED|ECONNRESET|Command timed out|EPIPE|max retries/i;

/** Maps "Redis is unreachable" failures to SERVICE_UNAVAILABLE; everything else passes through. */
async function guard<T>(redis: Redis, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (error) {
    if (error instanceof DomainError) throw error;
    const message = error instanceof Error ? error.message : String(error);
    if (redis.status !== 'ready' || UNAVAILABLE.test(message)) {
      throw new DomainError('SERVICE_UNAVAILABLE', 'the backend (Redis) is unreachable; retry later');
    }
    throw error;
  }
}

/** One caller of {@link RedisJobStore.update} waiting for its change to be committed. */
interface PendingUpdate {
  change: (job: JobRecord) => JobChange | null;
  resolve: (change: JobChange | null) => void;
  reject: (error: unknown) => void;
}

/** {@link JobStore} on Redis. */
export class RedisJobStore implements JobStore {
  private readonly redis: ScriptedRedis;
  /** Updates waiting for the next commit of their job, by job id, in arrival order. */
  private readonly queued = new Map<string, PendingUpdate[]>();
  /** Jobs with a commit in flight on this instance. */
  private readonly committing = new Set<string>();
  /**
   * The record this instance last committed, per job: its version, its JSON and
   * its idempotency key. The next update of the job starts from it instead of
   * reading the record first (one Redis round trip fewer per report); if another
   * instance committed since, the compare-and-set fails and the update re-reads.
   * Only random first versions (records created since versions were randomized) are trusted.
   */
  private readonly committed = new LRUCache<string, { version: string; data: string; idem: string | null }>({ max: COMMITTED_CACHE_SIZE });

  /**
   * @param historySize RUNWATCH_HISTORY: events kept per job (approximately).
   * @param retention how long finished jobs are kept (see the header).
   */
  constructor(
    redis: Redis,
    private readonly historySize: number,
    private readonly retention: RetentionOptions,
  ) {
    redis.defineCommand('runwatchCreate', { numberOfKeys: 3, lua: CREATE_LUA });
    redis.defineCommand('runwatchRestore', { numberOfKeys: 3, lua: RESTORE_LUA });
    redis.defineCommand('runwatchSweep', { numberOfKeys: 1, lua: SWEEP_LUA });
    // The CAS script's number of keys varies (see CAS_LUA): it is the first argument.
    redis.defineCommand('runwatchCas', { lua: CAS_LUA });
    this.redis = redis as ScriptedRedis;
  }

  /**
   * Removes the ids of jobs whose retention ended from their tenant indexes
   * (Redis already removed their keys). Idempotent, safe on every instance at once.
   * @returns how many jobs were due.
   */
  async sweep(): Promise<number> {
    let total = 0;
    for (;;) {
      const due = await this.redis.runwatchSweep(RETENTION_KEY, SWEEP_BATCH, jobKey(''));
      total += due;
      if (due < SWEEP_BATCH) return total;
    }
  }

  create(job: JobRecord, idem?: { key: string; fingerprint: string }) {
    return guard(this.redis, async () => {
      const seen = await this.redis.runwatchCreate(
        jobKey(job.id),
        tenantJobsKey(job.tenant),
        idem ? idemKey(job.tenant, idem.key) : '',
        JSON.stringify(job),
        job.createdAt,
        job.id,
        idem ? `${job.id}\n${idem.fingerprint}` : '',
        IDEMPOTENCY_TTL_SECONDS,
        firstVersion(),
      );
      if (seen === null) return { job, created: true };
      const [id, fingerprint] = seen.split('\n') as [string, string];
      const existing = await this.get(id);
      if (!existing) throw notFound(id);
      return { job: existing, created: false, fingerprint };
    });
  }

  get(id: string) {
    return guard(this.redis, async () => {
      const data = await this.redis.hget(jobKey(id), 'data');
      return data === null ? null : (JSON.parse(data) as JobRecord);
    });
  }

  list(tenant: Tenant, filter: JobFilter, first: number, after: ListPosition | null) {
    return guard(this.redis, async () => {
      const key = tenantJobsKey(tenant);
      const jobs: JobRecord[] = [];
      const batch = Math.max(50, first * 2);
      const max = after ? String(after.createdAt) : '+inf';
      for (let offset = 0; ; offset += batch) {
        const rows = await this.redis.zrevrangebyscore(key, max, '-inf', 'WITHSCORES', 'LIMIT', offset, batch);
        if (rows.length === 0) return { jobs, hasNextPage: false };
        const ids: string[] = [];
        for (let i = 0; i < rows.length; i += 2) {
          const id = rows[i]!;
          if (after && Number(rows[i + 1]) === after.createdAt && id >= after.id) continue;
          ids.push(id);
        }
        const pipeline = this.redis.pipeline();
        for (const id of ids) pipeline.hget(jobKey(id), 'data');
        const results = (await pipeline.exec()) ?? [];
        // Ids whose record expired (retention) leave the index now rather than at the next sweep.
        const gone = ids.filter((_, i) => results[i] && !results[i]![0] && results[i]![1] === null);
        if (gone.length > 0) await this.redis.zrem(key, ...gone);
        for (const [error, data] of results) {
          if (error || typeof data !== 'string') continue;
          const job = JSON.parse(data) as JobRecord;
          if (filter.status?.length && !filter.status.includes(job.status)) continue;
          if (filter.kind?.length && !filter.kind.includes(job.kind)) continue;
          if (jobs.length === first) return { jobs, hasNextPage: true };
          jobs.push(job);
        }
        if (rows.length < batch * 2) return { jobs, hasNextPage: false };
      }
    });
  }

  /**
   * {@link JobStore.update} with per-job flat combining: while one commit of a
   * job is in flight on this instance, later updates of that job queue up and
   * are applied together, in arrival order, on one read and one
   * compare-and-set. Many workers reporting to one job therefore cost O(1)
   * Redis round trips per batch instead of a read-and-retry storm; the domain
   * still sees the changes one at a time (gap-free offsets, conflation rules,
   * exact counts). A change that throws fails only its own caller.
   * (Flat combining: Hendler, Incze, Shavit, Tzafrir, SPAA 2010.)
   */
  update(id: string, change: (job: JobRecord) => JobChange | null): Promise<JobChange | null> {
    return new Promise((resolve, reject) => {
      let queue = this.queued.get(id);
      if (!queue) this.queued.set(id, (queue = []));
      queue.push({ change, resolve, reject });
      if (!this.committing.has(id)) void this.drain(id);
    });
  }

  /** Commits the job's queued updates, batch after batch, until none is left. Never rejects. */
  private async drain(id: string): Promise<void> {
    this.committing.add(id);
    try {
      for (let batch = this.queued.get(id); batch && batch.length > 0; batch = this.queued.get(id)) {
        this.queued.delete(id);
        try {
          await this.commitBatch(id, batch);
        } catch (error) {
          for (const pending of batch) pending.reject(error);
        }
      }
    } finally {
      this.committing.delete(id);
    }
  }

  /**
   * Reads the job once, applies every queued change in order and commits the
   * result with one compare-and-set, retried from a fresh read when another
   * instance won. Settles each caller with its own change (or error).
   */
  private commitBatch(id: string, batch: PendingUpdate[]): Promise<void> {
    return guard(this.redis, async () => {
      for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
        const known = attempt === 0 ? this.committed.get(id) : undefined;
        this.committed.delete(id);
        const [version, data, idem] = known ? [known.version, known.data, known.idem] : await this.redis.hmget(jobKey(id), 'v', 'data', 'idem');
        if (version == null || data == null) throw notFound(id);
        let job = JSON.parse(data) as JobRecord;
        const events: JobEvent[] = [];
        const outcomes: ({ ok: true; change: JobChange | null } | { ok: false; error: unknown })[] = [];
        for (const pending of batch) {
          try {
            const result = pending.change(job);
            if (result) {
              job = result.job;
              events.push(...result.events);
            }
            outcomes.push({ ok: true, change: result });
          } catch (error) {
            outcomes.push({ ok: false, error });
          }
        }
        let committed = 1;
        let nextData = data;
        let nextVersion = version;
        if (outcomes.some((o) => o.ok && o.change)) {
          const finished = job.finishedAt !== null;
          const keys = [jobKey(id), streamKey(id), RETENTION_KEY];
          if (finished) keys.push(idem ?? '', ...jobLogTopics(id).flatMap(logKeys));
          nextData = JSON.stringify(job);
          nextVersion = String(Number(version) + 1);
          const args: (string | number)[] = [
            version,
            nextData,
            channelFor(`job:${id}`),
            this.historySize,
            finished ? this.retention.retentionSeconds : 0,
            finished ? retentionMember(job) : '',
          ];
          for (const event of events) args.push(event.offset, JSON.stringify(event));
          committed = await this.redis.runwatchCas(keys.length, ...keys, ...args);
        } else if (known) {
          // Nothing to commit, so no compare-and-set vouched for the remembered record: answer from a fresh read.
          continue;
        }
        if (committed === -1) throw notFound(id);
        if (committed === 1) {
          if (Number(version) >= RANDOM_VERSION_FLOOR) this.committed.set(id, { version: nextVersion, data: nextData, idem: idem ?? null });
          batch.forEach((pending, i) => {
            const outcome = outcomes[i]!;
            if (outcome.ok) pending.resolve(outcome.change);
            else pending.reject(outcome.error);
          });
          return;
        }
      }
      throw new Error(`job ${id}: too much contention (${MAX_CAS_ATTEMPTS} compare-and-set attempts)`);
    });
  }

  restore(job: JobRecord) {
    return guard(this.redis, async () => {
      const restored = await this.redis.runwatchRestore(
        jobKey(job.id),
        tenantJobsKey(job.tenant),
        RETENTION_KEY,
        JSON.stringify(job),
        job.createdAt,
        job.id,
        job.finishedAt !== null ? this.retention.retentionSeconds : 0,
        retentionMember(job),
        firstVersion(),
      );
      return restored === 1;
    });
  }

  history(id: string, afterOffset: number): Promise<HistoryRead> {
    return guard(this.redis, async () => {
      const job = await this.get(id);
      if (!job) return { events: [], covered: false };
      if (afterOffset >= job.offset) return { events: [], covered: true };
      const entries = await this.redis.xrange(streamKey(id), `${afterOffset + 1}-0`, '+');
      const events = entries.map(([, fields]) => JSON.parse(fields[1]!) as JobEvent);
      return { events, covered: events.length > 0 && events[0]!.offset === afterOffset + 1 };
    });
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
 * {@link EventBus} on Redis pub/sub: one SUBSCRIBE per channel per instance
 * ({@link RedisChannels}), released when the topic's last local listener
 * leaves, also while Redis is away. A malformed message is logged and dropped.
 * After a reconnect every open topic catches up from history (onReconnect).
 */
export class RedisEventBus implements EventBus {
  private readonly fanout: TopicFanout<string>;
  private readonly channels: RedisChannels;
  private readonly catchUps = new Map<string, { catchUp: CatchUp<BusEvent>; isReset?: (event: BusEvent) => boolean }>();
  private recovering: Promise<void> | null = null;
  private recoverAgain = false;
  private closed = false;

  constructor(
    subscriber: Redis,
    private readonly onError: (topic: string, error: unknown) => void,
  ) {
    this.channels = new RedisChannels(subscriber, {
      onLost: () => this.fanout.holdAll(),
      onResubscribed: () => this.startRecovery(),
      onError: (context, error) => onError(context, error),
    });
    this.fanout = new TopicFanout<string>(
      async (topic, deliver) => {
        const channel = channelFor(topic);
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

  /** The subscriber connection (diagnostics and fault-injection tests). */
  get subscriber(): Redis {
    return this.channels.subscriber;
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
  onReconnect<E extends BusEvent>(topicPrefix: string, catchUp: CatchUp<E>, isReset?: (event: E) => boolean) {
    this.catchUps.set(topicPrefix, {
      catchUp: catchUp as unknown as CatchUp<BusEvent>,
      isReset: isReset as ((event: BusEvent) => boolean) | undefined,
    });
  }

  private catchUpFor(topic: string): { catchUp: CatchUp<BusEvent>; isReset?: (event: BusEvent) => boolean } | undefined {
    for (const [prefix, entry] of this.catchUps) if (topic.startsWith(prefix)) return entry;
    return undefined;
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
            const entry = this.catchUpFor(topic);
            const events = (await entry?.catchUp(topic, last)) ?? [];
            // Live events held back since the connection dropped follow the caught-up ones, in offset order.
            this.fanout.resume(topic, events, entry?.isReset);
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
  }
}

/** Options of {@link createRedisBackend}. */
export interface RedisBackendOptions {
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
   * and ends when both are ready again.
   */
  onConnectionChange?: (up: boolean, info: { downMs?: number; error?: string }) => void;
  /** Most milliseconds to wait for Redis at start. */
  connectTimeoutMs?: number;
  /** Seconds a finished job is kept (RUNWATCH_RETENTION_DAYS); default 30 days. */
  retentionSeconds?: number;
}

/** Default retention: 30 days, in seconds. */
export const DEFAULT_RETENTION_SECONDS = 30 * 24 * 3600;

/** Milliseconds between index sweeps: half the retention, from 0.5 s to 60 s. */
export const sweepIntervalMs = (retentionSeconds: number) => Math.min(60_000, Math.max(500, (retentionSeconds * 1000) / 2));

/**
 * Connects to Redis (two connections: commands, and subscriptions) and
 * resolves once both are ready. Every promise on these connections is
 * handled: an outage never ends the process.
 * @throws Error when Redis cannot be reached within `connectTimeoutMs` (default 10 s).
 */
export async function createRedisBackend(opts: RedisBackendOptions): Promise<Backend> {
  const common: RedisOptions = {
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(times * 100, 1000),
    connectTimeout: 2000,
  };
  // Commands fail fast while Redis is away instead of queueing without bound.
  const commands = new Redis(opts.url, { ...common, enableOfflineQueue: false, commandTimeout: 3000 });
  // Subscriptions are re-established by RedisChannels, not by ioredis (see redis-channels.ts).
  const subscriber = new Redis(opts.url, { ...common, enableOfflineQueue: false, autoResubscribe: false });
  const outage = trackOutage([commands, subscriber], opts);
  const ready = (client: Redis) =>
    client.status === 'ready' ? Promise.resolve() : new Promise<void>((resolve) => client.once('ready', () => resolve()));
  const timeoutMs = opts.connectTimeoutMs ?? 10_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      Promise.all([ready(commands), ready(subscriber)]),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`cannot reach Redis at ${redactUrl(opts.url)} within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
  } catch (error) {
    commands.disconnect();
    subscriber.disconnect();
    throw error;
  } finally {
    clearTimeout(timer);
  }
  outage.started();
  const retentionSeconds = opts.retentionSeconds ?? DEFAULT_RETENTION_SECONDS;
  const store = new RedisJobStore(commands, opts.historySize, { retentionSeconds });
  const sweeper = setInterval(() => {
    if (commands.status !== 'ready') return; // an outage is reported elsewhere; the next sweep catches up
    store.sweep().catch((error: unknown) => opts.onError('retention sweep', error));
  }, sweepIntervalMs(retentionSeconds));
  sweeper.unref();
  const bus = new RedisEventBus(subscriber, (topic, error) => opts.onError(`pubsub ${topic}`, error));
  const logs = new RedisTopicLogStore(commands, opts.historySize);
  return {
    kind: 'redis',
    store,
    bus,
    logs,
    close: async () => {
      clearInterval(sweeper);
      outage.stop();
      await bus.close();
      commands.disconnect();
      subscriber.disconnect();
    },
  };
}

/**
 * Turns the connections' events into one "down" and one "up" notice per
 * outage: errors while Redis is known to be down are only counted.
 */
function trackOutage(clients: Redis[], opts: RedisBackendOptions) {
  let started = false;
  let stopped = false;
  let downSince: number | null = null;
  let lastError: string | undefined;
  const check = () => {
    if (!started || stopped) return;
    const allReady = clients.every((c) => c.status === 'ready');
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
    client.on('ready', check);
  }
  return {
    started: () => {
      started = true;
    },
    stop: () => {
      stopped = true;
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
