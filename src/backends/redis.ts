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
 * - `runwatch:{<P>}:changes:lease:<projector>` which instance works partition P for a projector
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
 * The parts: key names (redis-keys.ts), the topic-log store with the one
 * commit script (redis-log.ts), the job index (redis-jobs.ts), the event bus
 * (redis-bus.ts), the change feed (redis-changes.ts); this file wires them.
 *
 * A job is a topic log (redis-log.ts): the log `job:<id>` whose state is the
 * job record. Its updates are that log's compare-and-set commits: the change
 * is computed in TypeScript (the domain is the single source of the rules) and
 * one Lua script commits the record, appends the events to the stream, XADDs
 * the change to the change log and publishes the events only if the version
 * is unchanged — otherwise the update is recomputed. Redis runs the script
 * atomically, so every instance sees one order; concurrent updates of one job
 * on one instance share one commit. What a job has beyond its log (the
 * tenant index, the idempotency table and retention) is in redis-jobs.ts.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { isUnavailable } from '../domain/errors.js';
import { newEpoch } from '../domain/ids.js';
import { JOB_OWNED, jobTopic, type JobOwnedTopics } from '../domain/topics.js';
import { BullWorkQueues } from './bullmq-queue.js';
import { RedisEventBus } from './redis-bus.js';
import { RedisChangeFeed } from './redis-changes.js';
import { RedisChannels, type PubSubChannels, type RedisChannelsHooks } from './redis-channels.js';
import { RedisDeadlineIndex } from './redis-deadlines.js';
import { jobLogLayout, RedisJobStore } from './redis-jobs.js';
import { PARTITIONS_KEY, RedisKeyspace } from './redis-keys.js';
import { isRedisUnreachable, RedisTopicLogStore, type RedisClient } from './redis-log.js';
import { RedisShardedChannels } from './redis-sharded-channels.js';
import type { Backend } from './types.js';

export { KEY_PREFIX, RedisKeyspace } from './redis-keys.js';
export type { RedisClient } from './redis-log.js';
export { RedisEventBus } from './redis-bus.js';
export { CREATE_GRACE_MS, jobLogLayout, RedisJobStore } from './redis-jobs.js';
export { isRedisUnreachable } from './redis-log.js';
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
  /** Milliseconds a change-log partition lease lives without renewal: how long a killed instance's partitions wait for another instance (RUNWATCH_CHANGE_CLAIM_MS; default 5000). */
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
    // Node connections queue while connecting (ioredis forces it) but a command never waits over 3 s.
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
    leaseMs: opts.changeClaimIdleMs,
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
