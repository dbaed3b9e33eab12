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
 */
import { RedisPubSub } from 'graphql-redis-subscriptions';
import { Redis, type RedisOptions } from 'ioredis';
import { DomainError, notFound } from '../domain/errors.js';
import type { JobChange, JobEvent, JobRecord, Tenant } from '../domain/job.js';
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

const CREATE_LUA = `
if KEYS[3] ~= '' then
  local seen = redis.call('GET', KEYS[3])
  if seen then return seen end
  redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[5])
end
redis.call('HSET', KEYS[1], 'v', '0', 'data', ARGV[1])
if KEYS[3] ~= '' then redis.call('HSET', KEYS[1], 'idem', KEYS[3]) end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return false
`;

// ARGV: 1 data, 2 createdAt, 3 id, 4 retention seconds (0: unfinished), 5 retention member.
const RESTORE_LUA = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'v', '0', 'data', ARGV[1])
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

/** {@link JobStore} on Redis. */
export class RedisJobStore implements JobStore {
  private readonly redis: ScriptedRedis;

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

  update(id: string, change: (job: JobRecord) => JobChange | null) {
    return guard(this.redis, async () => {
      for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
        const [version, data, idem] = await this.redis.hmget(jobKey(id), 'v', 'data', 'idem');
        if (version == null || data == null) throw notFound(id);
        const result = change(JSON.parse(data) as JobRecord);
        if (!result) return null;
        const finished = result.job.finishedAt !== null;
        const keys = [jobKey(id), streamKey(id), RETENTION_KEY];
        if (finished) keys.push(idem ?? '', ...jobLogTopics(id).flatMap(logKeys));
        const args: (string | number)[] = [
          version,
          JSON.stringify(result.job),
          channelFor(`job:${id}`),
          this.historySize,
          finished ? this.retention.retentionSeconds : 0,
          finished ? retentionMember(result.job) : '',
        ];
        for (const event of result.events) args.push(event.offset, JSON.stringify(event));
        const committed = await this.redis.runwatchCas(keys.length, ...keys, ...args);
        if (committed === -1) throw notFound(id);
        if (committed === 1) return result;
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
 * {@link EventBus} on Redis pub/sub through graphql-redis-subscriptions'
 * RedisPubSub: one SUBSCRIBE per channel per instance, released when the
 * topic's last local listener leaves. A malformed message is logged and dropped.
 */
export class RedisEventBus implements EventBus {
  private readonly fanout: TopicFanout<number>;
  private readonly catchUps = new Map<string, CatchUp<BusEvent>>();
  private lost = false;
  private recovering: Promise<void> | null = null;

  constructor(
    readonly pubsub: RedisPubSub,
    private readonly onError: (topic: string, error: unknown) => void,
  ) {
    const subscriber = pubsub.getSubscriber() as Redis;
    subscriber.on('close', () => {
      this.lost = true;
    });
    subscriber.on('ready', () => {
      if (!this.lost) return;
      this.lost = false;
      this.recovering ??= this.recover().finally(() => {
        this.recovering = null;
      });
    });
    this.fanout = new TopicFanout<number>(
      (topic, deliver) =>
        pubsub.subscribe(channelFor(topic), (message: unknown) => {
          if (isBusEvent(message)) deliver(message);
          else onError(topic, new Error('malformed message dropped'));
        }),
      (_topic, subId) => pubsub.unsubscribe(subId),
      onError,
    );
  }

  subscribe<E extends BusEvent = JobEvent>(topic: string, listener: (event: E) => void) {
    return this.fanout.subscribe(topic, listener);
  }
  topicCount() {
    return this.fanout.size;
  }
  onReconnect<E extends BusEvent>(topicPrefix: string, catchUp: CatchUp<E>) {
    this.catchUps.set(topicPrefix, catchUp as unknown as CatchUp<BusEvent>);
  }

  private catchUpFor(topic: string): CatchUp<BusEvent> | undefined {
    for (const [prefix, catchUp] of this.catchUps) if (topic.startsWith(prefix)) return catchUp;
    return undefined;
  }

  /**
   * After a reconnect: ioredis has re-sent every SUBSCRIBE; a PING on the same
   * connection returns after them, so from then on nothing published is
   * missed. Then each open topic catches up from history. A topic whose
   * catch-up fails (Redis flapping) is retried with backoff, up to ~30 s.
   */
  private async recover(): Promise<void> {
    const subscriber = this.pubsub.getSubscriber() as Redis;
    await subscriber.ping();
    const pending = this.fanout.openTopics();
    for (let attempt = 0; pending.length > 0 && attempt < 30; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(200 * attempt, 2000)));
      for (let i = pending.length - 1; i >= 0; i--) {
        const { topic, last } = pending[i]!;
        try {
          const events = (await this.catchUpFor(topic)?.(topic, last)) ?? [];
          for (const event of events) this.fanout.inject(topic, event);
          pending.splice(i, 1);
        } catch (error) {
          this.onError(topic, error);
        }
      }
    }
  }

  async close() {}
}

/** Options of {@link createRedisBackend}. */
export interface RedisBackendOptions {
  url: string;
  historySize: number;
  /** Called for pub/sub and connection errors (logging). */
  onError: (context: string, error: unknown) => void;
  /** Called when the connection goes down or comes back. */
  onConnectionChange?: (up: boolean) => void;
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
 * resolves once both are ready.
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
  // The subscriber queues its (re)subscriptions and ioredis re-subscribes after a reconnect.
  const subscriber = new Redis(opts.url, { ...common, enableOfflineQueue: true });
  let up = false;
  for (const client of [commands, subscriber]) {
    client.on('error', (error) => opts.onError('redis', error));
  }
  commands.on('ready', () => {
    if (!up) opts.onConnectionChange?.((up = true));
  });
  commands.on('close', () => {
    if (up) opts.onConnectionChange?.((up = false));
  });
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
  const pubsub = new RedisPubSub({ publisher: commands, subscriber });
  const retentionSeconds = opts.retentionSeconds ?? DEFAULT_RETENTION_SECONDS;
  const store = new RedisJobStore(commands, opts.historySize, { retentionSeconds });
  const sweeper = setInterval(() => {
    if (commands.status !== 'ready') return; // an outage is reported elsewhere; the next sweep catches up
    store.sweep().catch((error: unknown) => opts.onError('retention sweep', error));
  }, sweepIntervalMs(retentionSeconds));
  sweeper.unref();
  const bus = new RedisEventBus(pubsub, (topic, error) => opts.onError(`pubsub ${topic}`, error));
  const logs = new RedisTopicLogStore(commands, opts.historySize);
  return {
    kind: 'redis',
    store,
    bus,
    logs,
    close: async () => {
      clearInterval(sweeper);
      commands.disconnect();
      subscriber.disconnect();
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
