/**
 * {@link TopicLogStore} on Redis: the one compare-and-set commit of every
 * topic log, jobs included (a job is the topic log `job:<id>` whose state is
 * the job record; redis.ts adds its tenant index and idempotency table).
 *
 * Where a log lives is its {@link RedisLogLayout}; every name comes from the
 * deployment's {@link RedisKeyspace} (redis-keys.ts) and carries the topic's
 * hash tag, so a commit's keys share one Redis Cluster slot:
 * - by default, for a topic `t` (e.g. `training:<runId>`): `runwatch:{…}:log:<t>`,
 *   a hash {v: version, epoch, offset, state: JSON}, and `runwatch:{…}:log:<t>:events`;
 * - jobs (layout given by redis-jobs.ts): `runwatch:{…}:job:<id>` {v, data: the record without its steps,
 *   `step:<seq>`: one field per step, written only when it changed}
 *   and `runwatch:{…}:job:<id>:events`.
 * History is a stream with entry ids `<offset>-0`, about the newest
 * RUNWATCH_HISTORY kept (XADD MAXLEN ~). Events are published on
 * `runwatch:{…}:<t>` (PUBLISH on one Redis, SPUBLISH — sharded pub/sub — on a
 * Redis Cluster), notices on the other topic's channel.
 *
 * A commit reads the head (or starts from the one this instance committed
 * last), computes the change in TypeScript, and {@link COMMIT_LUA} writes the
 * head, XADDs and publishes only if the version is unchanged, else the change
 * is recomputed from a fresh read. Concurrent appends to one topic on one
 * instance are combined into one read and one script call ({@link FlatCombiner}).
 * A log that Redis lost is recreated with a new epoch, so cursors into the
 * lost history are detected.
 *
 * The script touches only keys of the head's slot (its history, the owning
 * job's record, its partition's retention set and change-log stream); a notice
 * whose channel is in another slot (never for runwatch's own topics, see
 * domain/topics.ts placementOf) is published right after the commit instead.
 */
import type { Cluster, Redis } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { DomainError, notFound } from '../domain/errors.js';
import { newEpoch } from '../domain/ids.js';
import { FlatCombiner, type Pending } from './flat-combining.js';
import { sameSlot, type RedisKeyspace } from './redis-keys.js';
import { stringifyWithSteps } from './step-json.js';
import { assertConsecutive, historyCovers, type LogCommit, type LogCommitted, type LogHead, type HistoryRead, type TopicLogStore } from './topic-log.js';
import type { BusEvent } from './types.js';
import type { JobChangeRecord } from '../domain/changes.js';
import { JOB_OWNED, type JobOwnedTopics } from '../domain/topics.js';

const MAX_CAS_ATTEMPTS = 200;
/** Most heads {@link RedisTopicLogStore} remembers as last committed by this instance. */
const REMEMBERED_HEADS = 1000;
/** Versions at or above this are random first versions (see {@link firstVersion}); older records and logs started at 0. */
const RANDOM_VERSION_FLOOR = 2 ** 30;

/**
 * A head's first version, random in [2^30, 2^40): a head created again under
 * the same key (restored after it expired, or after Redis lost its data) starts
 * from another number, so a version names one state of one incarnation of the
 * head and a remembered `(version, head)` pair is checked by the compare-and-set
 * alone. (Lua prints integers below 10^14 exactly.)
 */
export const firstVersion = () => String(RANDOM_VERSION_FLOOR + Math.floor(Math.random() * (2 ** 40 - RANDOM_VERSION_FLOOR)));

/** Expiries a commit sets when it leaves its log finished: see {@link RedisLogLayout.retention}. */
export interface RetentionExpiry {
  /** Seconds until the head, its history and `keys` are removed. */
  seconds: number;
  /** The retention set (in the head's slot: redis-keys.ts RedisKeyspace.retention) the member joins. */
  set: string;
  /** Member added to the retention set with the removal time as score. */
  member: string;
  /** Further keys removed with the head (in the head's slot). */
  keys: string[];
}

/** Where and how one family of topic logs is kept in Redis. */
export interface RedisLogLayout<S = unknown> {
  /** Key of the head: a hash whose field `v` is its version. */
  headKey(topic: string): string;
  /** Key of the history stream. */
  eventsKey(topic: string): string;
  /** The head's hash fields besides `v`, in the order {@link decode} and {@link retention} get their values. */
  readonly fields: readonly string[];
  /**
   * The head from its stored field values (`values`, in the order of {@link fields}) and, for a layout with
   * {@link partsPrefix}, the hash's part fields (name → value); null when they are incomplete.
   */
  decode(values: readonly (string | null)[], parts?: Readonly<Record<string, string>>): LogHead<S> | null;
  /**
   * Field/value pairs a commit writes for its new head; fields it leaves out keep their value. `previous` is the
   * head the commit started from (the stored one: the compare-and-set guarantees it), null for a creation: a
   * layout with parts writes only the parts that changed since it.
   */
  encode(head: LogHead<S>, previous: LogHead<S> | null): string[];
  /**
   * Set for a head whose state is split into many hash fields named `<partsPrefix>…` besides {@link fields}
   * (a job's steps: redis-jobs.ts): the head is then read with HGETALL, and {@link removed} names the part fields a
   * commit deletes.
   */
  readonly partsPrefix?: string;
  /** Part fields (see {@link partsPrefix}) of `previous` that `head` no longer has, deleted by the commit. */
  removed?(head: LogHead<S>, previous: LogHead<S> | null): string[];
  /** The head a commit starts from when the log does not exist. @throws DomainError (e.g. NOT_FOUND) when a missing log must not be created. */
  missing(topic: string): LogHead<S>;
  /** The job whose record's retention the log shares and without which it is refused (see TopicLogStore.append), or null. */
  owner(topic: string): string | null;
  /** The expiries of a commit that leaves the log in `head` (values: the stored fields); null while it is kept. */
  retention(topic: string, head: LogHead<S>, values: readonly (string | null)[]): RetentionExpiry | null;
  /** The change-log stream a commit's job change is XADDed to (jobs only; see redis-changes.ts). */
  changesKey?(change: JobChangeRecord): string;
}

/** The layout of every topic log but jobs: `runwatch:{…}:log:<t>` {v, epoch, offset, state}; `owned` tells which belong to a job. */
const logLayout = (keys: RedisKeyspace, owned: JobOwnedTopics): RedisLogLayout => ({
  headKey: (topic) => keys.logHead(topic),
  eventsKey: (topic) => keys.logEvents(topic),
  fields: ['epoch', 'offset', 'state'],
  decode: ([epoch, offset, state]) => (epoch == null || offset == null || state == null ? null : { epoch, offset: Number(offset), state: JSON.parse(state) }),
  encode: (head) => ['epoch', head.epoch, 'offset', String(head.offset), 'state', JSON.stringify(head.state)],
  missing: () => ({ epoch: newEpoch(), offset: 0, state: null }),
  owner: owned.ownerOf,
  retention: () => null,
});

// The one commit of a topic log (jobs included). Every key is in the head's slot.
// KEYS: 1 head, 2 history stream, 3 the owning job's record, 4 retention set, 5 change-log partition stream
//       (3..5: the head key itself when there is none: a placeholder in the same slot), 6.. keys removed
//       with the head when it is retained.
// ARGV: 1 expected version ('' = must not exist), 2 new version, 3 channel, 4 history maxlen,
//       5 seconds of its own expiry (0: none; set again by every commit), 6 retention seconds (0: kept),
//       7 retention member, 8 change JSON ('' none), 9 change-log maxlen, 10 m, then m (field, value) pairs of the head,
//       then d, d fields of the head deleted (before the pairs are written), then n, n × (offset, event JSON),
//       then (channel, JSON) notices up to the end.
// Returns 1 committed, 0 version changed (recompute), -1 the owning job is gone, -2 the head is gone.
// A job-owned log takes its job's expiry. The first commit that retains a head sets the expiry of
// the head, its history and KEYS[6..] (a key that would expire sooner keeps its own) and adds the
// member to the retention set; later commits keep those. The history always expires with the head.
// Publishes with PUBLISH (one Redis) or SPUBLISH (Redis Cluster: see shardedScript).
const COMMIT_LUA = `
local none = KEYS[1]
local ownerTtl = -1
if KEYS[3] ~= none then
  ownerTtl = redis.call('PTTL', KEYS[3])
  if ownerTtl == -2 then return -1 end
end
local v = redis.call('HGET', KEYS[1], 'v')
if ARGV[1] == '' then
  if v then return 0 end
elseif not v then
  return -2
elseif v ~= ARGV[1] then
  return 0
end
local m = tonumber(ARGV[10])
local head = {'v', ARGV[2]}
for i = 11, 10 + 2 * m do head[#head + 1] = ARGV[i] end
local i = 11 + 2 * m
local d = tonumber(ARGV[i])
if d > 0 then redis.call('HDEL', KEYS[1], unpack(ARGV, i + 1, i + d)) end
i = i + 1 + d
redis.call('HSET', KEYS[1], unpack(head))
if KEYS[5] ~= none and ARGV[8] ~= '' then
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[9], '*', 'c', ARGV[8])
end
local n = tonumber(ARGV[i])
i = i + 1
for _ = 1, n do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], ARGV[i] .. '-0', 'e', ARGV[i + 1])
  redis.call('PUBLISH', ARGV[3], ARGV[i + 1])
  i = i + 2
end
while i <= #ARGV do
  redis.call('PUBLISH', ARGV[i], ARGV[i + 1])
  i = i + 2
end
if ARGV[5] ~= '0' then
  redis.call('EXPIRE', KEYS[1], ARGV[5])
elseif ownerTtl > 0 then
  redis.call('PEXPIRE', KEYS[1], ownerTtl)
end
local ttl = tonumber(ARGV[6])
if ttl > 0 and redis.call('PTTL', KEYS[1]) == -1 then
  local retained = {KEYS[1], KEYS[2]}
  for k = 6, #KEYS do retained[#retained + 1] = KEYS[k] end
  for _, key in ipairs(retained) do
    local current = redis.call('TTL', key)
    if current == -1 or current > ttl then redis.call('EXPIRE', key, ttl) end
  end
  redis.call('ZADD', KEYS[4], tonumber(redis.call('TIME')[1]) + ttl, ARGV[7])
end
local headTtl = redis.call('PTTL', KEYS[1])
if headTtl > 0 then redis.call('PEXPIRE', KEYS[2], headTtl) end
return 1
`;

/**
 * A script for a Redis Cluster: sharded pub/sub (Redis 7) instead of classic. In a script on a cluster, the
 * channel of SPUBLISH must be in the script's slot (it is: a topic's channel carries its keys' tag); a
 * classic PUBLISH would be broadcast to every node of the cluster.
 */
export const shardedScript = (lua: string) => lua.replaceAll("redis.call('PUBLISH'", "redis.call('SPUBLISH'");

/** The command connection: one Redis, or a Redis Cluster (ioredis `Cluster`: every command goes to its key's master). */
export type RedisClient = Redis | Cluster;

type ScriptedRedis = RedisClient & { runwatchLogCommit(...keysThenArgs: (string | number)[]): Promise<number> };

/**
 * Failures that mean "Redis is unreachable right now": the connection is down, or, on a Redis Cluster, the
 * cluster is failing over (CLUSTERDOWN, TRYAGAIN, a MOVED/ASK the client could not follow in time, no
 * reachable node, a stale slot map, a write sent to a master just demoted: READONLY), or the master refuses
 * writes while no replica is in sync (`min-replicas-to-write`: NOREPLICAS), or is loading its data.
 */
const UNAVAILABLE =
  /Stream isn't writeable|Connection is closed|ECONNREFUSED|ECONNRESET|Command timed out|EPIPE|max retries|CLUSTERDOWN|TRYAGAIN|^MOVED|^ASK|Too many Cluster redirections|Cluster isn't ready|None of startup nodes is available|Failed to refresh slots cache|MasterDown|LOADING|NOREPLICAS|READONLY/i;

/** Whether an error from ioredis means the backend is unreachable now (see {@link UNAVAILABLE}). */
export const isRedisUnreachable = (error: unknown) => UNAVAILABLE.test(error instanceof Error ? error.message : String(error));

/** Maps "Redis is unreachable" failures of `op` to SERVICE_UNAVAILABLE; everything else passes through. */
export async function guard<T>(redis: RedisClient, op: () => Promise<T>): Promise<T> {
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

/** A head as read (or as last committed by this instance): its version, stored field values and decoded form. */
interface StoredHead {
  version: string;
  values: (string | null)[];
  head: LogHead<unknown>;
}

type Change = (head: LogHead<unknown>) => LogCommit<unknown, BusEvent> | null;
type Outcome = { ok: true; value: LogCommitted<unknown, BusEvent> | null } | { ok: false; error: unknown };

/** Options of {@link RedisTopicLogStore}. */
export interface RedisTopicLogOptions {
  /** RUNWATCH_HISTORY: events kept per log (approximately). */
  historySize: number;
  /** The deployment's key and channel names. */
  keys: RedisKeyspace;
  /** True on a Redis Cluster: SPUBLISH (sharded pub/sub) instead of PUBLISH. */
  sharded?: boolean;
  /** Layouts by topic prefix (e.g. `job:`); other topics use the default `runwatch:log:<t>` layout. */
  layouts?: Record<string, RedisLogLayout<unknown>>;
  /** Which topic logs belong to a job (default domain/topics.ts JOB_OWNED). */
  owned?: JobOwnedTopics;
  /** Entries kept per change-log partition (approximately; default 10 000). */
  changeLogMaxLen?: number;
}

/** {@link TopicLogStore} on Redis; see the header. */
export class RedisTopicLogStore implements TopicLogStore {
  private readonly redis: ScriptedRedis;
  private readonly combiner = new FlatCombiner<Change, LogCommitted<unknown, BusEvent> | null>((topic, batch) => this.commitBatch(topic, batch));
  /**
   * The head this instance last committed, per topic. The next commit starts
   * from it instead of reading first (one Redis round trip fewer per report);
   * if another instance committed since, the compare-and-set fails and the
   * commit re-reads. Only random first versions are trusted.
   */
  private readonly remembered = new LRUCache<string, StoredHead>({ max: REMEMBERED_HEADS });

  constructor(
    redis: RedisClient,
    private readonly opts: RedisTopicLogOptions,
  ) {
    // The script's number of keys varies: it is the first argument.
    redis.defineCommand('runwatchLogCommit', { lua: opts.sharded ? shardedScript(COMMIT_LUA) : COMMIT_LUA });
    this.redis = redis as ScriptedRedis;
    this.layouts = Object.entries(opts.layouts ?? {});
    this.defaultLayout = logLayout(opts.keys, opts.owned ?? JOB_OWNED);
  }

  private readonly defaultLayout: RedisLogLayout<unknown>;

  /** The layouts by prefix, listed once (looked up on every commit and read). */
  private readonly layouts: readonly (readonly [string, RedisLogLayout<unknown>])[];

  private layoutFor(topic: string): RedisLogLayout<unknown> {
    for (const [prefix, layout] of this.layouts) if (topic.startsWith(prefix)) return layout;
    return this.defaultLayout;
  }

  private async read(topic: string, layout: RedisLogLayout<unknown>): Promise<StoredHead | null> {
    if (layout.partsPrefix !== undefined) {
      const hash = await this.redis.hgetall(layout.headKey(topic));
      const values = layout.fields.map((f) => hash[f] ?? null);
      const head = hash.v === undefined ? null : layout.decode(values, hash);
      return head ? { version: hash.v!, values, head } : null;
    }
    const [version, ...values] = await this.redis.hmget(layout.headKey(topic), 'v', ...layout.fields);
    const head = version == null ? null : layout.decode(values);
    return head ? { version: version!, values, head } : null;
  }

  /** {@link TopicLogStore.head}. @throws DomainError SERVICE_UNAVAILABLE when Redis (or the slot's master) is unreachable. */
  head<S>(topic: string): Promise<LogHead<S> | null> {
    return guard(this.redis, async () => {
      const stored = await this.read(topic, this.layoutFor(topic));
      return stored ? ({ ...stored.head } as LogHead<S>) : null;
    });
  }

  /**
   * {@link TopicLogStore.append}; concurrent appends to one topic on this
   * instance share one read and one compare-and-set, and each caller's change
   * still sees the head its predecessors left (gap-free offsets, exact counts).
   * A change that throws fails only its own caller.
   * @throws DomainError NOT_FOUND when the owning job (or, for a job's log, the job) is gone; SERVICE_UNAVAILABLE when
   *   Redis (or the slot's master) is unreachable; Error after 200 lost compare-and-sets (contention across instances).
   */
  append<S, E extends BusEvent, V = undefined>(topic: string, change: (head: LogHead<S>) => LogCommit<S, E, V> | null): Promise<LogCommitted<S, E, V> | null> {
    return guard(this.redis, () => this.combiner.submit(topic, change as unknown as Change) as Promise<LogCommitted<S, E, V> | null>);
  }

  /** Applies a batch of changes in order on one head and commits them with one script call, re-read and recomputed when another writer won. */
  private async commitBatch(topic: string, batch: readonly Pending<Change, LogCommitted<unknown, BusEvent> | null>[]): Promise<void> {
    const layout = this.layoutFor(topic);
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const known = attempt === 0 ? this.remembered.get(topic) : undefined;
      this.remembered.delete(topic);
      const current = known ?? (await this.read(topic, layout));
      let head = current?.head ?? layout.missing(topic);
      const events: BusEvent[] = [];
      const notices: string[] = [];
      let ttlSeconds = 0;
      let change: JobChangeRecord | undefined;
      const outcomes: Outcome[] = batch.map((pending) => {
        try {
          const commit = pending.item({ ...head });
          if (!commit) return { ok: true, value: null };
          assertConsecutive(topic, head.offset, commit.events);
          head = { epoch: head.epoch, offset: head.offset + commit.events.length, state: commit.state };
          events.push(...commit.events);
          for (const { topic: other, message } of commit.notify ?? []) notices.push(this.opts.keys.channel(other), JSON.stringify(message));
          if (commit.ttlSeconds !== undefined) ttlSeconds = commit.ttlSeconds;
          // Combined commits of one job: the newest change carries the newest record (projectors read absolute state).
          if (commit.change) change = mergeChanges(change, commit.change);
          return { ok: true, value: { ...commit, epoch: head.epoch } };
        } catch (error) {
          return { ok: false, error };
        }
      });
      if (!outcomes.some((o) => o.ok && o.value)) {
        // Nothing to commit, so no compare-and-set vouched for a remembered head: answer from a fresh read.
        if (known) continue;
        settle(batch, outcomes);
        return;
      }
      const version = current ? String(Number(current.version) + 1) : firstVersion();
      const fields = layout.encode(head, current?.head ?? null);
      const removed = layout.removed?.(head, current?.head ?? null) ?? [];
      const values = current ? [...current.values] : layout.fields.map(() => null);
      storeValues(layout, values, fields);
      const retained = layout.retention(topic, head, values);
      const owner = layout.owner(topic);
      const changesKey = change && layout.changesKey ? layout.changesKey(change) : '';
      const headKey = layout.headKey(topic);
      const keys = [
        headKey,
        layout.eventsKey(topic),
        owner === null ? headKey : this.opts.keys.job(owner),
        retained ? retained.set : headKey,
        changesKey || headKey,
        ...(retained?.keys.filter(Boolean) ?? []),
      ];
      // Notices on a channel of another slot cannot be published by the script (see the header).
      const inSlot: string[] = [];
      const later: string[] = [];
      for (let n = 0; n < notices.length; n += 2) (sameSlot(notices[n]!, headKey) ? inSlot : later).push(notices[n]!, notices[n + 1]!);
      const args: (string | number)[] = [
        current?.version ?? '',
        version,
        this.opts.keys.channel(topic),
        this.opts.historySize,
        ttlSeconds,
        retained?.seconds ?? 0,
        retained?.member ?? '',
        changesKey ? stringifyWithSteps(change) : '',
        this.opts.changeLogMaxLen ?? 10_000,
        fields.length / 2,
        ...fields,
        removed.length,
        ...removed,
        events.length,
      ];
      for (const event of events) args.push(event.offset, stringifyWithSteps(event));
      args.push(...inSlot);
      const committed = await this.redis.runwatchLogCommit(keys.length, ...keys, ...args);
      if (committed === -1) throw notFound(owner!);
      if (committed !== 1) continue; // another writer won (0), or the head is gone (-2): read again
      // Best effort, like any publication: a notice means "recompute", and a lost one is caught up by the next.
      if (later.length > 0) await this.publishNotices(later).catch(() => {});
      if (Number(version) > RANDOM_VERSION_FLOOR) this.remembered.set(topic, { version, values, head });
      settle(batch, outcomes);
      return;
    }
    throw new Error(`topic ${topic}: too much contention (${MAX_CAS_ATTEMPTS} compare-and-set attempts)`);
  }

  /**
   * Creates `topic`'s log with `head` unless it exists: the one commit script with "must not exist" as its
   * compare-and-set, no events. A head the layout retains (a finished job) gets its expiry and joins the
   * retention set as a commit would give it; `change` (a job's creation) is XADDed to the change log in the same
   * step; `fields` are further (field, value) pairs of the head hash (e.g. a job's idempotency key's name).
   * The head is remembered, so this instance's first append to it needs no read.
   * @returns true when created, false when the log existed (nothing changed).
   */
  async create<S>(topic: string, head: LogHead<S>, opts: { change?: JobChangeRecord; fields?: string[] } = {}): Promise<boolean> {
    const layout = this.layoutFor(topic);
    const version = firstVersion();
    const fields = [...layout.encode(head as LogHead<unknown>, null), ...(opts.fields ?? [])];
    const values = layout.fields.map(() => null as string | null);
    storeValues(layout, values, fields);
    const retained = layout.retention(topic, head as LogHead<unknown>, values);
    const headKey = layout.headKey(topic);
    const changesKey = opts.change && layout.changesKey ? layout.changesKey(opts.change) : '';
    const keys = [headKey, layout.eventsKey(topic), headKey, retained ? retained.set : headKey, changesKey || headKey, ...(retained?.keys.filter(Boolean) ?? [])];
    const args: (string | number)[] = [
      '',
      version,
      this.opts.keys.channel(topic),
      this.opts.historySize,
      0,
      retained?.seconds ?? 0,
      retained?.member ?? '',
      changesKey ? stringifyWithSteps(opts.change) : '',
      this.opts.changeLogMaxLen ?? 10_000,
      fields.length / 2,
      ...fields,
      0,
      0,
    ];
    const created = (await this.redis.runwatchLogCommit(keys.length, ...keys, ...args)) === 1;
    if (created) this.remembered.set(topic, { version, values, head: { ...head } as LogHead<unknown> });
    return created;
  }

  /** Publishes (channel, message) pairs one by one (notices outside the commit's slot). */
  private async publishNotices(pairs: string[]): Promise<void> {
    for (let n = 0; n < pairs.length; n += 2) {
      if (this.opts.sharded) await this.redis.spublish(pairs[n]!, pairs[n + 1]!);
      else await this.redis.publish(pairs[n]!, pairs[n + 1]!);
    }
  }

  /** {@link TopicLogStore.history}. @throws DomainError SERVICE_UNAVAILABLE when Redis (or the slot's master) is unreachable. */
  history<E extends BusEvent>(topic: string, afterOffset: number): Promise<HistoryRead<E>> {
    return guard(this.redis, () => this.readHistory<E>(topic, afterOffset));
  }

  private async readHistory<E extends BusEvent>(topic: string, afterOffset: number): Promise<HistoryRead<E>> {
    const layout = this.layoutFor(topic);
    const current = await this.read(topic, layout);
    if (!current) return { events: [], covered: false };
    if (afterOffset >= current.head.offset) return { events: [], covered: true };
    const entries = await this.redis.xrange(layout.eventsKey(topic), `${afterOffset + 1}-0`, '+');
    const events = entries.map(([, fields]) => JSON.parse(fields[1]!) as E);
    return { events, covered: historyCovers(afterOffset, current.head.offset, events) };
  }
}

/**
 * One change record for several commits of one job combined into one script call: the newest record and offset,
 * the event types of all of them in order (a STARTED and a COMPLETED combined still tell both transitions).
 */
function mergeChanges(older: JobChangeRecord | undefined, newer: JobChangeRecord): JobChangeRecord {
  return older ? { ...newer, types: [...older.types, ...newer.types] } : newer;
}

/** Puts the values of the layout's own fields among the (field, value) pairs `pairs` into `values` (part fields are not kept there). */
function storeValues(layout: RedisLogLayout<unknown>, values: (string | null)[], pairs: readonly string[]): void {
  for (let f = 0; f < pairs.length; f += 2) {
    const at = layout.fields.indexOf(pairs[f]!);
    if (at >= 0) values[at] = pairs[f + 1]!;
  }
}

/** Settles each submission of a batch with its own outcome. */
function settle(batch: readonly Pending<Change, LogCommitted<unknown, BusEvent> | null>[], outcomes: readonly Outcome[]): void {
  batch.forEach((pending, i) => {
    const outcome = outcomes[i]!;
    if (outcome.ok) pending.resolve(outcome.value);
    else pending.reject(outcome.error);
  });
}
