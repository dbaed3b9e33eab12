/**
 * The SSUBSCRIBE side of the event bus on a Redis Cluster (sharded pub/sub,
 * Redis 7): the same contract as redis-channels.ts ({@link PubSubChannels}) —
 * one subscription per channel per instance, `subscribe` resolves once Redis
 * confirmed it and fails fast with SERVICE_UNAVAILABLE while the channel's
 * shard is unreachable, a release during an outage is never lost, and after a
 * reconnect, a failover or a slot move the desired set is subscribed again
 * before the owner is told to catch up from history.
 *
 * How: one subscriber connection per master that owns a slot with a desired
 * channel, each wrapped in a {@link RedisChannels} in sharded mode (the
 * desired-set and outage logic lives there, once). This class routes each
 * channel to the master serving its slot (`cluster-key-slot`, the function
 * ioredis uses, and the slot map of the caller's ioredis `Cluster`), and moves
 * channels when that map changes. The command connection's `Cluster` is only
 * read (its `slots` and `refresh` event) and asked to refresh its slot map.
 *
 * Why not ioredis' own `Cluster({ shardedSubscribers: true })` (5.11.1,
 * lib/cluster/ClusterSubscriberGroup.ts, read at tag v5.11.1):
 * - it records a channel in its re-subscribe list before the SSUBSCRIBE is
 *   sent and keeps it when the command fails, and an SUNSUBSCRIBE sent while
 *   the Cluster is not ready is rejected before it is recorded: either way a
 *   channel nobody listens to is SSUBSCRIBEd again after the next topology
 *   change (a leak `PUBSUB SHARDNUMSUB` shows);
 * - its re-subscribe after a reconnect or failover is fire-and-forget (errors
 *   only reach its debug log) and `subscribersReady` is emitted before Redis
 *   confirmed anything, so there is no moment from which nothing published is
 *   missed — the catch-up from history needs exactly that moment;
 * - its shard connections are forced to `enableOfflineQueue: true`, so a
 *   command for a shard that is down waits for a connect to fail instead of
 *   failing fast;
 * - a zero-argument `sunsubscribe()` throws (ioredis issue 2133; fixed after
 *   5.11.1 by PR 2137) and re-subscribing several channels in one SSUBSCRIBE
 *   fails with CROSSSLOT (PR 2021): here every command names its channel.
 * Early versions also lost `smessage` events entirely (issue 1759); 5.11.1
 * forwards them, and plain connections (used here) always did.
 *
 * One more ioredis 5.11.1 bug matters on any connection: when a node loses a
 * slot (migration, or a returning old master demoted to replica) Redis pushes
 * an unsolicited `sunsubscribe` for each channel of that slot, and ioredis
 * takes it for the reply of the oldest command in flight (fixed after 5.11.1
 * by commit ca03af4). So a shard that loses a slot with channels of ours but
 * keeps others is reconnected, and its remaining channels are subscribed anew
 * on a clean connection (the ordinary outage path, with catch-up).
 *
 * Outage signals: {@link RedisChannelsHooks.onLost} when the first shard with
 * desired channels drops or channels must move; {@link
 * RedisChannelsHooks.onResubscribed} once every desired channel is confirmed
 * again on the shard that owns it. While something is down the slot map is
 * refreshed with backoff (one timer per instance, not per channel).
 */
import calculateSlot from 'cluster-key-slot';
import { Redis, type Cluster, type RedisOptions } from 'ioredis';
import { DomainError } from '../domain/errors.js';
import { RedisChannels, SHARDED_PUBSUB, type PubSubChannels, type RedisChannelsHooks } from './redis-channels.js';

/**
 * What ioredis 5.11.1 reports when a node pushes `sunsubscribe` on its own and
 * no command is waiting (the error's "Last reply" is the push: kind, channel, count).
 */
const UNSOLICITED_SUNSUBSCRIBE = /^Command queue state error\..*Last reply: sunsubscribe,(.*),\d+$/s;

const unavailable = () => new DomainError('SERVICE_UNAVAILABLE', 'the backend (Redis Cluster shard) is unreachable; retry later');

/** Options of {@link RedisShardedChannels}. */
export interface RedisShardedChannelsOptions {
  /**
   * Options for each shard's subscriber connection (password, TLS, …); host and
   * port come from the slot map. `autoResubscribe` and `enableOfflineQueue` are
   * always off (see the header); the defaults retry every 100..1000 ms.
   */
  connection?: RedisOptions;
  /** Called for every shard connection's error event (counting; outages are signalled through the hooks). */
  onConnectionError?: (nodeKey: string, error: unknown) => void;
  /** Most milliseconds between slot-map refreshes while a shard is down or channels wait to move (default 2000). */
  maxRefreshDelayMs?: number;
}

/** See {@link RedisShardedChannels.debugState}. */
export interface ShardedChannelsState {
  lost: boolean;
  closed: boolean;
  /** Node keys (`host:port`) of shards whose connection dropped and has not re-subscribed since. */
  down: string[];
  /** Channels waiting to be subscribed on their (new) owner: the shard assigned, and the owner per the slot map now. */
  moving: { channel: string; to: string | null; owner: string | null }[];
  /** Desired channel → node key of the shard it is assigned to. */
  assigned: Record<string, string>;
  /** Node key → the ioredis status of its connection and the channels confirmed or being subscribed there. */
  shards: Record<string, { status: string; channels: string[] }>;
  refreshScheduled: boolean;
  refreshAttempt: number;
  reconciling: boolean;
  /** The command connection's (ioredis `Cluster`) status. */
  clusterStatus: string;
}

/** One master's subscriber connection and its desired set. */
interface Shard {
  readonly key: string;
  readonly connection: Redis;
  readonly channels: RedisChannels;
  /** Settles when the connection's first attempt succeeded or failed. */
  readonly firstAttempt: Promise<void>;
}

/**
 * Desired sharded-channel subscriptions of one instance on a Redis Cluster:
 * see the header. The caller's `cluster` is its command connection; it must be
 * `ready` for {@link subscribe} to succeed.
 */
export class RedisShardedChannels implements PubSubChannels {
  private readonly handlers = new Map<string, (message: string) => void>();
  /** The shard each desired channel is subscribed on (or queued for, see {@link moving}). */
  private readonly assigned = new Map<string, string>();
  /** How many channels {@link assigned} holds per shard (absent: none). */
  private readonly perShard = new Map<string, number>();
  /** Desired channels that must be subscribed on their (new) owner before nothing is missed again. */
  private readonly moving = new Set<string>();
  private readonly shards = new Map<string, Shard>();
  /** Shards whose connection dropped and has not re-subscribed yet. */
  private readonly down = new Set<string>();
  private lost = false;
  private closed = false;
  private refreshTimer: NodeJS.Timeout | null = null;
  private refreshAttempt = 0;
  private reconciling: Promise<void> | null = null;
  private reconcileAgain = false;

  constructor(
    readonly cluster: Cluster,
    private readonly hooks: RedisChannelsHooks,
    private readonly opts: RedisShardedChannelsOptions = {},
  ) {
    cluster.on('refresh', this.onRefresh);
  }

  private readonly onRefresh = () => this.reconcile();

  /** Channels with a handler now (what the shard connections listen to once connected). */
  get channels(): string[] {
    return [...this.handlers.keys()];
  }

  /**
   * What this instance waits for, for a test or an operator to tell why it stays lost (not a public API; the shape
   * may change): `lost` (a desired channel is unconfirmed), the `down` shards and the `moving` channels that hold it
   * back, each desired channel's assigned shard, each shard connection's ioredis status and channel count, and
   * whether a slot-map refresh is scheduled or a reconciliation runs.
   */
  debugState(): ShardedChannelsState {
    return {
      lost: this.lost,
      closed: this.closed,
      down: [...this.down],
      moving: [...this.moving].map((channel) => ({ channel, to: this.assigned.get(channel) ?? null, owner: this.ownerOf(channel) })),
      assigned: Object.fromEntries(this.assigned),
      shards: Object.fromEntries([...this.shards].map(([key, shard]) => [key, { status: shard.connection.status, channels: shard.channels.channels }])),
      refreshScheduled: this.refreshTimer !== null,
      refreshAttempt: this.refreshAttempt,
      reconciling: this.reconciling !== null,
      clusterStatus: this.cluster.status,
    };
  }

  /** Shard connections by node key (`host:port`), for diagnostics and fault-injection tests. */
  get subscribers(): ReadonlyMap<string, Redis> {
    return new Map([...this.shards].map(([key, shard]) => [key, shard.connection]));
  }

  /**
   * Listens to `channel` with `handler` on the master that owns its slot.
   * Resolves once that master confirmed the SSUBSCRIBE.
   * @throws DomainError SERVICE_UNAVAILABLE when the cluster or the owning shard is unreachable, the slot map is
   *   stale (a MOVED reply: the map is refreshed for the next try), or the connection drops before the confirmation.
   */
  async subscribe(channel: string, handler: (message: string) => void): Promise<void> {
    if (this.closed || this.cluster.status !== 'ready') throw unavailable();
    const owner = this.ownerOf(channel);
    if (owner === null) {
      this.scheduleRefresh();
      throw unavailable();
    }
    const previous = this.assigned.get(channel);
    if (previous !== undefined && previous !== owner) this.release(channel);
    const shard = await this.shardFor(owner);
    this.handlers.set(channel, handler);
    this.assign(channel, owner);
    try {
      await shard.channels.subscribe(channel, handler);
      if (this.assigned.get(channel) === owner && this.moving.delete(channel)) this.settle();
    } catch (error) {
      if (this.handlers.get(channel) === handler) {
        this.handlers.delete(channel);
        this.assign(channel, null);
      }
      this.retireIfIdle(shard);
      this.scheduleRefresh(); // a MOVED reply or a dropped shard: the slot map may be stale
      throw error instanceof DomainError ? error : unavailable();
    }
  }

  /** Stops listening to `channel`. Never throws; a release while its shard is down is reconciled on reconnect. */
  unsubscribe(channel: string): void {
    if (!this.handlers.delete(channel)) return;
    this.release(channel);
    this.moving.delete(channel);
    this.settle();
  }

  /** Disconnects every shard connection; later subscribes fail with SERVICE_UNAVAILABLE. */
  close(): void {
    this.closed = true;
    this.cluster.off('refresh', this.onRefresh);
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    for (const shard of this.shards.values()) shard.connection.disconnect();
    this.shards.clear();
  }

  /** The node key (`host:port`) of the master serving `channel`'s slot, per the cluster's slot map; null when unknown. */
  private ownerOf(channel: string): string | null {
    return this.cluster.slots[calculateSlot(channel)]?.[0] ?? null;
  }

  /** Removes `channel` from the shard it is assigned to (SUNSUBSCRIBE with its name, or recorded while down). */
  private release(channel: string): void {
    const key = this.assigned.get(channel);
    this.assign(channel, null);
    if (key === undefined) return;
    const shard = this.shards.get(key);
    if (!shard) return;
    shard.channels.unsubscribe(channel);
    this.retireIfIdle(shard);
  }

  /** The subscriber connection of master `key`, opened (and awaited ready, bounded by its connect timeout) on first use. */
  private async shardFor(key: string): Promise<Shard> {
    let shard = this.shards.get(key);
    if (!shard) {
      const [host, port] = splitNodeKey(key);
      const connection = new Redis({
        maxRetriesPerRequest: 1,
        retryStrategy: (times) => Math.min(times * 100, 1000),
        connectTimeout: 2000,
        ...this.opts.connection,
        host,
        port,
        lazyConnect: false,
        enableOfflineQueue: false,
        autoResubscribe: false,
      });
      connection.on('error', (error: unknown) => {
        this.opts.onConnectionError?.(key, error);
        const dropped = UNSOLICITED_SUNSUBSCRIBE.exec(error instanceof Error ? error.message : '');
        if (dropped) this.droppedByServer(key, dropped[1]!);
      });
      const created: Shard = {
        key,
        connection,
        firstAttempt: readyOrGone(connection),
        channels: new RedisChannels(
          connection,
          {
            onLost: () => {
              if (this.shards.get(key) !== created || this.closed) return;
              if (this.perShard.has(key)) this.markDown(key);
              this.scheduleRefresh();
            },
            onResubscribed: () => {
              if (this.shards.get(key) !== created) return;
              this.down.delete(key);
              this.settle();
            },
            onError: (context, error) => {
              // E.g. a MOVED reply to the re-subscribe: the shard no longer owns a slot; the refresh moves its channels.
              if (this.shards.get(key) === created) this.scheduleRefresh();
              // A re-subscribe that failed on a live connection is not retried by that connection by itself: reconnect
              // it, so the next 'ready' subscribes what is still desired there (the refresh may have moved some away).
              if (context === 'resubscribe' && this.shards.get(key) === created && connection.status === 'ready') connection.disconnect(true);
              this.hooks.onError(`shard ${key} ${context}`, error);
            },
          },
          SHARDED_PUBSUB,
        ),
      };
      // A fresh connection that becomes ready may take channels waiting to move to it.
      connection.on('ready', () => this.reconcile());
      this.shards.set(key, created);
      shard = created;
    }
    // Only a connection's first attempt is awaited (by every caller that needs it); one that is down fails fast.
    await shard.firstAttempt;
    if (shard.connection.status !== 'ready') {
      this.retireIfIdle(shard);
      throw unavailable();
    }
    return shard;
  }

  /**
   * Master `key` told us it no longer serves `channel` (it lost the slot: a
   * migration, or a failover that demoted it). Seen only through ioredis
   * 5.11.1's misreading of the push (see the header), so the connection is
   * reconnected too; the channel moves once the slot map shows its new owner.
   */
  private droppedByServer(key: string, channel: string): void {
    if (this.closed || this.assigned.get(channel) !== key || !this.handlers.has(channel)) return;
    const shard = this.shards.get(key);
    this.assign(channel, null);
    this.moving.add(channel);
    this.settle();
    if (shard) {
      shard.channels.unsubscribe(channel);
      this.retireIfIdle(shard);
      if (this.shards.get(key) === shard && shard.connection.status === 'ready') shard.connection.disconnect(true);
    }
    this.cluster.refreshSlotsCache(() => this.reconcile());
    this.scheduleRefresh();
  }

  /** Sets (or with null clears) the shard `channel` is assigned to, keeping {@link perShard} in step. */
  private assign(channel: string, key: string | null): void {
    const previous = this.assigned.get(channel);
    if (previous === key) return;
    if (previous !== undefined) {
      const left = this.perShard.get(previous)! - 1;
      if (left === 0) this.perShard.delete(previous);
      else this.perShard.set(previous, left);
      this.assigned.delete(channel);
    }
    if (key !== null) {
      this.assigned.set(channel, key);
      this.perShard.set(key, (this.perShard.get(key) ?? 0) + 1);
    }
  }

  /** Closes a shard connection nobody listens on (and that waits for nothing). */
  private retireIfIdle(shard: Shard): void {
    if (this.shards.get(shard.key) !== shard) return;
    if (shard.channels.size > 0) return;
    if (this.perShard.has(shard.key)) return;
    this.shards.delete(shard.key);
    this.down.delete(shard.key);
    shard.connection.disconnect();
  }

  private markDown(key: string): void {
    this.down.add(key);
    this.settle();
  }

  /** Tells the owner about a change of "everything desired is confirmed" (lost / resubscribed). */
  private settle(): void {
    // "Lost" means a desired channel is not confirmed: a down shard that no desired channel is assigned to any more
    // (its channels moved or were released) and a move of a channel nobody wants hold nothing back.
    // Such a shard is closed too if nothing listens on it (a channel that moved while its SSUBSCRIBE was in flight
    // on a master that died leaves no handler there, so its move retired nothing).
    for (const key of this.down) {
      if (this.perShard.has(key)) continue;
      const shard = this.shards.get(key);
      if (shard) this.retireIfIdle(shard);
      this.down.delete(key);
    }
    for (const channel of this.moving) if (!this.handlers.has(channel)) this.moving.delete(channel);
    const nowLost = this.down.size > 0 || this.moving.size > 0;
    if (nowLost && !this.lost) {
      this.lost = true;
      this.hooks.onLost();
    } else if (!nowLost && this.lost) {
      this.lost = false;
      if (this.refreshTimer) clearTimeout(this.refreshTimer);
      this.refreshTimer = null;
      this.refreshAttempt = 0;
      this.hooks.onResubscribed();
    }
  }

  /** Refreshes the cluster's slot map soon (backoff 250 ms .. maxRefreshDelayMs); its `refresh` event reconciles. */
  private scheduleRefresh(): void {
    if (this.closed || this.refreshTimer) return;
    const delay = Math.min(250 * 2 ** this.refreshAttempt, this.opts.maxRefreshDelayMs ?? 2000);
    this.refreshAttempt++;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      this.cluster.refreshSlotsCache(() => {
        // Refreshed or not: reconcile with what the map says now, and go on while something is still missing.
        this.reconcile();
        if (this.lost && !this.closed) this.scheduleRefresh();
      });
    }, delay);
    this.refreshTimer.unref();
  }

  /** One reconciliation at a time; a change during one runs another after it. */
  private reconcile(): void {
    if (this.closed) return;
    if (this.reconciling) {
      this.reconcileAgain = true;
      return;
    }
    this.reconciling = this.moveToOwners()
      .catch((error: unknown) => this.hooks.onError('sharded resubscribe', error))
      .finally(() => {
        this.reconciling = null;
        if (this.reconcileAgain) {
          this.reconcileAgain = false;
          this.reconcile();
        }
      });
  }

  /**
   * Compares every desired channel's shard with the slot map: a channel whose
   * slot moved (failover, migration) is released on the old shard and
   * SSUBSCRIBEd on the new owner; until that is confirmed the owner counts as
   * lost (so it catches up from history afterwards). A shard that lost some of
   * its channels but keeps others is reconnected (see the header); a shard left
   * without channels is closed.
   */
  private async moveToOwners(): Promise<void> {
    const recycle = new Set<string>();
    for (const channel of this.handlers.keys()) {
      const owner = this.ownerOf(channel);
      const current = this.assigned.get(channel);
      if (owner === null || owner === current) continue;
      if (current !== undefined) {
        const old = this.shards.get(current);
        if (old?.channels.has(channel)) {
          old.channels.unsubscribe(channel);
          recycle.add(current);
        }
      }
      this.assign(channel, owner);
      this.moving.add(channel);
    }
    if (this.moving.size > 0) this.settle();
    for (const key of recycle) {
      const shard = this.shards.get(key);
      if (!shard) continue;
      this.retireIfIdle(shard);
      if (this.shards.get(key) === shard && shard.connection.status === 'ready') shard.connection.disconnect(true);
    }
    const byOwner = new Map<string, string[]>();
    for (const channel of this.moving) {
      const owner = this.assigned.get(channel)!;
      byOwner.set(owner, [...(byOwner.get(owner) ?? []), channel]);
    }
    await Promise.all(
      [...byOwner].map(async ([owner, channels]) => {
        let shard: Shard;
        try {
          shard = await this.shardFor(owner);
        } catch {
          this.scheduleRefresh(); // not reachable yet: the next refresh or its 'ready' tries again
          return;
        }
        await Promise.all(
          channels.map(async (channel) => {
            const handler = this.handlers.get(channel);
            if (!handler || this.assigned.get(channel) !== owner) return;
            try {
              await shard.channels.subscribe(channel, handler);
              if (this.assigned.get(channel) === owner) this.moving.delete(channel);
            } catch {
              this.scheduleRefresh();
            }
          }),
        );
      }),
    );
    this.settle();
  }
}

/** `host:port` (IPv6 hosts keep their colons) → [host, port]. */
function splitNodeKey(key: string): [string, number] {
  const at = key.lastIndexOf(':');
  return [key.slice(0, at), Number(key.slice(at + 1))];
}

/** Resolves when `connection` is ready, or has closed or ended first. */
function readyOrGone(connection: Redis): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      connection.off('ready', done);
      connection.off('close', done);
      connection.off('end', done);
      resolve();
    };
    connection.once('ready', done);
    connection.once('close', done);
    connection.once('end', done);
  });
}
