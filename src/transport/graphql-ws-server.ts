/**
 * A graphql-transport-ws server on a `ws` WebSocketServer, built for cheap
 * fan-out: per delivered event a subscriber costs a frame splice and one
 * `socket.send`, with no promise and no `JSON.stringify` of its own.
 *
 * Protocol semantics are graphql-ws 6's `makeServer` + `useServer` (ws
 * adapter), message for message and close code for close code; the message
 * types, validation (`parseMessage`), close codes and `handleProtocols` are
 * graphql-ws's own exports. See
 * https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md.
 *
 * - `connection_init` once (a second: close 4429), within
 *   `connectionInitWaitTimeoutMs` (else 4408); `onConnect` accepts or names the
 *   close code; then `connection_ack`.
 * - `subscribe` before the ack: 4401; an id already in use: 4409; an invalid
 *   message: 4400; `ping` → `pong` echoing the payload; `pong` ignored.
 * - Queries and mutations: `next` then `complete`. A document that fails to
 *   parse or validate: one `error` message, the connection stays.
 * - Subscriptions whose source stream can push ({@link PushSource}, found
 *   through {@link takeSharedSubscription}) run in push mode: each event is
 *   executed once per shared operation, its masked result serialized once
 *   ({@link serializeResult}), and each subscriber sends
 *   `{"id":<id>,"type":"next","payload":` + shared bytes + `}`. Backpressure
 *   is the socket's real buffered bytes: past `maxBufferedBytes` a subscriber
 *   pauses (its events wait, conflate, and past the stream's bound drop it
 *   with 4008) and resumes on the socket's 'drain' — one listener per
 *   connection. Other streams are iterated (`for await`) as graphql-ws does.
 * - Shared channels (with `channelKey`; src/transport/shared-channel.ts): a
 *   `subscribe` whose key names a channel joins it without running the
 *   envelop (the per-connection cap still applies): it gets the channel's
 *   join start (a SNAPSHOT) and then its events, as a member with its own
 *   buffer bound and queue. The first of a key opens the channel, whose one
 *   operation goes through `prepare` and the envelop like any other. A
 *   subscriber with its own `after` cursor joins the channel of its key (or
 *   opens it, with the cursor variable null) and replays from history before
 *   it takes the channel's events (Channel.attachAfter).
 * - Client `complete` releases the subscription at once; a stream that ends
 *   sends `complete`; a stream that fails sends `error` (masked).
 * - An unexpected error while handling a message closes with 4500 and a
 *   fixed reason ("Internal server error"); the error is logged, never sent.
 * - Keep-alive: a WebSocket ping every `keepAliveMs` (default 12 s, as
 *   useServer); no pong by the next one: the socket is terminated. One
 *   interval for the whole server walks the open connections (the heartbeat
 *   of the `ws` README), not a timer per connection.
 * - A close the server starts ({@link WsConnection.close}: 4008 for a slow
 *   consumer) releases the connection's operations at once and gives the
 *   socket `closeGraceMs` (default 3 s, {@link CloseGrace}: one sweep timer
 *   for the server) to complete the close handshake; a client that does not
 *   read its close frame by then (it stopped reading) is terminated.
 * - What a stalled subscriber holds: its stream's bounded, conflating queue
 *   (events shared with every other subscriber) and at most `maxBufferedBytes`
 *   (plus one frame) in its socket. Frames over {@link SPLICE_ABOVE} bytes are
 *   written as a header, the subscriber's prefix and the shared payload bytes
 *   (one `writev` with the socket corked), so a buffered frame references the
 *   shared serialized payload instead of copying it per subscriber.
 *
 * Every subscription is released exactly once whatever ends it (client
 * `complete`, socket close, stream end, stream error, shutdown): its source
 * stream's `return()` runs at once, then the envelop wrapper's `return()` so
 * plugin end hooks (metrics gauges, limits) run.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { GraphQLError, getOperationAST, type ExecutionArgs, type ExecutionResult } from 'graphql';
import { CloseCode as WsCloseCode, GRAPHQL_TRANSPORT_WS_PROTOCOL, handleProtocols, MessageType, parseMessage, type SubscribePayload } from 'graphql-ws';
import type { Logger } from 'pino';
import type { WebSocket, WebSocketServer } from 'ws';
import { channelPolicyOf, isPushSource, type PushSource, type StreamSink, type StreamTransport } from '../delivery/live-stream.js';
import { serializeResult, takeSharedSubscription, type SharedExecutor, type SharedSubscription } from '../delivery/shared-execution.js';
import { CloseGrace } from './close-grace.js';
import type { StreamPosition } from '../domain/cursor.js';
import { ChannelRegistry, Member, type Channel, type MemberOutlet, type MemberOwner } from './shared-channel.js';

type MaybePromise<T> = T | Promise<T>;

/** What `onConnect` decides: accept with a per-connection value (e.g. the viewer), or close with a code and reason. */
export type ConnectDecision<V> = { accept: V } | { close: { code: number; reason: string } };

/** One connection, as hooks see it. */
export interface WsConnection<V> {
  /** The socket (its upgrade request is not kept: ~1.1 KiB of headers per connection that nothing reads after the upgrade). */
  readonly socket: WebSocket;
  /** What `onConnect` accepted with (undefined before the ack). */
  readonly value: V | undefined;
  /** Operations on this connection, the one being subscribed included. */
  readonly operationCount: number;
  /**
   * Closes the connection with `code` and `reason` (e.g. 4008 for a slow
   * consumer): releases its operations at once, and terminates the socket if
   * the close has not completed within the server's `closeGraceMs`.
   */
  close(code: number, reason: string): void;
}

/** An operation ready to run: its execution arguments and the (envelop) functions that run it. */
export interface PreparedOperation {
  args: ExecutionArgs;
  execute(args: ExecutionArgs): MaybePromise<unknown>;
  subscribe(args: ExecutionArgs): MaybePromise<unknown>;
}

/** A `subscribe` that may join the channel of `key` with a cursor of its own (`after`, decoded): see shared-channel.ts `Channel.attachAfter`. */
export interface CursorJoin {
  key: string;
  after: StreamPosition;
  /** The variable that holds the cursor: a channel this subscriber opens runs its operation with it null. */
  variable: string;
}

/** Options of {@link serveGraphqlWs}. */
export interface GraphqlWsServerOptions<V> {
  /** Milliseconds a client has to send `connection_init` (default 3000, as graphql-ws); 0: no limit. */
  connectionInitWaitTimeoutMs?: number;
  /** Milliseconds between keep-alive pings; a socket with no pong by the next ping is terminated (default 12000); 0: none. */
  keepAliveMs?: number;
  /** Bytes a socket may buffer before a subscriber's delivery pauses until 'drain' (default 64 KiB; at least the socket's high-water mark). */
  maxBufferedBytes?: number;
  /** Milliseconds a socket the server closes has to complete the close before it is terminated (default 3000, {@link CloseGrace}). */
  closeGraceMs?: number;
  /** `connection_init` with its payload (an object, else undefined): accept or close. A throw closes with 4500. */
  onConnect(connection: WsConnection<V>, connectionParams: Record<string, unknown> | undefined): MaybePromise<ConnectDecision<V>>;
  /**
   * `subscribe`: build the operation, or return errors to send as one `error`
   * message. A throw closes with 4500. With `forChannel` the operation is a
   * shared channel's (see `channelKey`): built with this connection's
   * authentication, but no per-connection check and no transport of its own.
   */
  prepare(connection: WsConnection<V>, id: string, payload: SubscribePayload, forChannel?: boolean): MaybePromise<PreparedOperation | readonly GraphQLError[]>;
  /**
   * Shared channels (src/transport/shared-channel.ts): the key of the channel
   * a `subscribe` may share with others (subscribers with equal keys must get
   * equal results: same document, operation, variables, tenant and scopes),
   * null to run it on its own, or errors to refuse it with (e.g. a
   * per-connection cap; `prepare` is not called then). A {@link CursorJoin}:
   * the subscriber has a cursor of its own; it joins the key's channel after
   * a replay when that channel is open, else runs on its own. Omitted: no channels.
   */
  channelKey?(connection: WsConnection<V>, payload: SubscribePayload): string | CursorJoin | readonly GraphQLError[] | null;
  /**
   * May the envelop's response stream of a channel's operation carry plugin
   * end hooks (e.g. @envelop/opentelemetry ends a subscription's span in one)?
   * True (the default): the channel keeps that stream for its life and closes
   * it at its end, so they run. False, when no installed plugin has an end hook
   * for a WebSocket subscription: the channel keeps only its source stream and
   * lets the response stream — envelop's and Yoga's iterator wrappers, their
   * hook closures and what they hold, ~2.8 KiB per channel — go once it has
   * opened (the channel drives the source itself and returns it at its end).
   */
  channelEndHooks?: boolean;
  /** A channel member lagged past its queue bound: drop its connection (runwatch: close 4008). */
  onSlowConsumer?(connection: WsConnection<V>): void;
  /** Masks an error for clients (Yoga's `maskError`; runwatch: createErrorMasker). Must not throw. */
  maskError(error: unknown): Error;
  log: Logger;
}

/** Handle of a running {@link serveGraphqlWs}. */
export interface GraphqlWsServer {
  /** Closes every client with 1001 "Going away" and the WebSocketServer. */
  dispose(): Promise<void>;
}

const SUFFIX = Buffer.from('}');
/**
 * Payloads longer than this (bytes) are not copied into a frame of their own
 * per subscriber: the frame header and prefix go in one small buffer, the
 * shared payload bytes and the suffix are written after it (raw frames only,
 * see {@link Connection.sendFrame}). Shorter ones are cheaper copied into one buffer.
 */
export const SPLICE_ABOVE = 1024;
/** Frames are UTF-8 JSON sent from Buffers: as text frames (ws would send a Buffer as binary). */
const TEXT = { binary: false } as const;
const INTERNAL_REASON = 'Internal server error';

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;
const isAsyncIterable = (value: unknown): value is AsyncIterable<unknown> =>
  isObject(value) && typeof (value as Partial<AsyncIterable<unknown>>)[Symbol.asyncIterator] === 'function';

/** A GraphQLError-like error as it goes on the wire. */
const errorJson = (error: Error) => {
  const toJSON = (error as { toJSON?: () => unknown }).toJSON;
  return typeof toJSON === 'function' ? toJSON.call(error) : { message: error.message };
};

/**
 * Serves graphql-transport-ws on `wss` (sets its `handleProtocols`); see the module doc.
 * @returns a handle whose `dispose` closes every client and the server.
 */
export function serveGraphqlWs<V>(wss: WebSocketServer, opts: GraphqlWsServerOptions<V>): GraphqlWsServer {
  wss.options.handleProtocols = handleProtocols as never;
  const onServerError = (error: unknown) => {
    opts.log.error({ err: error }, 'websocket server error');
    for (const client of wss.clients) client.close(WsCloseCode.InternalServerError, INTERNAL_REASON);
  };
  wss.once('error', onServerError);
  const connections = new Set<Connection<V>>();
  const grace = new CloseGrace(opts.closeGraceMs);
  const channels = new ChannelRegistry();
  const onConnection = (socket: WebSocket, request: IncomingMessage) => {
    const connection = new Connection<V>(socket, request, opts, grace, channels);
    connections.add(connection);
    socket.once('close', () => connections.delete(connection));
    connection.start();
  };
  wss.on('connection', onConnection);
  const keepAlive = opts.keepAliveMs ?? 12_000;
  const heartbeat = keepAlive > 0 && Number.isFinite(keepAlive) ? setInterval(() => connections.forEach((c) => c.heartbeat()), keepAlive) : undefined;
  heartbeat?.unref();
  return {
    dispose: async () => {
      clearInterval(heartbeat);
      grace.stop();
      for (const client of wss.clients) client.close(1001, 'Going away');
      wss.off('connection', onConnection);
      wss.off('error', onServerError);
      await new Promise<void>((resolve, reject) => wss.close((error) => (error ? reject(error) : resolve())));
    },
  };
}

/** An operation on a connection: being set up, or running (push or iterated). */
interface Operation {
  /** Ends it from outside (client `complete`, socket close): releases without telling the client. */
  cancel(): void;
}

/** Something waiting for its socket to drain (a push delivery, a channel member). */
interface DrainWaiter {
  resume(): void;
}

/** What a push delivery needs of its connection. */
interface Outlet {
  readonly opts: { maskError(error: unknown): Error };
  readonly full: boolean;
  sendFrame(prefix: Buffer, payload: Buffer): boolean;
  sendMessage(message: object): void;
  waitForDrain(delivery: DrainWaiter): void;
}

/** One WebSocket speaking graphql-transport-ws. */
class Connection<V> implements WsConnection<V>, Outlet, MemberOutlet {
  value: V | undefined;
  private initReceived = false;
  private acknowledged = false;
  private closed = false;
  private readonly operations = new Map<string, Operation>();
  private readonly raw: Duplex;
  private readonly maxBuffered: number;
  /** Push deliveries waiting for the socket to drain (made when the first waits); one 'drain' listener for all of them. */
  private paused: Set<DrainWaiter> | null = null;
  private drainArmed = false;
  /** Iterated operations waiting for the socket to drain (made when the first waits). */
  private drainWaiters: (() => void)[] | null = null;
  private initTimer: NodeJS.Timeout | undefined;
  private alive = true;
  /** Frames are written straight to the TCP socket (no extension negotiated, so a frame is a header and the bytes). */
  private rawFrames = false;

  /** `request` is the upgrade request: only its TCP socket is kept. */
  constructor(
    readonly socket: WebSocket,
    request: IncomingMessage,
    readonly opts: GraphqlWsServerOptions<V>,
    private readonly grace: CloseGrace,
    /** The server's shared channels. */
    readonly channels: ChannelRegistry,
  ) {
    this.raw = request.socket;
    this.maxBuffered = Math.max(opts.maxBufferedBytes ?? 64 * 1024, this.raw.writableHighWaterMark ?? 0);
  }

  /** See {@link WsConnection.close}. */
  close(code: number, reason: string): void {
    if (this.closed) return;
    this.opts.log.info({ event: 'connection_closing', transport: 'ws', code, reason, bufferedBytes: this.socket.bufferedAmount }, 'closing websocket');
    if (this.socket.readyState === this.socket.OPEN || this.socket.readyState === this.socket.CONNECTING) this.socket.close(code, reason);
    this.grace.add(this.raw);
    this.closed = true;
    this.releaseAll();
  }

  get operationCount(): number {
    return this.operations.size;
  }

  start(): void {
    const socket = this.socket;
    socket.once('error', (error) => {
      this.opts.log.warn({ err: error }, 'websocket error');
      this.closeInternal();
    });
    socket.once('close', () => this.onClose());
    this.rawFrames = socket.extensions === '';
    if (socket.protocol !== GRAPHQL_TRANSPORT_WS_PROTOCOL) {
      socket.close(WsCloseCode.SubprotocolNotAcceptable, 'Subprotocol not acceptable');
      return;
    }
    const initWait = this.opts.connectionInitWaitTimeoutMs ?? 3000;
    if (initWait > 0 && Number.isFinite(initWait)) {
      this.initTimer = setTimeout(() => {
        if (!this.initReceived) socket.close(WsCloseCode.ConnectionInitialisationTimeout, 'Connection initialisation timeout');
      }, initWait);
    }
    socket.on('pong', this.onPong);
    socket.on('message', (data) => {
      this.onMessage(String(data)).catch((error: unknown) => {
        this.opts.log.error({ err: error }, 'unexpected error handling a graphql-ws message (closed with 4500)');
        this.closeInternal();
      });
    });
  }

  private closeInternal(): void {
    if (this.socket.readyState === this.socket.OPEN || this.socket.readyState === this.socket.CONNECTING) {
      this.socket.close(WsCloseCode.InternalServerError, INTERNAL_REASON);
    }
  }

  private get open(): boolean {
    return this.socket.readyState === this.socket.OPEN;
  }

  /** Sends a control message (not the hot path). */
  sendMessage(message: object): void {
    if (this.open) this.socket.send(JSON.stringify(message));
  }

  /**
   * Sends one `next` message, `prefix` + `payload` + `}` (the payload is
   * shared by other subscribers and never modified); true while the socket
   * buffers less than the bound. Frames sent in one tick go out in one
   * `writev`: the socket is corked at the first and uncorked on the next tick
   * (once per connection and tick, not per frame). Without extensions the
   * frame is written here (RFC 6455 §5.2: FIN + text opcode, unmasked, the
   * length), with payloads over {@link SPLICE_ABOVE} bytes referenced, not
   * copied; with permessage-deflate it goes through `ws`'s sender.
   */
  sendFrame(prefix: Buffer, payload: Buffer): boolean {
    if (!this.open) return false;
    if (!this.corked) {
      this.corked = true;
      this.raw.cork();
      process.nextTick(this.uncork);
    }
    const length = prefix.length + payload.length + 1;
    if (!this.rawFrames) {
      this.socket.send(Buffer.concat([prefix, payload, SUFFIX], length), TEXT);
    } else if (payload.length > SPLICE_ABOVE) {
      const head = frameHead(length, prefix.length);
      prefix.copy(head, head.length - prefix.length);
      this.raw.write(head);
      this.raw.write(payload);
      this.raw.write(SUFFIX);
    } else {
      const frame = frameHead(length, length);
      let at = frame.length - length;
      at += prefix.copy(frame, at);
      at += payload.copy(frame, at);
      frame[at] = 0x7d; // '}'
      this.raw.write(frame);
    }
    return this.socket.bufferedAmount < this.maxBuffered;
  }

  private corked = false;
  private readonly uncork = (): void => {
    this.corked = false;
    this.raw.uncork();
  };

  /** Is the socket over its buffer bound? */
  get full(): boolean {
    return this.socket.bufferedAmount >= this.maxBuffered;
  }

  /** Resumes `delivery` when the socket drains. */
  waitForDrain(delivery: DrainWaiter): void {
    (this.paused ??= new Set()).add(delivery);
    this.armDrain();
  }

  /** A channel member of this connection lagged past its bound (see GraphqlWsServerOptions.onSlowConsumer). */
  dropSlowConsumer(): void {
    this.opts.onSlowConsumer?.(this);
  }

  /** Resolves when the socket drains (or closes). */
  drained(): Promise<void> {
    return new Promise((resolve) => {
      if (this.closed) return resolve();
      (this.drainWaiters ??= []).push(resolve);
      this.armDrain();
    });
  }

  private armDrain(): void {
    if (this.drainArmed || this.closed) return;
    this.drainArmed = true;
    this.raw.once('drain', this.onDrain);
  }

  private readonly onDrain = (): void => {
    this.drainArmed = false;
    const waiters = this.drainWaiters;
    this.drainWaiters = null;
    if (waiters) for (const resolve of waiters) resolve();
    const paused = this.paused;
    this.paused = null;
    if (!paused) return;
    for (const delivery of paused) {
      if (!this.open) return;
      delivery.resume();
    }
  };

  /** Forgets `operation` under `id` (only if it is still the one there). */
  release(id: string, operation: Operation, delivery?: DrainWaiter): void {
    if (this.operations.get(id) === operation) this.operations.delete(id);
    if (delivery) this.paused?.delete(delivery);
  }

  /** Is `operation` still registered under `id` (not completed by the client, socket open)? */
  isCurrent(id: string, operation: Operation): boolean {
    return this.operations.get(id) === operation;
  }

  private readonly onPong = (): void => {
    this.alive = true;
  };

  /** Called by the server's one keep-alive interval: terminates a socket that did not answer the last ping, else pings it. */
  heartbeat(): void {
    if (this.socket.readyState !== this.socket.OPEN) return;
    if (!this.alive) return this.socket.terminate();
    this.alive = false;
    this.socket.ping();
  }

  private onClose(): void {
    this.closed = true;
    clearTimeout(this.initTimer);
    this.releaseAll();
  }

  /** Stops waiting for 'drain' and ends every operation (the socket closed, or the server is closing it). */
  private releaseAll(): void {
    if (this.drainArmed) this.raw.off('drain', this.onDrain);
    this.drainArmed = false;
    this.paused = null;
    const waiters = this.drainWaiters;
    this.drainWaiters = null;
    if (waiters) for (const resolve of waiters) resolve();
    const operations = [...this.operations.values()];
    this.operations.clear();
    for (const operation of operations) operation.cancel();
  }

  private async onMessage(data: string): Promise<void> {
    let message;
    try {
      message = parseMessage(data);
    } catch {
      this.socket.close(WsCloseCode.BadRequest, 'Invalid message received');
      return;
    }
    switch (message.type) {
      case MessageType.ConnectionInit: {
        if (this.initReceived) {
          this.socket.close(WsCloseCode.TooManyInitialisationRequests, 'Too many initialisation requests');
          return;
        }
        this.initReceived = true;
        clearTimeout(this.initTimer);
        const decision = await this.opts.onConnect(this, isObject(message.payload) ? message.payload : undefined);
        if ('close' in decision) {
          if (this.socket.readyState === this.socket.OPEN) this.socket.close(decision.close.code, decision.close.reason);
          return;
        }
        if (!this.open) return;
        this.value = decision.accept;
        this.acknowledged = true;
        this.sendMessage({ type: MessageType.ConnectionAck });
        return;
      }
      case MessageType.Ping:
        this.sendMessage(message.payload ? { type: MessageType.Pong, payload: message.payload } : { type: MessageType.Pong });
        return;
      case MessageType.Pong:
        return;
      case MessageType.Subscribe: {
        if (!this.acknowledged) {
          this.socket.close(WsCloseCode.Unauthorized, 'Unauthorized');
          return;
        }
        const { id, payload } = message;
        if (this.operations.has(id)) {
          this.socket.close(WsCloseCode.SubscriberAlreadyExists, `Subscriber for ${id} already exists`);
          return;
        }
        const operation = new OperationRun<V>(this, id);
        this.operations.set(id, operation);
        await operation.run(payload);
        return;
      }
      case MessageType.Complete: {
        const operation = this.operations.get(message.id);
        if (!operation) return;
        this.operations.delete(message.id);
        operation.cancel();
        return;
      }
      default:
        // Server-to-client types (connection_ack, next, error) from a client: not part of its side of the protocol.
        throw new Error(`Unexpected message of type ${message.type} received`);
    }
  }
}

/** One `subscribe` message's operation, from setup to release. */
class OperationRun<V> implements Operation, MemberOwner {
  private cancelled = false;
  /** Set while it is a shared channel's member. */
  private member: Member | null = null;
  /** Set while it iterates (the fallback): what stops it. */
  private stop: (() => void) | null = null;
  /** Set while it pushes: its delivery (a field, not a closure: one object fewer per subscription). */
  private delivery: PushDelivery | null = null;

  constructor(
    private readonly connection: Connection<V>,
    readonly id: string,
  ) {}

  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    const stop = this.stop;
    this.stop = null;
    stop?.();
    this.delivery?.finish(false);
    this.member?.cancel();
  }

  /** Its push delivery (PushDelivery.finish) or channel membership (Member.finish) ended: forget both. */
  released(ended: PushDelivery | Member): void {
    if (ended === this.delivery) this.delivery = null;
    if (ended === this.member) this.member = null;
    this.connection.release(this.id, this, ended);
  }

  private get current(): boolean {
    return !this.cancelled && this.connection.isCurrent(this.id, this);
  }

  private sendErrors(errors: readonly Error[]): void {
    for (const e of errors) if (!(e as GraphQLError).extensions?.code) this.connection.opts.log.debug({ err: e.message }, 'operation error');
    this.connection.sendMessage({ id: this.id, type: MessageType.Error, payload: errors.map(errorJson) });
  }

  private sendComplete(): void {
    this.connection.sendMessage({ id: this.id, type: MessageType.Complete });
  }

  async run(payload: SubscribePayload): Promise<void> {
    const connection = this.connection;
    try {
      const key = connection.opts.channelKey?.(connection, payload);
      if (typeof key === 'string') return await this.joinChannel(key, payload);
      // With a cursor of its own: joins an open channel after its replay, else runs on its own (below).
      if (key && 'after' in key && (await this.joinWithCursor(key, payload))) return;
      if (Array.isArray(key)) {
        this.sendErrors(key as readonly GraphQLError[]);
        return;
      }
      const prepared = await connection.opts.prepare(connection, this.id, payload);
      if (!this.current) return;
      if (Array.isArray(prepared)) {
        this.sendErrors(prepared as readonly GraphQLError[]);
        return;
      }
      const { args, execute, subscribe } = prepared as PreparedOperation;
      const ast = getOperationAST(args.document, args.operationName);
      if (!ast) {
        this.sendErrors([new GraphQLError('Unable to identify operation')]);
        return;
      }
      const result = await (ast.operation === 'subscription' ? subscribe(args) : execute(args));
      if (isAsyncIterable(result)) {
        const shared = takeSharedSubscription(args.contextValue as object);
        if (!this.current) {
          if (shared) void shared.source[Symbol.asyncIterator]().return?.();
          void closeIterable(result);
          return;
        }
        if (shared && isPushSource(shared.source) && this.push(shared, shared.source, result)) return;
        await this.iterate(result);
        return;
      }
      if (!this.current) return;
      this.connection.sendMessage({ id: this.id, type: MessageType.Next, payload: result });
      this.sendComplete();
    } finally {
      if (!this.stop && !this.delivery && !this.member) connection.release(this.id, this);
    }
  }

  /**
   * Joins the channel of `key` (src/transport/shared-channel.ts), opening it
   * when there is none: its operation is prepared and subscribed like any
   * other, with this connection's authentication, and outlives this member.
   */
  private async joinChannel(key: string, payload: SubscribePayload): Promise<void> {
    const connection = this.connection;
    const member = new Member(connection, this, this.id, framePrefix(this.id));
    this.member = member;
    if (connection.channels.get(key)?.attach(member)) return;
    const channel = connection.channels.create(key);
    channel.attach(member);
    await openChannel(connection, channel, this.id, payload);
  }

  /**
   * Joins the channel of `join.key` with its own cursor (Channel.attachAfter),
   * opening it when there is none (its operation: `payload` with the cursor
   * variable null, so the channel's stream starts from a SNAPSHOT and this
   * member replays from its cursor); false when the key's channel does not
   * take it (then it runs on its own stream).
   */
  private async joinWithCursor(join: CursorJoin, payload: SubscribePayload): Promise<boolean> {
    const connection = this.connection;
    const member = new Member(connection, this, this.id, framePrefix(this.id));
    this.member = member;
    const open = connection.channels.get(join.key);
    if (open) {
      if (open.attachAfter(member, join.after)) return true;
      this.member = null;
      return false;
    }
    const channel = connection.channels.create(join.key);
    channel.attachAfter(member, join.after);
    await openChannel(connection, channel, this.id, { ...payload, variables: { ...payload.variables, [join.variable]: null } });
    return true;
  }

  /** Push mode; false when the stream declined (then iterate). */
  private push(shared: SharedSubscription, source: PushSource<unknown>, wrapper: AsyncIterable<unknown>): boolean {
    const delivery = new PushDelivery(this.connection, this, shared.executor, source, wrapper);
    this.delivery = delivery;
    if (source.pipe(delivery)) return true;
    this.delivery = null;
    return false;
  }

  /** Fallback for streams that cannot push: graphql-ws's `for await`, with byte-bounded backpressure. */
  private async iterate(iterable: AsyncIterable<unknown>): Promise<void> {
    const connection = this.connection;
    const iterator = iterable[Symbol.asyncIterator]();
    let stopped = false;
    this.stop = () => {
      stopped = true;
      void Promise.resolve(iterator.return?.()).catch(() => {});
    };
    const prefix = framePrefix(this.id);
    try {
      for (;;) {
        const step = await iterator.next();
        if (step.done || stopped) break;
        const bytes = serializeResult(step.value as ExecutionResult, connection.opts.maskError);
        if (!connection.sendFrame(prefix, bytes)) await connection.drained();
      }
      if (!stopped) this.sendComplete();
    } catch (error) {
      if (!stopped) this.sendErrors([connection.opts.maskError(error)]);
    } finally {
      this.stop = null;
      connection.release(this.id, this);
    }
  }
}

/**
 * Starts `channel`'s subscription: prepared and subscribed through the
 * envelop with `connection`'s authentication, as the `subscribe` with `id`
 * and `payload` would be, but owned by the channel. Its waiting members are
 * told if it cannot start (what their own subscription would have sent).
 */
async function openChannel<V>(connection: Connection<V>, channel: Channel, id: string, payload: SubscribePayload): Promise<void> {
  try {
    const prepared = await connection.opts.prepare(connection, id, payload, true);
    if (Array.isArray(prepared)) return channel.fail({ errors: prepared as readonly GraphQLError[] });
    const { args, subscribe } = prepared as PreparedOperation;
    const result = await subscribe(args);
    if (!isAsyncIterable(result)) return channel.fail({ result: result as ExecutionResult });
    const shared = takeSharedSubscription(args.contextValue as object);
    const policy = shared && isPushSource(shared.source) ? channelPolicyOf(shared.source) : null;
    if (!shared || !policy) {
      if (shared) void shared.source[Symbol.asyncIterator]().return?.();
      void closeIterable(result);
      throw new Error('a shared channel needs a LiveStream with joinStart');
    }
    const observers = (args.contextValue as { transport?: StreamTransport }).transport?.members ?? [];
    const wrapper = connection.opts.channelEndHooks === false ? null : result;
    channel.start(shared.source as unknown as PushSource<unknown>, policy, shared.executor, wrapper, observers, connection.opts.maskError);
  } catch (error) {
    connection.opts.log.error({ err: error }, 'unexpected error opening a shared channel');
    channel.fail({ error });
  }
}

/**
 * A buffer of `tail` bytes preceded by the header of an unmasked, final text
 * frame of `length` payload bytes (RFC 6455 §5.2); the caller fills the tail.
 * Exported for tests.
 */
export function frameHead(length: number, tail: number): Buffer {
  const size = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const head = Buffer.allocUnsafe(size + tail);
  head[0] = 0x81; // FIN, opcode 1 (text)
  if (size === 2) head[1] = length;
  else if (size === 4) {
    head[1] = 126;
    head.writeUInt16BE(length, 2);
  } else {
    head[1] = 127;
    head.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    head.writeUInt32BE(length >>> 0, 6);
  }
  return head;
}

/** `{"id":<id>,"type":"next","payload":` for a subscription id. */
const framePrefix = (id: string) => Buffer.from(`{"id":${JSON.stringify(id)},"type":"${MessageType.Next}","payload":`);

/** Ends an iterable's iterator, ignoring failures (plugin end hooks run). */
function closeIterable(iterable: AsyncIterable<unknown>): Promise<unknown> {
  return Promise.resolve(iterable[Symbol.asyncIterator]().return?.()).catch(() => undefined);
}

/** One subscription in push mode: the sink its source stream delivers to. */
class PushDelivery implements StreamSink<unknown> {
  private readonly prefix: Buffer;
  private ended = false;
  /** An async result being awaited (async resolvers only): the stream is paused meanwhile. */
  private pending = false;
  private completeAfterPending = false;

  constructor(
    private readonly connection: Outlet,
    private readonly operation: OperationRun<unknown>,
    private readonly executor: SharedExecutor,
    private readonly source: PushSource<unknown>,
    private readonly wrapper: AsyncIterable<unknown>,
  ) {
    this.prefix = framePrefix(operation.id);
  }

  next(event: unknown): boolean {
    if (this.ended) return false;
    let result: ExecutionResult | Promise<ExecutionResult>;
    try {
      result = this.executor.execute(event);
    } catch (error) {
      this.fail(error);
      return false;
    }
    if (result instanceof Promise) {
      this.pending = true;
      result.then(
        (settled) => {
          this.pending = false;
          if (this.ended) return;
          const more = this.send(settled);
          if (this.completeAfterPending) return this.finish(true);
          if (more) this.source.resume();
        },
        (error: unknown) => {
          this.pending = false;
          this.fail(error);
        },
      );
      return false;
    }
    return this.send(result);
  }

  /** Sends one result; false when the socket is full (then waits for 'drain') or closed. */
  private send(result: ExecutionResult): boolean {
    const payload = serializeResult(result, this.connection.opts.maskError);
    if (this.connection.sendFrame(this.prefix, payload)) return true;
    if (this.connection.full) this.connection.waitForDrain(this);
    return false;
  }

  /** The socket drained: deliver what is queued. */
  resume(): void {
    if (this.ended || this.pending) return;
    if (this.connection.full) return this.connection.waitForDrain(this);
    this.source.resume();
  }

  complete(): void {
    if (this.pending) this.completeAfterPending = true;
    else this.finish(true);
  }

  error(error: unknown): void {
    this.fail(error);
  }

  private fail(error: unknown): void {
    if (this.ended) return;
    this.connection.sendMessage({ id: this.operation.id, type: MessageType.Error, payload: [errorJson(this.connection.opts.maskError(error))] });
    this.finish(false);
  }

  /** Releases once: the source at once, then the envelop wrapper (plugin end hooks); `complete` to the client when `notify`. */
  finish(notify: boolean): void {
    if (this.ended) return;
    this.ended = true;
    this.operation.released(this);
    void this.source.return();
    void closeIterable(this.wrapper);
    if (notify) this.connection.sendMessage({ id: this.operation.id, type: MessageType.Complete });
  }
}
