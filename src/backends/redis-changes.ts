/**
 * {@link ChangeFeed} on Redis Streams consumer groups.
 *
 * The change log is RUNWATCH_CHANGE_PARTITIONS streams `runwatch:changes:{<p>}`
 * (redis-keys.ts); a job's changes go to partition `changePartition(jobId)`,
 * XADDed by the job's own commit script (redis-log.ts, redis.ts CREATE_LUA),
 * so a change is in the log if and only if it was committed. Each projector
 * is a consumer group of that name on every partition; each instance is one
 * consumer (its instance id). Per projector, one loop per instance:
 * - XREADGROUP ... BLOCK over all partitions (one blocking connection per
 *   projector per instance) hands each new change to one instance;
 * - the changes read are applied (applyBatch: per job in order, jobs
 *   concurrently) and XACKed once applied;
 * - every `claimIntervalMs`, XAUTOCLAIM takes over changes another consumer
 *   (a killed instance, or this one after a failed apply) read and did not
 *   acknowledge for `claimIdleMs`, and applies them.
 * So every change is applied at least once and, projectors being idempotent
 * by offset, its effect happens once. A group is created at `$` when the
 * projector is first registered (`ready()`), and at `0` when Redis lost it
 * (restarted empty: the stream is new as well).
 */
import calculateSlot from 'cluster-key-slot';
import type { RedisClient } from './redis-log.js';
import { isUnavailable } from '../domain/errors.js';
import type { JobChangeRecord } from '../domain/changes.js';
import { applyBatch } from './change-feed.js';
import { changesKey } from './redis-keys.js';
import type { ChangeFeed } from './types.js';

const BATCH = 200;
/** Milliseconds between reads of an idle projector on a Redis Cluster (see Loop.read). */
const CLUSTER_POLL_MS = 50;

/** Whether the connection is a Redis Cluster client. */
const isCluster = (redis: RedisClient) => 'isCluster' in redis && redis.isCluster === true;
/** Most milliseconds a projector loop's stop waits for the loop's current step. */
const STOP_WAIT_MS = 500;

/** Options of {@link RedisChangeFeed}. */
export interface RedisChangeFeedOptions {
  /** Partitions of the change log (RUNWATCH_CHANGE_PARTITIONS). */
  partitions: number;
  /** This instance's consumer name (unique per process). */
  consumer: string;
  /** Milliseconds a change may stay unacknowledged before another consumer takes it over (default 5000). */
  claimIdleMs?: number;
  /** Milliseconds between takeover scans (default claimIdleMs / 2). */
  claimIntervalMs?: number;
  /** A new connection for one projector's blocking reads (no command timeout). */
  connect(): RedisClient;
  onError(context: string, error: unknown): void;
}

type Entries = [id: string, fields: string[]][];

/** See the module comment. */
export class RedisChangeFeed implements ChangeFeed {
  private readonly keys: string[];
  private readonly loops: Loop[] = [];
  private readonly pending: Promise<void>[] = [];
  private closed = false;

  constructor(
    private readonly redis: RedisClient,
    private readonly opts: RedisChangeFeedOptions,
  ) {
    this.keys = Array.from({ length: Math.max(1, opts.partitions) }, (_, p) => changesKey(p, Math.max(1, opts.partitions)));
  }

  project(name: string, apply: (change: JobChangeRecord) => Promise<void>): void {
    if (this.loops.some((l) => l.name === name)) throw new Error(`projector ${name} is registered already`);
    const loop = new Loop(name, apply, this.redis, this.keys, this.opts);
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
    this.closed = true;
    await Promise.all(this.loops.map((l) => l.stop()));
  }
}

/** One projector's consumption on this instance. */
class Loop {
  private stopped = false;
  private conn: RedisClient | null = null;
  private lastClaim = 0;
  private running: Promise<void> | null = null;
  private readonly claimIdleMs: number;
  private readonly claimIntervalMs: number;

  constructor(
    readonly name: string,
    private readonly apply: (change: JobChangeRecord) => Promise<void>,
    private readonly redis: RedisClient,
    private readonly keys: string[],
    private readonly opts: RedisChangeFeedOptions,
  ) {
    this.claimIdleMs = opts.claimIdleMs ?? 5000;
    this.claimIntervalMs = opts.claimIntervalMs ?? Math.max(50, this.claimIdleMs / 2);
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
    this.running = this.run().finally(() => {
      this.running = null;
    });
  }

  /**
   * Stops the loop: it ends at its next step. Waits for that at most STOP_WAIT_MS: a command caught in a
   * reconnection while Redis is gone may never settle (ioredis keeps it for a resend), and a shutdown must not
   * wait for Redis. Whatever the loop had read and not acknowledged is taken over by another instance.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.conn?.disconnect();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.running, new Promise<void>((resolve) => (timer = setTimeout(resolve, STOP_WAIT_MS)))]);
    clearTimeout(timer);
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        if (Date.now() - this.lastClaim >= this.claimIntervalMs) {
          this.lastClaim = Date.now();
          await this.claim();
        }
        const block = Math.max(10, Math.min(1000, this.claimIntervalMs - (Date.now() - this.lastClaim)));
        for (const [key, entries] of await this.read(block)) await this.handle(key, entries);
        failures = 0;
      } catch (error) {
        if (this.stopped) return;
        const message = String((error as Error)?.message ?? error);
        if (message.includes('NOGROUP')) {
          // Redis lost the group (restarted empty): recreate it from the start of the (new) streams.
          await this.createGroups('0').catch(() => {});
          continue;
        }
        failures++;
        if (!isUnavailable(error) && !/Connection is closed|ECONNREFUSED|ECONNRESET|Stream isn't writeable|max retries/i.test(message))
          this.opts.onError(`projector ${this.name}`, error);
        await new Promise((r) => setTimeout(r, Math.min(100 * failures, 1000)).unref());
      }
    }
  }

  /**
   * Reads new changes of every partition. On one Redis (or when every partition is in one slot): one XREADGROUP
   * over all of them that blocks up to `blockMs`. On a Redis Cluster the partitions are in different slots and a
   * command may name keys of one slot only (CROSSSLOT), and one connection can block on one command at a time: one
   * XREADGROUP per slot without BLOCK, sent together, and when none returned anything a pause of
   * {@link CLUSTER_POLL_MS} (so an idle projector costs partitions / 50 ms empty reads per instance).
   */
  private async read(blockMs: number): Promise<[key: string, entries: Entries][]> {
    const xread = (keys: string[], block: number | null) =>
      this.conn!.xreadgroup(
        'GROUP',
        this.name,
        this.opts.consumer,
        'COUNT',
        BATCH,
        ...((block === null ? [] : ['BLOCK', block]) as ['BLOCK', number]),
        'STREAMS',
        ...keys,
        ...keys.map(() => '>'),
      ) as Promise<[key: string, entries: Entries][] | null>;
    if (this.slots.length === 1) return (await xread(this.slots[0]!, blockMs)) ?? [];
    const read = (await Promise.all(this.slots.map((keys) => xread(keys, null)))).flatMap((r) => r ?? []);
    if (read.length === 0 && !this.stopped) await new Promise((r) => setTimeout(r, Math.min(CLUSTER_POLL_MS, blockMs)).unref());
    return read;
  }

  /** The partitions' keys grouped by Redis Cluster slot (one group on one Redis: every key of a command may share a node). */
  private get slots(): string[][] {
    if (!this.slotGroups) {
      const bySlot = new Map<number, string[]>();
      for (const key of this.keys) {
        const slot = isCluster(this.redis) ? calculateSlot(key) : 0;
        bySlot.set(slot, [...(bySlot.get(slot) ?? []), key]);
      }
      this.slotGroups = [...bySlot.values()];
    }
    return this.slotGroups;
  }
  private slotGroups: string[][] | null = null;

  /** Takes over changes left unacknowledged for claimIdleMs (by any consumer) and applies them. */
  private async claim(): Promise<void> {
    for (const key of this.keys) {
      let start = '0-0';
      for (let round = 0; round < 10; round++) {
        const [next, entries] = (await this.redis.xautoclaim(key, this.name, this.opts.consumer, this.claimIdleMs, start, 'COUNT', BATCH)) as [
          string,
          Entries,
          ...unknown[],
        ];
        await this.handle(key, entries.filter((e) => e && e[1]));
        if (next === '0-0') break;
        start = next;
      }
    }
  }

  /** Applies entries of one partition and acknowledges those applied. */
  private async handle(key: string, entries: Entries): Promise<void> {
    if (entries.length === 0) return;
    const changes: JobChangeRecord[] = [];
    const ids: string[] = [];
    const malformed: string[] = [];
    for (const [id, fields] of entries) {
      const json = fields[fields.indexOf('c') + 1];
      try {
        changes.push(JSON.parse(json!) as JobChangeRecord);
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
  }
}
