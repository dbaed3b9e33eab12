/**
 * {@link ChangeFeed} on Redis Streams consumer groups, one consumer per
 * partition at a time.
 *
 * The change log is RUNWATCH_CHANGE_PARTITIONS streams `runwatch:{<P>}:changes`
 * (redis-keys.ts; each in its partition's slot, with the jobs of the partition);
 * a job's changes go to partition `changePartition(jobId)`,
 * XADDed by the job's own commit script (redis-log.ts: its updates and its creation),
 * so a change is in the log if and only if it was committed, and one job's
 * changes are in the log in commit order. Each projector is a consumer group
 * of that name on every partition; each instance is one consumer (its
 * instance id).
 *
 * **Order.** A projector applies one job's changes in log order: a partition
 * is worked, per projector, by one instance at a time, the holder of its
 * lease `runwatch:{<P>}:changes:lease:<projector>` (SET NX PX, renewed every
 * third of its lifetime, at most every second, by one timer per projector;
 * free partitions are taken in the same rounds; released on a clean stop). Without it the group would hand a job's consecutive changes to two
 * instances that apply them in either order; the older, applied second, is a
 * no-op (projections are idempotent by offset), so state would stay exact but
 * a CHILD or jobUpdates event of the older change would be lost.
 * Per projector, one loop per instance:
 * - on taking a lease (at start, after the holder stopped, or after its lease
 *   ran out: a killed instance), the loop first takes over and applies the
 *   partition's pending entries — read by the former holder and not
 *   acknowledged — with XAUTOCLAIM, oldest first, before reading new ones;
 * - XREADGROUP ... BLOCK over the partitions it holds (one blocking connection
 *   per projector per instance) reads new changes; they are applied
 *   (applyBatch: per job in order, jobs concurrently) and XACKed once applied.
 *   On a Redis Cluster the partitions are in different slots, and a command may
 *   name keys of one slot only (CROSSSLOT): one XREADGROUP per slot without
 *   BLOCK (one connection cannot block on several), sent together, and a pause
 *   of {@link CLUSTER_POLL_MS} when none returned anything;
 * - a change whose apply failed stays pending, and its partition reads nothing
 *   new until it is applied (retried with backoff), so nothing newer of its
 *   job overtakes it.
 * So every change is applied at least once and, projectors being idempotent
 * by offset, its effect happens once, in order. One exception to the order:
 * an instance that stalls longer than the lease (RUNWATCH_CHANGE_CLAIM_MS)
 * loses it while it may still be applying; its late applies of older changes
 * are then no-ops. A group is created at `$` when the projector is first
 * registered (`ready()`), and at `0` when Redis lost it (restarted empty: the
 * stream is new as well).
 */
import calculateSlot from 'cluster-key-slot';
import { LRUCache } from 'lru-cache';
import { isUnavailable } from '../domain/errors.js';
import type { JobChangeRecord } from '../domain/changes.js';
import { applyBatch } from './change-feed.js';
import { changesKey } from './redis-keys.js';
import { isRedisUnreachable, type RedisClient } from './redis-log.js';
import type { ChangeFeed } from './types.js';

const BATCH = 200;
/**
 * Milliseconds between reads of an idle projector on a Redis Cluster (no blocking read across slots): an idle
 * instance sends one empty XREADGROUP per held partition per projector this often, and a change waits up to this
 * long more before it is applied.
 */
export const CLUSTER_POLL_MS = 50;
/** Most milliseconds a projector loop's stop waits for the loop's current step and for releasing its leases. */
const STOP_WAIT_MS = 500;

/**
 * Takes or renews a partition's lease (KEYS[1]) for consumer ARGV[1], for ARGV[2] ms.
 * @returns 1 renewed (held already), 2 taken (was free), 0 held by another consumer.
 */
const LEASE_LUA = `
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
if not holder then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 2 end
return 0`;
/** Gives a lease (KEYS[1]) up if consumer ARGV[1] holds it. */
const RELEASE_LUA = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

/** The lease of one projector on partition `partition` of `partitions`: `runwatch:{<P>}:changes:lease:<projector>` (the partition's hash tag). */
export const changeLeaseKey = (partition: number, partitions: number, projector: string) => `${changesKey(partition, partitions)}:lease:${projector}`;

/** Options of {@link RedisChangeFeed}. */
export interface RedisChangeFeedOptions {
  /** Partitions of the change log (RUNWATCH_CHANGE_PARTITIONS). */
  partitions: number;
  /** This instance's consumer name (unique per process). */
  consumer: string;
  /**
   * Milliseconds a partition's lease lives without renewal (RUNWATCH_CHANGE_CLAIM_MS; default 5000): how long a
   * killed instance's partitions wait before another instance takes them over, and how long a change may stay
   * unacknowledged before the periodic takeover scan applies it again.
   */
  leaseMs?: number;
  /** A new connection for one projector's blocking reads (no command timeout): one Redis, or a cluster client. */
  connect(): RedisClient;
  onError(context: string, error: unknown): void;
}

type Entries = [id: string, fields: string[]][];

/** Most parsed changes {@link ParsedChanges} keeps (each up to a job record with 100 steps, ~50 KB parsed). */
const PARSED_MAX = 256;

/**
 * Change-log entries parsed on this instance, shared by its projectors: every projector reads every change (one
 * consumer group each), and a change carries the job's whole record (up to 100 steps: ~16 KB of JSON), so
 * parsing it once per projector was most of what a report cost the change log. An entry is parsed by the first
 * projector that reads it and dropped once every projector has taken it (or, bounded, when the least recently
 * used), so it is parsed about once per instance. The change is shared, as the memory feed shares it: projectors
 * must not modify it (none does: they are pure over it).
 */
class ParsedChanges {
  private readonly cache = new LRUCache<string, { change: JobChangeRecord; left: number }>({ max: PARSED_MAX });

  /** @param readers how many projectors will take each entry (the loops registered). */
  constructor(private readonly readers: () => number) {}

  /** The change of entry `id` of partition stream `key`, whose field `c` is `json`. @throws SyntaxError when malformed. */
  take(key: string, id: string, json: string): JobChangeRecord {
    const name = `${key}\n${id}`;
    const known = this.cache.get(name);
    if (known) {
      if (--known.left <= 0) this.cache.delete(name);
      return known.change;
    }
    const change = JSON.parse(json) as JobChangeRecord;
    if (this.readers() > 1) this.cache.set(name, { change, left: this.readers() - 1 });
    return change;
  }
}

/** Errors of a Redis that is away, which the loops retry without logging. */
const isOutage = (error: unknown) =>
  isUnavailable(error) || isRedisUnreachable(error) || /enableOfflineQueue/i.test(String((error as Error)?.message ?? error));

/** See the module comment. */
export class RedisChangeFeed implements ChangeFeed {
  private readonly loops: Loop[] = [];
  private readonly pending: Promise<void>[] = [];
  private readonly parsed = new ParsedChanges(() => this.loops.length);

  constructor(
    private readonly redis: RedisClient,
    private readonly opts: RedisChangeFeedOptions,
  ) {}

  project(name: string, apply: (change: JobChangeRecord) => Promise<void>): void {
    if (this.loops.some((l) => l.name === name)) throw new Error(`projector ${name} is registered already`);
    const loop = new Loop(name, apply, this.redis, Math.max(1, this.opts.partitions), this.opts, this.parsed);
    this.loops.push(loop);
    const created = loop.createGroups('$');
    this.pending.push(created);
    created.then(
      () => loop.start(),
      (error: unknown) => {
        this.opts.onError(`projector ${name}: creating its consumer group`, error);
        loop.start(); // the loop creates missing groups itself (NOGROUP)
      },
    );
  }

  async ready(): Promise<void> {
    await Promise.allSettled(this.pending);
  }

  async close(): Promise<void> {
    await Promise.all(this.loops.map((l) => l.stop()));
  }
}

/** A partition whose lease a loop holds. */
interface Held {
  /** Its pending entries (a former holder's, or this loop's failed ones) must be applied before anything new is read. */
  recover: boolean;
}

/** One projector's consumption on this instance. */
class Loop {
  private stopped = false;
  private conn: RedisClient | null = null;
  private running: Promise<void> | null = null;
  private readonly keys: string[];
  private readonly leaseMs: number;
  /** Milliseconds between lease rounds: a third of the lease, at most 1 s (a freed partition is taken within it). */
  private readonly roundMs: number;
  /** Partitions whose lease this loop holds. */
  private readonly held = new Map<number, Held>();
  private leaseTimer: NodeJS.Timeout | null = null;
  private renewing: Promise<void> | null = null;
  private lastScan = Date.now();
  /** On a Redis Cluster: reads go one per slot (see the header). */
  private readonly cluster: boolean;
  /** Ends the loop's current pause (a lease was taken, or the loop stops). */
  private wake: (() => void) | null = null;

  constructor(
    readonly name: string,
    private readonly apply: (change: JobChangeRecord) => Promise<void>,
    private readonly redis: RedisClient,
    private readonly partitions: number,
    private readonly opts: RedisChangeFeedOptions,
    private readonly parsed: ParsedChanges,
  ) {
    this.keys = Array.from({ length: partitions }, (_, p) => changesKey(p, partitions));
    this.cluster = redis.isCluster;
    this.leaseMs = Math.max(50, opts.leaseMs ?? 5000);
    this.roundMs = Math.max(20, Math.min(1000, Math.floor(this.leaseMs / 3)));
  }

  /** XGROUP CREATE on every partition (MKSTREAM), at `from`; an existing group is kept. */
  async createGroups(from: '$' | '0'): Promise<void> {
    for (const key of this.keys) {
      try {
        await this.redis.xgroup('CREATE', key, this.name, from, 'MKSTREAM');
      } catch (error) {
        if (!String((error as Error).message).includes('BUSYGROUP')) throw error;
      }
    }
  }

  start(): void {
    if (this.stopped || this.running) return;
    this.conn = this.opts.connect();
    this.conn.on('error', () => {}); // counted by the backend's own connections; reads retry below
    // One timer per projector per instance (not per partition or job) keeps the leases, also while an apply runs.
    this.leaseTimer = setInterval(() => void this.renewLeases(), this.roundMs);
    this.leaseTimer.unref();
    this.running = this.run().finally(() => {
      this.running = null;
    });
  }

  /**
   * Stops the loop: it ends at its next step, and its leases are given up so that another instance takes the
   * partitions over at its next lease round (at most 1 s later) instead of after the lease ran out.
   * Waits for that at most STOP_WAIT_MS: a command caught in a reconnection while Redis is gone may never settle
   * (ioredis keeps it for a resend), and a shutdown must not wait for Redis. Whatever the loop had read and not
   * acknowledged is taken over by the next holder.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.leaseTimer) clearInterval(this.leaseTimer);
    this.conn?.disconnect();
    this.wake?.();
    let timer: NodeJS.Timeout | undefined;
    const bounded = new Promise<void>((resolve) => (timer = setTimeout(resolve, STOP_WAIT_MS)));
    const release = async () => {
      await this.running;
      await this.renewing;
      const partitions = [...this.held.keys()];
      this.held.clear();
      await Promise.all(partitions.map((p) => this.redis.eval(RELEASE_LUA, 1, changeLeaseKey(p, this.partitions, this.name), this.opts.consumer).catch(() => {})));
    };
    await Promise.race([release(), bounded]);
    clearTimeout(timer);
  }

  /** One lease round: renews the partitions held, takes the free ones. Never rejects; one round at a time. */
  private renewLeases(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.renewing ??= Promise.all(
      this.keys.map(async (_, p) => {
        const answer = Number(await this.redis.eval(LEASE_LUA, 1, changeLeaseKey(p, this.partitions, this.name), this.opts.consumer, this.leaseMs));
        if (this.stopped) return;
        if (answer === 0) this.held.delete(p);
        else if (answer === 2 || !this.held.has(p)) {
          // Taken, or taken again after it ran out: whoever held it meanwhile may have left entries pending.
          this.held.set(p, { recover: true });
          this.wake?.();
        }
      }),
    )
      .then(
        () => {},
        (error: unknown) => {
          if (!isOutage(error)) this.opts.onError(`projector ${this.name}: partition leases`, error);
        },
      )
      .finally(() => {
        this.renewing = null;
      });
    return this.renewing;
  }

  private async run(): Promise<void> {
    await this.renewLeases();
    let failures = 0;
    while (!this.stopped) {
      try {
        // Partitions taken over (or with a failed apply) apply their pending entries first, oldest first.
        let blocked = false;
        if (Date.now() - this.lastScan >= this.leaseMs) {
          // Safety net: entries left unacknowledged for a lease's lifetime (an instance that lost its lease mid-apply).
          this.lastScan = Date.now();
          for (const held of this.held.values()) held.recover = true;
        }
        for (const [p, held] of this.held) {
          if (!held.recover || this.stopped) continue;
          if (await this.recover(p)) held.recover = false;
          else blocked = true;
        }
        const readable = [...this.held].filter(([, held]) => !held.recover).map(([p]) => this.keys[p]!);
        if (readable.length === 0) {
          // Nothing to read: no lease (another instance works every partition) or every held one is retrying.
          await this.pause(blocked ? Math.min(100 * ++failures, 1000) : this.roundMs);
          continue;
        }
        const read = await this.read(readable);
        for (const [key, entries] of read) {
          if (!(await this.handle(key, entries))) {
            const held = this.held.get(this.keys.indexOf(key));
            if (held) held.recover = true;
            blocked = true;
          }
        }
        if (blocked) await this.pause(Math.min(100 * ++failures, 1000));
        else failures = 0;
      } catch (error) {
        if (this.stopped) return;
        const message = String((error as Error)?.message ?? error);
        if (message.includes('NOGROUP')) {
          // Redis lost the group (restarted empty): recreate it from the start of the (new) streams.
          await this.createGroups('0').catch(() => {});
          continue;
        }
        failures++;
        if (!isOutage(error)) this.opts.onError(`projector ${this.name}`, error);
        await this.pause(Math.min(100 * failures, 1000));
      }
    }
  }

  /**
   * Reads new entries of the partitions `keys`: on one Redis one XREADGROUP that blocks up to a lease round; on a
   * cluster one per slot without BLOCK, together, and a pause of {@link CLUSTER_POLL_MS} when nothing came.
   */
  private async read(keys: string[]): Promise<[key: string, entries: Entries][]> {
    const xread = (group: string[], block: number | null) =>
      this.conn!.xreadgroup(
        'GROUP',
        this.name,
        this.opts.consumer,
        'COUNT',
        BATCH,
        ...((block === null ? [] : ['BLOCK', block]) as ['BLOCK', number]),
        'STREAMS',
        ...group,
        ...group.map(() => '>'),
      ) as Promise<[key: string, entries: Entries][] | null>;
    if (!this.cluster) return (await xread(keys, this.roundMs)) ?? [];
    const bySlot = new Map<number, string[]>();
    for (const key of keys) bySlot.set(calculateSlot(key), [...(bySlot.get(calculateSlot(key)) ?? []), key]);
    if (bySlot.size === 1) return (await xread(keys, this.roundMs)) ?? []; // one slot: one blocking read, as on one Redis
    const read = (await Promise.all([...bySlot.values()].map((group) => xread(group, null)))).flatMap((r) => r ?? []);
    if (read.length === 0) await this.pause(CLUSTER_POLL_MS);
    return read;
  }

  /** Waits `ms`, or less if a lease is taken or the loop stops. */
  private pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = null;
        done();
      };
    });
  }

  /**
   * Takes over every pending entry of partition `p` (XAUTOCLAIM from the oldest, whoever read it) and applies them in
   * order. @returns true when none is left pending, false when an apply failed (the rest stays pending, in order).
   */
  private async recover(p: number): Promise<boolean> {
    const key = this.keys[p]!;
    let start = '0-0';
    for (;;) {
      const [next, entries] = (await this.redis.xautoclaim(key, this.name, this.opts.consumer, 0, start, 'COUNT', BATCH)) as [string, Entries, ...unknown[]];
      if (!(await this.handle(key, entries.filter((e) => e && e[1])))) return false;
      if (next === '0-0' || this.stopped) return true;
      start = next;
    }
  }

  /** Applies entries of one partition and acknowledges those applied. @returns whether every one was applied. */
  private async handle(key: string, entries: Entries): Promise<boolean> {
    if (entries.length === 0) return true;
    const changes: JobChangeRecord[] = [];
    const ids: string[] = [];
    const malformed: string[] = [];
    for (const [id, fields] of entries) {
      const json = fields[fields.indexOf('c') + 1];
      try {
        changes.push(this.parsed.take(key, id, json!));
        ids.push(id);
      } catch (error) {
        malformed.push(id);
        this.opts.onError(`projector ${this.name}: malformed change ${id} dropped`, error);
      }
    }
    const done = await applyBatch(changes, async (change) => {
      try {
        await this.apply(change);
      } catch (error) {
        if (!isUnavailable(error)) this.opts.onError(`projector ${this.name}: change of job ${change.jobId} at offset ${change.offset}`, error);
        throw error;
      }
    });
    const acked = [...malformed, ...ids.filter((_, i) => done[i])];
    if (acked.length > 0) await this.redis.xack(key, this.name, ...acked);
    return done.every(Boolean);
  }
}
