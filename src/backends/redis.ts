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
 * - `runwatch:{deadlines:<n>}`   16 sorted sets of job ids by next stall check (ms); see redis-deadlines.ts
 * - `runwatch:{q:<name>}:…`      BullMQ's keys of a work queue (webhook deliveries); see bullmq-queue.ts
 * - `runwatch:changes:{<p>}`     partition p of the change log (stream; redis-changes.ts): the create
 *                                and update scripts XADD each job creation / change with events to
 *                                the job's partition in the same atomic step
 * Channels: `runwatch:<topic>`, e.g. `runwatch:job:<id>`.
 *
 * Retention: the commit that finishes a job also sets, in the same script, an
 * expiry of RUNWATCH_RETENTION_DAYS on the record, its history, its idempotency
 * key (unless that expires sooner) and its training and command logs, and adds
 * it to `runwatch:retention`. Redis removes the keys; a sweep on every instance
 * (and `list` on the way) removes the expired ids from the tenant indexes.
 * Unfinished jobs never expire.
 *
 * A job is a topic log (redis-log.ts): the log `job:<id>` whose state is the
 * job record. Its updates are that log's compare-and-set commits: the change
 * is computed in TypeScript (the domain is the single source of the rules) and
 * one Lua script commits the record, appends the events to the stream and
 * PUBLISHes them only if the version is unchanged — otherwise the update is
 * recomputed. Redis runs the script atomically, so every instance sees one
 * order; concurrent updates of one job on one instance share one commit.
 * What a job has beyond its log is here: the tenant index, the idempotency
 * table and retention.
 */
import { Redis, type RedisOptions } from 'ioredis';
import { DomainError, isUnavailable, notFound } from '../domain/errors.js';
import type { JobChange, JobEvent, JobRecord, Tenant } from '../domain/job.js';
import { BullWorkQueues } from './bullmq-queue.js';
import { changePartition, creationChange, updateChange } from '../domain/changes.js';
import { newEpoch } from '../domain/ids.js';
import { JOB_OWNED, jobTopic, type JobOwnedTopics } from '../domain/topics.js';
import { RedisChangeFeed } from './redis-changes.js';
import { RedisChannels } from './redis-channels.js';
import { RedisDeadlineIndex } from './redis-deadlines.js';
import {
  changesKey,
  channelFor,
  idemKey,
  jobEventsKey,
  jobKey,
  logEventsKey,
  logHeadKey,
  RETENTION_KEY,
  retentionMember,
  tenantJobsKey,
} from './redis-keys.js';
import { firstVersion, RedisTopicLogStore, type RedisLogLayout } from './redis-log.js';
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

export { channelFor, jobKey, KEY_PREFIX, RETENTION_KEY } from './redis-keys.js';
/** Most expired jobs one sweep step removes from the indexes. */
const SWEEP_BATCH = 500;
const IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600;

// KEYS: 1 record, 2 tenant index, 3 idempotency key ('' when none), 4 change-log partition.
// ARGV: 1 data, 2 createdAt, 3 id, 4 idempotency value, 5 its TTL, 6 first version, 7 change JSON, 8 change-log maxlen.
const CREATE_LUA = `
if KEYS[3] ~= '' then
  local seen = redis.call('GET', KEYS[3])
  if seen then return seen end
  redis.call('SET', KEYS[3], ARGV[4], 'EX', ARGV[5])
end
redis.call('HSET', KEYS[1], 'v', ARGV[6], 'data', ARGV[1])
if KEYS[3] ~= '' then redis.call('HSET', KEYS[1], 'idem', KEYS[3]) end
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[8], '*', 'c', ARGV[7])
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
  runwatchCreate(jobKey: string, tenantKey: string, idemKey: string, changesKey: string, ...args: (string | number)[]): Promise<string | null>;
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

/**
 * The layout of jobs' topic logs (see {@link RedisLogLayout}): the record hash
 * `runwatch:job:<id>` {v, data: the record's JSON, idem: its idempotency key's
 * name} and the history stream `runwatch:job:<id>:events`. The head's epoch
 * and offset are the record's. A missing job is NOT_FOUND, never created by a
 * commit. The commit that finishes a job retains it: the record, its history,
 * its idempotency key and its training and command logs expire
 * `retentionSeconds` later, and the job joins the retention set.
 */
export function jobLogLayout(retentionSeconds: number, owned: JobOwnedTopics = JOB_OWNED, partitions = 1): RedisLogLayout<JobRecord> {
  const idOf = (topic: string) => topic.slice(jobTopic('').length);
  return {
    headKey: (topic) => jobKey(idOf(topic)),
    eventsKey: (topic) => jobEventsKey(idOf(topic)),
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
            member: retentionMember(head.state!),
            keys: [idem ?? '', ...owned.of(idOf(topic)).flatMap((t) => [logHeadKey(t), logEventsKey(t)])],
          },
    changesKey: (change) => changesKey(changePartition(change.jobId, partitions)),
  };
}

/** {@link JobStore} on Redis: each job is the topic log `job:<id>` of `logs` (see {@link jobLogLayout}), plus the tenant index and idempotency table. */
export class RedisJobStore implements JobStore {
  private readonly redis: ScriptedRedis;

  /**
   * @param logs the topic-log store, with {@link jobLogLayout} for `job:` topics.
   * @param retention how long finished jobs are kept (see the header).
   */
  constructor(
    redis: Redis,
    private readonly logs: RedisTopicLogStore,
    private readonly retention: RetentionOptions & { partitions: number; changeLogMaxLen: number },
  ) {
    redis.defineCommand('runwatchCreate', { numberOfKeys: 4, lua: CREATE_LUA });
    redis.defineCommand('runwatchRestore', { numberOfKeys: 3, lua: RESTORE_LUA });
    redis.defineCommand('runwatchSweep', { numberOfKeys: 1, lua: SWEEP_LUA });
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
        changesKey(changePartition(job.id, this.retention.partitions)),
        JSON.stringify(job),
        job.createdAt,
        job.id,
        idem ? `${job.id}\n${idem.fingerprint}` : '',
        IDEMPOTENCY_TTL_SECONDS,
        firstVersion(),
        JSON.stringify(creationChange(job)),
        this.retention.changeLogMaxLen,
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
 * {@link EventBus} on Redis pub/sub: one SUBSCRIBE per channel per instance
 * ({@link RedisChannels}), released when the topic's last local listener
 * leaves, also while Redis is away. A malformed message is logged and dropped.
 * After a reconnect every open topic's gap is filled by the gap handler (onGap).
 */
export class RedisEventBus implements EventBus {
  private readonly fanout: TopicFanout<string>;
  private readonly channels: RedisChannels;
  private gapHandler: GapHandler | null = null;
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
  /** The topic logs that belong to a job (default domain/topics.ts JOB_OWNED). */
  owned?: JobOwnedTopics;
  /** Partitions of the change log (RUNWATCH_CHANGE_PARTITIONS; default 4). */
  changePartitions?: number;
  /** Milliseconds a change-log partition lease lives without renewal: how long a killed instance's partitions wait for another instance (RUNWATCH_CHANGE_CLAIM_MS; default 5000). */
  changeClaimIdleMs?: number;
  /** Entries kept per change-log partition (approximately; default {@link DEFAULT_CHANGE_LOG_MAXLEN}). */
  changeLogMaxLen?: number;
}

/** Default number of change-log partitions. */
export const DEFAULT_CHANGE_PARTITIONS = 4;
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
  const owned = opts.owned ?? JOB_OWNED;
  const partitions = opts.changePartitions ?? DEFAULT_CHANGE_PARTITIONS;
  const changeLogMaxLen = opts.changeLogMaxLen ?? DEFAULT_CHANGE_LOG_MAXLEN;
  const logs = new RedisTopicLogStore(commands, {
    historySize: opts.historySize,
    retentionKey: RETENTION_KEY,
    layouts: { [jobTopic('')]: jobLogLayout(retentionSeconds, owned, partitions) },
    owned,
    changeLogMaxLen,
  });
  const store = new RedisJobStore(commands, logs, { retentionSeconds, partitions, changeLogMaxLen });
  const changes = new RedisChangeFeed(commands, {
    partitions,
    consumer: `${process.pid}-${newEpoch()}`,
    leaseMs: opts.changeClaimIdleMs,
    connect: () => new Redis(opts.url, { ...common, enableOfflineQueue: false }),
    onError: opts.onError,
  });
  const sweeper = setInterval(() => {
    if (commands.status !== 'ready') return; // an outage is reported elsewhere; the next sweep catches up
    store.sweep().catch((error: unknown) => opts.onError('retention sweep', error));
  }, sweepIntervalMs(retentionSeconds));
  sweeper.unref();
  const bus = new RedisEventBus(subscriber, (topic, error) => opts.onError(`pubsub ${topic}`, error));
  const queues = new BullWorkQueues(opts.url, opts.onError);
  return {
    kind: 'redis',
    store,
    bus,
    logs,
    deadlines: new RedisDeadlineIndex(commands),
    queues,
    changes,
    close: async () => {
      clearInterval(sweeper);
      await queues.close();
      outage.stop();
      await changes.close();
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
