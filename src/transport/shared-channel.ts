/**
 * Shared channels: one subscription stream per operation shape, many
 * subscribers (issue 20, "one shared channel per operation shape").
 *
 * WebSocket subscribers on one instance that send the same document, with
 * the same operation name and variables, and whose tokens have the same
 * tenant, scopes and job restriction (the channel key, made by the caller:
 * src/transport/ws.ts `channelKeyOf`) share one {@link Channel}. The channel
 * is one ordinary subscription — started through the envelop like any other
 * (validation, the root field's authorization, its plugins' hooks, one
 * OpenTelemetry span per channel), whose source stream (a {@link LiveStream})
 * is piped into the channel: each event is executed and serialized once, and
 * handed to every member. A member ({@link Member}) is an id, its
 * connection, its frame prefix and — only while its socket is full — a queue
 * of shared entries.
 *
 * - Joining an open channel is synchronous: the joiner's first event is the
 *   stream's `joinStart` (runProgress: a SNAPSHOT of the job as the channel's
 *   newest event left it, carrying that event's cursor), then every later
 *   event of the channel. Nothing runs between the two, so nothing is missed
 *   and nothing comes twice. The SNAPSHOT is executed and serialized once per
 *   channel event, however many join in between.
 * - Members that arrive while the channel is opening wait in it and get the
 *   stream's own first events (its SNAPSHOT) when it opens.
 * - A subscriber with a cursor of its own (`after`; the channel key leaves it
 *   out) joins an open channel replaying ({@link Channel.attachAfter}): a
 *   member at once, queueing the channel's events (bounded), it reads the
 *   history after its cursor up to the channel's newest event
 *   (LiveStreamPolicy.joinAfter; a SNAPSHOT instead when the cursor cannot be
 *   resumed), executes and serializes it for itself, sends it, then its
 *   queue, dropping queued events at or below what it replayed (the seam).
 *   With no channel of its key it opens one (its operation run with the
 *   cursor null) and replays once it is open, in place of the stream's start.
 * - Per member, the same bounds as a subscriber's own stream
 *   ({@link LiveStreamPolicy}): past the socket's buffer bound the member
 *   queues (shared entries, never copies), conflates conflatable entries of a
 *   key past `conflateAbove`, and past `maxQueued` is dropped: its
 *   connection is closed by `dropSlowConsumer` (4008), counted as dropped.
 * - A channel whose executions turn out to be asynchronous (a document that
 *   selects fields resolved with I/O) keeps its members but takes no more
 *   joiners: their start could not be made in order with its events. Later
 *   subscribers get a channel of their own.
 * - The channel ends when its stream ends (its members get `complete` after
 *   their queued events), fails (each gets the masked `error`), or its last
 *   member leaves (the stream is returned and the envelop wrapper closed, so
 *   plugin end hooks run). One topic subscription per channel; no timer.
 *
 * Plugins that count subscriptions count members through
 * {@link StreamTransport.members} (src/observe/graphql.ts: the
 * `runwatch_subscriptions_active` gauge and the operations counter).
 */
import type { ExecutionResult } from 'graphql';
import { MessageType } from 'graphql-ws';
import { ConflatingQueue } from '../domain/conflation.js';
import type { DeliveryStamp, LiveStreamPolicy, MemberObserver, PushSource, StreamSink } from '../delivery/live-stream.js';
import type { StreamPosition } from '../domain/cursor.js';
import { serializeResult, type SharedExecutor } from '../delivery/shared-execution.js';

/** What a member needs of its connection (implemented by graphql-ws-server's Connection). */
export interface MemberOutlet {
  readonly opts: { maskError(error: unknown): Error };
  /** Is the socket over its buffer bound? */
  readonly full: boolean;
  /** Sends `prefix` + `payload` + `}`; false when the socket is over its bound or closed. */
  sendFrame(prefix: Buffer, payload: Buffer): boolean;
  sendMessage(message: object): void;
  /** Calls `waiter.resume()` once the socket drains. */
  waitForDrain(waiter: { resume(): void }): void;
  /** Closes the connection for a slow consumer (4008). */
  dropSlowConsumer(): void;
}

/** Who owns a member (its operation on the connection): told once when the member ends. */
export interface MemberOwner {
  released(member: Member): void;
}

/**
 * One event of a channel, executed and serialized once, shared by every
 * member that queues it. It keeps what members need of the event (its offset,
 * whether it is a reset, its delivery stamp), not the event: a lagging
 * member's queue holds the serialized bytes alone, and the event, its parsed
 * text and its execution result die young (issue 20: a stalled member's
 * 1,000 queued ~18 KiB events held ~36 KB each, now ~18).
 */
interface Entry {
  /** The masked result's UTF-8 JSON (shared, never modified). */
  readonly bytes: Buffer;
  /** Conflation key; null: never conflated. */
  readonly conflation: string | null;
  /** The event's offset (LiveStreamPolicy.offsetOf). */
  readonly offset: number;
  /** Is the event a fresh start (LiveStreamPolicy.isReset)? */
  readonly reset: boolean;
  /** What the delivery metric needs of the event (LiveStreamPolicy.stampOf); null: none. */
  readonly stamp: DeliveryStamp | null;
}

const isConflatableEntry = (entry: Entry) => entry.conflation !== null;
const entryKey = (entry: Entry) => entry.conflation!;

/** Why a channel could not open, as its waiting members are told. */
export type OpenFailure = { errors: readonly Error[] } | { result: ExecutionResult } | { error: unknown };

/** Counters for diagnostics, tests and benchmarks: channels whose subscription started, members that joined one (waiting or later). */
export const sharedChannelStats = { opened: 0, joined: 0 };

/** The channels of one server, by key. */
export class ChannelRegistry {
  private readonly channels = new Map<string, Channel>();

  /** Channels open or opening now. */
  get size(): number {
    return this.channels.size;
  }

  /** The channel of `key` that takes joiners, if any. */
  get(key: string): Channel | undefined {
    return this.channels.get(key);
  }

  /** A new, opening channel under `key` (replacing one that takes no more joiners). */
  create(key: string): Channel {
    const channel = new Channel(key, this);
    this.channels.set(key, channel);
    return channel;
  }

  /** Takes `channel` out (it ended, or takes no more joiners). */
  forget(channel: Channel): void {
    if (this.channels.get(channel.key) === channel) this.channels.delete(channel.key);
  }
}

/** One shared subscription and its members (see the module doc). */
export class Channel implements StreamSink<unknown> {
  private readonly members = new Set<Member>();
  private opening = true;
  private ended = false;
  private source: PushSource<unknown> | null = null;
  private policy: LiveStreamPolicy<unknown> | null = null;
  private executor: SharedExecutor | null = null;
  private wrapper: AsyncIterable<unknown> | null = null;
  private observers: readonly MemberObserver[] = [];
  private maskError: ((error: unknown) => Error) | null = null;
  /** The newest event handed to the members; a joiner starts from it. */
  private last: unknown = undefined;
  /** The joiners' start made from `last`. */
  private join: { last: unknown; entries: Entry[] } | null = null;
  /** Members that joined with a cursor while the channel was opening: their replay starts when it opens. */
  private cursorWaiters: Map<Member, StreamPosition> | null = null;
  /** An asynchronous execution is in flight (the source is paused meanwhile). */
  private pending = false;
  private completeAfterPending = false;

  constructor(
    readonly key: string,
    private readonly registry: ChannelRegistry,
  ) {}

  /** Members now (tests, diagnostics). */
  get size(): number {
    return this.members.size;
  }

  /**
   * Adds `member`: while opening, it waits for the stream's first events;
   * once open, it gets the join start at once and every later event.
   * @returns false when the channel cannot take it now (ended, or its join start would be asynchronous): open another.
   */
  attach(member: Member): boolean {
    if (this.ended) return false;
    if (this.opening) {
      member.channel = this;
      this.members.add(member);
      return true;
    }
    const entries = this.joinEntries();
    if (!entries) return false;
    member.channel = this;
    this.members.add(member);
    this.joined(member);
    for (const entry of entries) member.offer(entry);
    return true;
  }

  /**
   * Adds `member`, whose subscriber has a cursor of its own (`after`): it is
   * a member at once (counted, and queueing the channel's new events from
   * now on, bounded like any member's queue), then replays the stream's
   * history after its cursor up to the channel's newest event as of now
   * (LiveStreamPolicy.joinAfter; a SNAPSHOT instead when the cursor cannot be
   * resumed), executed and serialized for it alone, then its queue — queued
   * events at or below what it replayed dropped by offset at the seam.
   * While the channel opens it waits, holding the stream's start, and
   * replays once the channel is open (its replay then replaces that start).
   * @returns false when the channel cannot take it now (ended, an execution
   *   in flight, or a stream without `joinAfter`): the caller runs the
   *   subscription on a stream of its own.
   */
  attachAfter(member: Member, after: StreamPosition): boolean {
    if (this.opening && !this.ended) {
      // Waits like any member, holding what the stream starts with; its replay starts once the channel opens (start).
      member.channel = this;
      this.members.add(member);
      member.hold();
      (this.cursorWaiters ??= new Map()).set(member, after);
      return true;
    }
    const policy = this.policy;
    const last = this.last;
    if (this.ended || this.opening || this.pending || last === undefined || !policy?.joinAfter || !policy.joinStart) return false;
    member.channel = this;
    this.members.add(member);
    this.joined(member);
    member.hold();
    void this.replayFor(member, policy, after, last);
    return true;
  }

  /** The replay of a member joining with its cursor (see {@link attachAfter}); a failure ends that member with the masked error. */
  private async replayFor(member: Member, policy: LiveStreamPolicy<unknown>, after: StreamPosition, last: unknown, heldStart = false): Promise<void> {
    const executor = this.executor!;
    const entries: Entry[] = [];
    let seam: number;
    try {
      let replay = await policy.joinAfter!(after, last);
      // Nothing after the cursor and nothing to come (the stream's start was final): the final state, as startEvents does.
      if (replay?.length === 0 && policy.isFinal(last)) replay = null;
      if (heldStart && !replay) return member.release([], -Infinity, false); // the held start is the SNAPSHOT it needs
      const events = replay ?? policy.joinStart!(last);
      // Queued channel events at or below the cursor (replay) or the SNAPSHOT's offset (fresh start) are duplicates.
      seam = replay ? after.offset : policy.offsetOf(last);
      for (const event of events) {
        if (member.done) return;
        entries.push(this.entry(event, await executor.execute(event)));
        if (replay) seam = Math.max(seam, policy.offsetOf(event));
      }
    } catch (error) {
      member.fail(error);
      return;
    }
    member.release(entries, seam, heldStart);
  }

  /** `member` left (client `complete`, socket closed, dropped): the channel ends with its last member. */
  leave(member: Member): void {
    if (member.counted) {
      member.counted = false;
      for (const o of this.observers) o.left();
    }
    if (!this.members.delete(member)) return;
    if (this.members.size === 0 && !this.opening) this.end();
  }

  /**
   * The channel's subscription started: `source` (a LiveStream with `policy`)
   * is piped into it, executed by `executor`; `wrapper` is the envelop's
   * response stream, closed at the end for plugin end hooks (null when no
   * plugin has one: nothing of it is kept); `observers` count members.
   * Waiting members get the stream's first events now.
   */
  start(
    source: PushSource<unknown>,
    policy: LiveStreamPolicy<unknown>,
    executor: SharedExecutor,
    wrapper: AsyncIterable<unknown> | null,
    observers: readonly MemberObserver[],
    maskError: (error: unknown) => Error,
  ): void {
    this.source = source;
    this.policy = policy;
    this.executor = executor;
    this.wrapper = wrapper;
    this.observers = observers;
    this.maskError = maskError;
    this.opening = false;
    sharedChannelStats.opened++;
    if (this.members.size === 0) return this.end();
    for (const member of this.members) this.joined(member);
    source.pipe(this);
    this.replayWaiters();
  }

  /** Starts the replays of the members that joined with a cursor while it opened, once it has an event to replay up to. */
  private replayWaiters(): void {
    const waiters = this.cursorWaiters;
    if (!waiters || this.last === undefined) return;
    this.cursorWaiters = null;
    for (const [member, after] of waiters) this.startReplay(member, after);
  }

  /**
   * A member that joined with its cursor while the channel opened: its replay
   * up to the channel's newest event replaces the stream's start (the SNAPSHOT
   * it holds).
   */
  private startReplay(member: Member, after: StreamPosition): void {
    const policy = this.policy!;
    if (member.done) return;
    if (!policy.joinAfter || !policy.joinStart) return member.release([], -Infinity, false);
    void this.replayFor(member, policy, after, this.last, true);
  }

  /** The channel's subscription could not start: every waiting member is told `failure`, then the channel is gone. */
  fail(failure: OpenFailure): void {
    this.opening = false;
    this.ended = true;
    this.registry.forget(this);
    const members = [...this.members];
    this.members.clear();
    for (const member of members) member.refused(failure);
  }

  private joined(member: Member): void {
    sharedChannelStats.joined++;
    member.counted = true;
    member.policy = this.policy;
    for (const o of this.observers) o.joined();
  }

  /** A joiner's first entries, made once per channel event; null when they cannot be made synchronously (the channel then takes no more joiners). */
  private joinEntries(): Entry[] | null {
    if (this.pending || this.last === undefined) return null;
    if (this.join?.last === this.last) return this.join.entries;
    const entries: Entry[] = [];
    for (const event of this.policy!.joinStart!(this.last)) {
      const result = this.executor!.execute(event);
      if (result instanceof Promise) {
        result.catch(() => undefined);
        this.registry.forget(this);
        return null;
      }
      entries.push(this.entry(event, result));
    }
    this.join = { last: this.last, entries };
    return entries;
  }

  private entry(event: unknown, result: ExecutionResult): Entry {
    const policy = this.policy!;
    return {
      bytes: serializeResult(result, this.maskError!),
      conflation: policy.isConflatable(event) ? (policy.conflationKey?.(event) ?? '') : null,
      offset: policy.offsetOf(event),
      reset: policy.isReset?.(event) ?? false,
      stamp: policy.stampOf?.(event) ?? null,
    };
  }

  /** StreamSink: one event of the stream, executed once, handed to every member. */
  next(event: unknown): boolean {
    if (this.ended) return false;
    let result: ExecutionResult | Promise<ExecutionResult>;
    try {
      result = this.executor!.execute(event);
    } catch (error) {
      this.error(error);
      return false;
    }
    if (result instanceof Promise) {
      // Asynchronous execution: joiners' starts could not be ordered with the events any more.
      this.registry.forget(this);
      this.pending = true;
      result.then(
        (settled) => {
          this.pending = false;
          if (this.ended) return;
          this.fanOut(event, settled);
          if (this.completeAfterPending) return this.complete();
          this.source!.resume();
        },
        (error: unknown) => {
          this.pending = false;
          this.error(error);
        },
      );
      return false;
    }
    this.fanOut(event, result);
    return true;
  }

  private fanOut(event: unknown, result: ExecutionResult): void {
    this.last = event;
    const entry = this.entry(event, result);
    for (const member of this.members) member.offer(entry);
    if (this.cursorWaiters) this.replayWaiters();
  }

  /** StreamSink: the stream ended after its final event; members complete once their queues are sent. */
  complete(): void {
    if (this.pending) {
      this.completeAfterPending = true;
      return;
    }
    if (this.ended) return;
    const members = [...this.members];
    this.end();
    for (const member of members) member.complete();
  }

  /** StreamSink: the stream failed (e.g. shutdown): every member gets the masked error. */
  error(error: unknown): void {
    if (this.ended) return;
    const members = [...this.members];
    this.end();
    for (const member of members) member.fail(error);
  }

  /** Ends once: out of the registry, the stream returned, the envelop wrapper closed (plugin end hooks). */
  private end(): void {
    if (this.ended) return;
    this.ended = true;
    this.registry.forget(this);
    // Members that joined with a cursor and saw no event: nothing to replay up to; they take what they hold.
    const waiters = this.cursorWaiters;
    this.cursorWaiters = null;
    if (waiters) for (const member of waiters.keys()) member.release([], -Infinity, false);
    // Members still draining their queues leave later, one by one (and are counted out then).
    this.members.clear();
    void this.source?.return();
    const wrapper = this.wrapper;
    this.wrapper = null;
    if (wrapper) void Promise.resolve(wrapper[Symbol.asyncIterator]().return?.()).catch(() => undefined);
    this.join = null;
    this.last = undefined;
  }
}

/** One subscriber of a channel: an id (its frame prefix), its connection and, only while it lags, a queue. */
export class Member {
  /** Counted by the channel's observers (joined, not yet left). */
  counted = false;
  /** The channel's queue rules (set when it joins an open channel). */
  policy: LiveStreamPolicy<unknown> | null = null;
  private queue: ConflatingQueue<Entry> | null = null;
  private paused = false;
  private completing = false;
  private ended = false;
  /** Replaying from its own cursor: channel events queue until {@link release}. */
  private holding = false;
  /** Its replay (or SNAPSHOT), sent before its queue; null when none is left. */
  private backlog: Entry[] | null = null;
  /** Queued entries at or below this offset duplicate the replay (up to a reset, which is always sent); null once the queue held at the seam is sent. */
  private seam: number | null = null;
  /** Drop the resets at the queue's front at or below `seam` (see {@link release}). */
  private skipStart = false;

  /** Its channel (set when a channel takes it). */
  channel: Channel | null = null;

  constructor(
    private readonly outlet: MemberOutlet,
    private readonly owner: MemberOwner,
    readonly id: string,
    private readonly prefix: Buffer,
  ) {}

  /** One entry, in order: sent at once while the socket has room and nothing waits, else queued (bounded, conflating). */
  offer(entry: Entry): void {
    if (this.ended) return;
    if (!this.paused && !this.holding && this.backlog === null && (this.queue === null || this.queue.length === 0)) {
      this.send(entry);
      return;
    }
    const policy = this.policy!;
    const queue = (this.queue ??= new ConflatingQueue<Entry>(policy.conflateAbove, policy.maxQueued, isConflatableEntry, entryKey));
    const before = queue.length;
    const pushed = queue.push(entry);
    if (pushed === 'conflated') policy.onConflated?.(before + 1 - queue.length);
    else if (pushed === 'overflow') {
      // Counts the drop (the channel's own stream has no transport to close); the connection goes with 4008.
      policy.onOverflow();
      this.finish(false);
      this.outlet.dropSlowConsumer();
    }
  }

  private send(entry: Entry): void {
    if (entry.stamp) this.policy!.onMemberDelivered?.(entry.stamp);
    if (this.outlet.sendFrame(this.prefix, entry.bytes)) return;
    this.paused = true;
    if (this.outlet.full) this.outlet.waitForDrain(this);
  }

  /** Has it ended (left, dropped, failed or completed)? */
  get done(): boolean {
    return this.ended;
  }

  /** Starts a replay of its own (Channel.attachAfter): the channel's events queue, bounded, until {@link release}. */
  hold(): void {
    this.holding = true;
  }

  /**
   * Its replay is made: `entries` go first, then its queue, where entries at
   * or below offset `seam` (not resets) are dropped; with `skipStart`, also
   * the resets at the queue's front at or below `seam` (the stream's start,
   * which its replay replaces).
   */
  release(entries: Entry[], seam: number, skipStart: boolean): void {
    if (this.ended) return;
    this.holding = false;
    this.backlog = entries.length > 0 ? entries : null;
    this.seam = seam;
    this.skipStart = skipStart;
    this.resume();
  }

  /** The socket drained (or the replay is made): send the backlog, then what is queued, until the socket is full again. */
  resume(): void {
    if (this.ended || this.holding) return;
    this.paused = false;
    const backlog = this.backlog;
    while (backlog && backlog.length > 0) {
      if (this.outlet.full) return this.waitForDrain();
      this.send(backlog.shift()!);
      if (this.paused) return;
    }
    this.backlog = null;
    const queue = this.queue;
    while (queue && queue.length > 0) {
      if (this.outlet.full) return this.waitForDrain();
      const entry = queue.shift()!;
      if (this.skipStart) {
        if (entry.reset && entry.offset <= this.seam!) continue;
        this.skipStart = false;
      }
      if (this.seam !== null && entry.offset <= this.seam && !entry.reset) continue;
      // A reset (a SNAPSHOT after lost history) starts offsets afresh: nothing after it duplicates the replay.
      if (this.seam !== null && entry.reset) this.seam = null;
      this.send(entry);
      if (this.paused) return;
    }
    this.seam = null;
    this.skipStart = false;
    if (this.completing) this.finish(true);
  }

  private waitForDrain(): void {
    this.paused = true;
    this.outlet.waitForDrain(this);
  }

  /** The channel's stream ended: `complete` once the replay and queue are sent. */
  complete(): void {
    if (!this.holding && this.backlog === null && (this.queue === null || this.queue.length === 0)) this.finish(true);
    else this.completing = true;
  }

  /** The channel's stream failed: the masked error, at once. */
  fail(error: unknown): void {
    if (this.ended) return;
    this.outlet.sendMessage({ id: this.id, type: MessageType.Error, payload: [errorJson(this.outlet.opts.maskError(error))] });
    this.finish(false);
  }

  /** The channel could not open: what a subscription of its own would have sent. */
  refused(failure: OpenFailure): void {
    if (this.ended) return;
    if ('errors' in failure) this.outlet.sendMessage({ id: this.id, type: MessageType.Error, payload: failure.errors.map(errorJson) });
    else if ('result' in failure) {
      this.outlet.sendMessage({ id: this.id, type: MessageType.Next, payload: failure.result });
      this.outlet.sendMessage({ id: this.id, type: MessageType.Complete });
    } else this.outlet.sendMessage({ id: this.id, type: MessageType.Error, payload: [errorJson(this.outlet.opts.maskError(failure.error))] });
    this.finish(false);
  }

  /** Client `complete` or the socket closed: leave without a word. */
  cancel(): void {
    this.finish(false);
  }

  private finish(notify: boolean): void {
    if (this.ended) return;
    this.ended = true;
    this.queue = null;
    this.channel?.leave(this);
    this.owner.released(this);
    if (notify) this.outlet.sendMessage({ id: this.id, type: MessageType.Complete });
  }
}

/** A GraphQLError-like error as it goes on the wire. */
function errorJson(error: Error): unknown {
  const toJSON = (error as { toJSON?: () => unknown }).toJSON;
  return typeof toJSON === 'function' ? toJSON.call(error) : { message: error.message };
}
