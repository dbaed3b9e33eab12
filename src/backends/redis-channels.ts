/**
 * The Redis SUBSCRIBE side of the event bus: which channels this instance's
 * subscriber connection listens to, kept equal to the channels that have a
 * local listener, through outages.
 *
 * Why not graphql-redis-subscriptions' `subscribe`/`unsubscribe`: its
 * `unsubscribe` fires UNSUBSCRIBE and PUNSUBSCRIBE without handling their
 * promises, and a failed SUBSCRIBE rejects an internal promise nobody
 * awaits; with Redis away either is an unhandled rejection that ends the
 * process (issue 9). Here every command's promise is handled, and the
 * desired set is the single source of truth:
 *
 * - {@link subscribe} adds a channel and resolves once Redis confirms the
 *   SUBSCRIBE; while the connection is down it fails fast with
 *   SERVICE_UNAVAILABLE (like every store command) instead of queueing.
 * - {@link unsubscribe} removes it; while connected it sends UNSUBSCRIBE,
 *   while disconnected it only records the release (nothing to send: see next).
 * - ioredis' own re-subscribe is off (`autoResubscribe: false`); after every
 *   reconnect the new connection SUBSCRIBEs exactly the desired set, so a
 *   channel released during the outage is never subscribed again and one
 *   somebody listens to is never dropped. A SUBSCRIBE that ioredis re-sends
 *   from before the outage for a channel released since is undone when its
 *   reply arrives.
 */
import type { Redis } from 'ioredis';
import { DomainError } from '../domain/errors.js';

/** Callbacks of {@link RedisChannels}. */
export interface RedisChannelsHooks {
  /** The connection closed: nothing published from now until {@link onResubscribed} reaches this instance live. */
  onLost(): void;
  /**
   * Called after a reconnect once the new connection listens to every desired
   * channel (SUBSCRIBE confirmed, then a PING answered): from then on nothing
   * published is missed, so catch-up from history can start.
   */
  onResubscribed(): void;
  /** A command on the subscriber connection failed for a reason other than the connection being down. */
  onError(context: string, error: unknown): void;
}

const unavailable = () => new DomainError('SERVICE_UNAVAILABLE', 'the backend (Redis) is unreachable; retry later');

/**
 * The desired-set contract both channel classes keep ({@link RedisChannels}
 * on one node, RedisShardedChannels on a Redis Cluster), so the event bus can
 * take either: one subscription per channel, confirmed before `subscribe`
 * resolves, fail fast while down, releases never lost to an outage.
 */
export interface PubSubChannels {
  /** Channels with a handler now (what the connection(s) listen to once connected). */
  readonly channels: string[];
  /**
   * Listens to `channel` with `handler` (one handler per channel: the caller fans out); resolves once Redis confirmed it.
   * @throws DomainError SERVICE_UNAVAILABLE when the connection is down or drops before the confirmation.
   */
  subscribe(channel: string, handler: (message: string) => void): Promise<void>;
  /** Stops listening to `channel`. Never throws; a release during an outage is reconciled on reconnect. */
  unsubscribe(channel: string): void;
}

/**
 * Which pub/sub commands a {@link RedisChannels} sends: classic
 * (SUBSCRIBE/UNSUBSCRIBE, `message` events) or sharded (SSUBSCRIBE/SUNSUBSCRIBE,
 * `smessage` events, Redis 7). A sharded SSUBSCRIBE may name only channels of
 * one slot (CROSSSLOT otherwise), so after a reconnect the sharded set is
 * re-subscribed one command per channel (`oneCommandPerChannel`), as ioredis
 * itself does since its PR 2021.
 */
export interface PubSubCommands {
  subscribe: 'subscribe' | 'ssubscribe';
  unsubscribe: 'unsubscribe' | 'sunsubscribe';
  message: 'message' | 'smessage';
  oneCommandPerChannel: boolean;
}
/** SUBSCRIBE/UNSUBSCRIBE on one Redis node (the default). */
export const CLASSIC_PUBSUB: PubSubCommands = { subscribe: 'subscribe', unsubscribe: 'unsubscribe', message: 'message', oneCommandPerChannel: false };
/** SSUBSCRIBE/SUNSUBSCRIBE on the connection to one Redis Cluster shard (redis-sharded-channels.ts). */
export const SHARDED_PUBSUB: PubSubCommands = { subscribe: 'ssubscribe', unsubscribe: 'sunsubscribe', message: 'smessage', oneCommandPerChannel: true };

/** Desired channel subscriptions on one ioredis subscriber connection (created with `autoResubscribe: false`). */
export class RedisChannels implements PubSubChannels {
  private readonly handlers = new Map<string, (message: string) => void>();
  private lost = false;

  /** @param commands classic (default) or sharded pub/sub, see {@link PubSubCommands}. */
  constructor(
    readonly subscriber: Redis,
    private readonly hooks: RedisChannelsHooks,
    private readonly commands: PubSubCommands = CLASSIC_PUBSUB,
  ) {
    subscriber.on(commands.message, (channel: string, message: string) => this.handlers.get(channel)?.(message));
    subscriber.on('close', () => {
      this.lost = true;
      this.hooks.onLost();
    });
    subscriber.on('ready', () => {
      if (!this.lost) return;
      this.lost = false;
      void this.resubscribe();
    });
  }

  /** Channels with a handler now (what the connection listens to once connected). */
  get channels(): string[] {
    return [...this.handlers.keys()];
  }

  /** How many channels have a handler now. */
  get size(): number {
    return this.handlers.size;
  }

  /** Whether `channel` has a handler now. */
  has(channel: string): boolean {
    return this.handlers.has(channel);
  }

  /**
   * Listens to `channel` with `handler` (one handler per channel: the caller
   * fans out). Resolves once Redis confirmed the SUBSCRIBE.
   * @throws DomainError SERVICE_UNAVAILABLE when the connection is down or drops before the confirmation.
   */
  async subscribe(channel: string, handler: (message: string) => void): Promise<void> {
    if (this.subscriber.status !== 'ready') throw unavailable();
    this.handlers.set(channel, handler);
    try {
      await this.subscriber[this.commands.subscribe](channel);
    } catch {
      if (this.handlers.get(channel) === handler) this.handlers.delete(channel);
      throw unavailable();
    } finally {
      this.undoIfReleased(channel);
    }
  }

  /** Stops listening to `channel`. Never throws; a release during an outage is reconciled on reconnect. */
  unsubscribe(channel: string): void {
    if (!this.handlers.delete(channel)) return;
    if (this.subscriber.status !== 'ready') return; // the next connection subscribes only to what is still desired
    this.subscriber[this.commands.unsubscribe](channel).catch(() => {
      // The connection dropped with the command in flight: the next connection starts without the channel.
    });
  }

  /** A SUBSCRIBE for a channel released meanwhile (e.g. re-sent by ioredis after a reconnect) is undone. */
  private undoIfReleased(channel: string): void {
    if (this.handlers.has(channel) || this.subscriber.status !== 'ready') return;
    this.subscriber[this.commands.unsubscribe](channel).catch(() => {});
  }

  /** After a reconnect: SUBSCRIBE the desired set on the fresh connection, PING behind it, then tell the owner. */
  private async resubscribe(): Promise<void> {
    try {
      const channels = this.channels;
      if (channels.length > 0) {
        if (this.commands.oneCommandPerChannel) await Promise.all(channels.map((c) => this.subscriber[this.commands.subscribe](c)));
        else await this.subscriber[this.commands.subscribe](...channels);
        // Released while the SUBSCRIBE was in flight: undo.
        for (const channel of channels) this.undoIfReleased(channel);
      }
      await this.subscriber.ping();
    } catch (error) {
      // Dropped again before it finished: the next 'ready' starts over.
      if (this.subscriber.status === 'ready') this.hooks.onError('resubscribe', error);
      return;
    }
    this.hooks.onResubscribed();
  }
}
