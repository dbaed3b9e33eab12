/**
 * The event bus of the Redis backend: one subscription per channel per
 * instance, through classic pub/sub on one Redis (redis-channels.ts) or
 * sharded pub/sub on a Redis Cluster (redis-sharded-channels.ts), with the
 * catch-up from history after a reconnect, a failover or a slot move.
 */
import type { Redis } from 'ioredis';
import { isUnavailable } from '../domain/errors.js';
import type { JobEvent } from '../domain/job.js';
import { RedisChannels, type PubSubChannels, type RedisChannelsHooks } from './redis-channels.js';
import type { RedisKeyspace } from './redis-keys.js';
import { RedisShardedChannels, type ShardedChannelsState } from './redis-sharded-channels.js';
import { TopicFanout } from './topic-fanout.js';
import type { BusEvent, EventBus, GapHandler } from './types.js';

/** Every bus message is a JSON object with a numeric `offset` (job events, topic-log entries, activity notices). */
const isBusEvent = (value: unknown): value is BusEvent =>
  typeof value === 'object' && value !== null && typeof (value as BusEvent).offset === 'number';

/** See {@link RedisEventBus.debugState}. */
export interface RedisBusState {
  /** Topics whose live events are held back until their catch-up (and how many wait). */
  held: { topic: string; held: number }[];
  /** The recovery running now (null: none): since `startedAt` (ms since epoch), for `forMs`, its retry `attempt`. */
  recovery: { startedAt: number; forMs: number; attempt: number; pending: string[]; lastError: string | null } | null;
  /** Another recovery runs after this one (a connection was lost and regained meanwhile). */
  recoverAgain: boolean;
  /** On a Redis Cluster: the sharded channels' state; null on one Redis. */
  sharded: ShardedChannelsState | null;
}

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
  /** The recovery in progress, for {@link debugState}: when it started (ms since epoch), its attempt, what it waits for. */
  private recovery: { startedAt: number; attempt: number; pending: string[]; lastError: string | null } | null = null;

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

  /**
   * Why this instance may not deliver live events now, for a test that timed out or an operator (not a public API;
   * the shape may change): the topics held back since a connection was lost (with how many live events wait), the
   * recovery in progress (started when, which attempt, the topics it still has to catch up, the last catch-up
   * error), whether another recovery is queued behind it, and on a Redis Cluster the sharded channels' state.
   */
  debugState(): RedisBusState {
    return {
      held: this.fanout.heldTopics(),
      recovery: this.recovery && { ...this.recovery, pending: [...this.recovery.pending], forMs: Date.now() - this.recovery.startedAt },
      recoverAgain: this.recoverAgain,
      sharded: this.channels instanceof RedisShardedChannels ? this.channels.debugState() : null,
    };
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
    const recovery = { startedAt: Date.now(), attempt: 0, pending: pending.map((p) => p.topic), lastError: null as string | null };
    this.recovery = recovery;
    try {
      for (let attempt = 0; pending.length > 0 && attempt < 30 && !this.closed; attempt++) {
        if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(200 * attempt, 2000)).unref());
        recovery.attempt = attempt;
        recovery.pending = pending.map((p) => p.topic);
        for (let i = pending.length - 1; i >= 0; i--) {
          const { topic, last } = pending[i]!;
          try {
            const fill = this.gapHandler ? await this.gapHandler(topic, last) : null;
            // Live events held back since the connection dropped follow the caught-up ones, in offset order.
            this.fanout.resume(topic, fill?.events ?? [], fill?.isReset);
            pending.splice(i, 1);
          } catch (error) {
            recovery.lastError = `${topic}: ${error instanceof Error ? error.message : String(error)}`;
            if (!isUnavailable(error)) this.onError(topic, error);
          }
        }
      }
    } finally {
      this.recovery = null;
      // Given up on (or closing): deliver what was held back rather than hold it forever.
      for (const { topic } of pending) this.fanout.resume(topic, []);
    }
  }

  async close() {
    this.closed = true;
    if (this.channels instanceof RedisShardedChannels) this.channels.close();
  }
}

