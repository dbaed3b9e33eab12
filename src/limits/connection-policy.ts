/**
 * Who may hold connections, how many, and for how long.
 *
 * - Origins: browsers send `Origin`; a WebSocket upgrade from an origin not
 *   allowed is refused with HTTP 403 before any GraphQL is spoken, and CORS
 *   headers are sent only to allowed origins. Allowed: the configured origins
 *   (`*`: any), and always the page's own origin (Origin host = Host header).
 *   No `Origin` header means a non-browser client: allowed (it proves nothing).
 * - Caps: at most `maxConnectionsPerUser` WebSockets plus SSE streams per token
 *   `sub` on this instance (a WebSocket over it closes with 1013 "try again
 *   later"; an SSE subscription gets RATE_LIMITED), and at most
 *   `maxSubscriptionsPerConnection` subscriptions on one WebSocket (the next
 *   subscribe gets RATE_LIMITED; the connection stays up).
 * - Token expiry, live: a WebSocket is closed with 4403 when its token
 *   expires (clients reconnect with a fresh token) — one timer per server for
 *   all of them ({@link ExpiryTimers});
 *   an SSE subscription ends at expiry with an UNAUTHENTICATED error (reason
 *   `expired`) — one timer per stream, which is one connection.
 */
import type { IncomingMessage } from 'node:http';
import { createRequire } from 'node:module';
import { GraphQLError } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import type { Viewer } from '../auth/tokens.js';
import { CloseCode } from '../close-codes.js';
import { watchIterator } from '../delivery/watched-iterator.js';
import { isHttpContext, type ViewerContext } from '../request-context.js';
import type { LimitCounters } from './counters.js';
import { rateLimitedError } from './rate-limit.js';

/** Settings of {@link ConnectionPolicy}. */
export interface ConnectionPolicyOptions {
  maxConnectionsPerUser: number;
  maxSubscriptionsPerConnection: number;
  /** Allowed browser origins, e.g. `https://app.example.com`; `['*']`: any; `[]`: same-origin only. */
  allowedOrigins: readonly string[];
  metrics: LimitCounters;
  log: Logger;
  now?: () => number;
}

/**
 * graphql-ws accepts errors from `onSubscribe` only if they are `instanceof`
 * the GraphQLError of the `graphql` Node resolves (its CommonJS build). Tools
 * that prefer the ESM build (vitest, bundlers) would hand this module another
 * class, so errors for graphql-ws are made with Node's.
 */
const NodeGraphQLError = (createRequire(import.meta.url)('graphql') as typeof import('graphql')).GraphQLError;

/** setTimeout's largest delay, ms; longer expiries re-arm. */
const MAX_DELAY_MS = 2_147_483_647;

/** CORS settings Yoga applies to an allowed cross-origin request. */
export interface CorsSettings {
  origin: string[];
  credentials: boolean;
  allowedHeaders: string[];
  methods: string[];
  maxAge: number;
}

export { isHttpContext } from '../request-context.js';

/**
 * Deadlines of many items on one timer: items grouped by deadline (a JWT's
 * `exp` has one-second resolution, so the connections of one token, and of
 * tokens that expire in the same second, share a group), a binary min-heap of
 * the deadlines, and one timer for the earliest. It replaces a `Timeout`, its
 * closure and a context per connection (about 0.5 KiB each; see
 * docs/benchmarks.md, connections and memory). `onExpire` runs at or after
 * the deadline, once per item still there.
 */
export class ExpiryTimers<T extends object> {
  private readonly groups = new Map<number, Set<T>>();
  /** Deadlines, a min-heap; may hold deadlines whose group is gone (skipped when they come up). */
  private readonly heap: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  private armedFor = Infinity;

  constructor(
    private readonly now: () => number,
    private readonly onExpire: (item: T) => void,
  ) {}

  /** Schedules `item` for `deadline` (epoch ms). */
  add(deadline: number, item: T): void {
    let group = this.groups.get(deadline);
    if (!group) {
      this.groups.set(deadline, (group = new Set()));
      this.push(deadline);
      if (deadline < this.armedFor) this.arm();
    }
    group.add(item);
  }

  /** Unschedules `item` (e.g. its connection closed first). */
  delete(deadline: number, item: T): void {
    const group = this.groups.get(deadline);
    if (!group) return;
    group.delete(item);
    if (group.size === 0) this.groups.delete(deadline);
  }

  /** Items scheduled (diagnostics). */
  get size(): number {
    let n = 0;
    for (const group of this.groups.values()) n += group.size;
    return n;
  }

  private arm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.heap.length > 0 && !this.groups.has(this.heap[0]!)) this.pop();
    this.armedFor = this.heap[0] ?? Infinity;
    if (this.armedFor === Infinity) return;
    this.timer = setTimeout(() => this.fire(), Math.min(Math.max(0, this.armedFor - this.now()), MAX_DELAY_MS));
    this.timer.unref();
  }

  private fire(): void {
    const now = this.now();
    while (this.heap.length > 0 && this.heap[0]! <= now) {
      const deadline = this.pop();
      const group = this.groups.get(deadline);
      if (!group) continue;
      this.groups.delete(deadline);
      for (const item of group) this.onExpire(item);
    }
    this.arm();
  }

  private push(deadline: number): void {
    const heap = this.heap;
    let i = heap.push(deadline) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]! <= deadline) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = deadline;
  }

  private pop(): number {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        if (left >= heap.length) break;
        const child = left + 1 < heap.length && heap[left + 1]! < heap[left]! ? left + 1 : left;
        if (heap[child]! >= last) break;
        heap[i] = heap[child]!;
        i = child;
      }
      heap[i] = last;
    }
    return top;
  }
}

/** What closes an admitted WebSocket when its token expires: code and reason as in a close frame. */
export interface SocketCloser {
  close(code: number, reason: string): void;
}

/** One per server: origin checks, per-user and per-connection caps, live token expiry. */
export class ConnectionPolicy {
  private readonly perUser = new Map<string, number>();
  /** Admitted WebSockets: whose slot they hold and when their token expires (epoch ms; null: never). */
  private readonly admitted = new WeakMap<WebSocket, { userId: string; expiresAt: number | null; closer: SocketCloser | undefined }>();
  private readonly expiries: ExpiryTimers<WebSocket>;
  private readonly anyOrigin: boolean;
  private readonly origins: Set<string>;
  private readonly now: () => number;

  constructor(private readonly opts: ConnectionPolicyOptions) {
    this.anyOrigin = opts.allowedOrigins.includes('*');
    this.origins = new Set(opts.allowedOrigins.map((o) => o.toLowerCase().replace(/\/$/, '')));
    this.now = opts.now ?? Date.now;
    this.expiries = new ExpiryTimers(this.now, (socket) => this.expire(socket));
  }

  /** May a request with this `Origin` (null/undefined: none) reach a server addressed as `host`? */
  originAllowed(origin: string | null | undefined, host: string | null | undefined): boolean {
    if (!origin) return true;
    if (this.anyOrigin) return true;
    const normalized = origin.toLowerCase();
    if (this.origins.has(normalized)) return true;
    try {
      return host != null && new URL(normalized).host === host.toLowerCase();
    } catch {
      return false;
    }
  }

  /** Yoga's `cors` option: CORS headers for allowed cross-origin requests, none otherwise (the browser then blocks). */
  readonly cors = (request: Request): CorsSettings | false => {
    const origin = request.headers.get('origin');
    if (!origin || !this.originAllowed(origin, request.headers.get('host'))) return false;
    return { origin: [origin], credentials: false, allowedHeaders: ['authorization', 'content-type', 'accept'], methods: ['GET', 'POST', 'OPTIONS'], maxAge: 600 };
  };

  /** `ws` WebSocketServer `verifyClient`: refuses an upgrade from an origin not allowed with HTTP 403. */
  readonly verifyClient = (
    info: { origin?: string; req: IncomingMessage },
    callback: (allowed: boolean, status?: number, message?: string) => void,
  ): void => {
    if (this.originAllowed(info.origin, info.req.headers.host)) return callback(true);
    this.opts.metrics.connectionsRefused.inc({ transport: 'ws', reason: 'origin' });
    this.opts.log.info({ event: 'connection_refused', transport: 'ws', reason: 'origin', origin: info.origin }, 'websocket refused: origin not allowed');
    callback(false, 403, 'Forbidden: origin not allowed');
  };

  /** Takes a connection slot for `userId`; null when the user is at the cap. The release function is idempotent. */
  acquire(userId: string): (() => void) | null {
    if (!this.take(userId)) return null;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.give(userId);
    };
  }

  /** Takes a slot for `userId` if it is under the cap. */
  private take(userId: string): boolean {
    const held = this.perUser.get(userId) ?? 0;
    if (held >= this.opts.maxConnectionsPerUser) return false;
    this.perUser.set(userId, held + 1);
    return true;
  }

  /** Gives back a slot {@link take} took. */
  private give(userId: string): void {
    const n = (this.perUser.get(userId) ?? 1) - 1;
    if (n <= 0) this.perUser.delete(userId);
    else this.perUser.set(userId, n);
  }

  /** The `sub` a WebSocket authenticated as (for logs), if it did. */
  userOf(socket: WebSocket): string | undefined {
    return this.admitted.get(socket)?.userId;
  }

  /**
   * Admits an authenticated WebSocket: takes a slot (released on close) and
   * schedules its close with 4403 when the token expires (on the policy's
   * shared {@link ExpiryTimers}, not a timer per connection).
   * @param closer closes the connection at expiry (the transport's close,
   *   which terminates a socket that has not completed its close within the
   *   close grace, src/transport/close-grace.ts); default: `socket.close`,
   *   which leaves that to ws's own 30 s close timer.
   * @returns null when admitted, or the close code and reason to refuse with (1013 at the per-user cap).
   */
  admitWebSocket(socket: WebSocket, viewer: Viewer, closer?: SocketCloser): { code: number; reason: string } | null {
    if (!this.take(viewer.userId)) {
      this.opts.metrics.rateLimited.inc({ limit: 'connections_per_user' });
      this.opts.metrics.connectionsRefused.inc({ transport: 'ws', reason: 'too_many_connections' });
      return { code: CloseCode.TryAgainLater, reason: `Too many connections for this user (at most ${this.opts.maxConnectionsPerUser})` };
    }
    this.admitted.set(socket, { userId: viewer.userId, expiresAt: viewer.expiresAt, closer });
    // One shared listener for every socket (`this` is the socket): no closure per connection.
    socket.on('close', this.onSocketClose);
    if (viewer.expiresAt !== null) {
      if (viewer.expiresAt <= this.now()) this.expire(socket);
      else this.expiries.add(viewer.expiresAt, socket);
    }
    return null;
  }

  /** The `close` listener of admitted sockets (`this`: the socket): frees the slot and drops the expiry. */
  private readonly onSocketClose = ((policy: ConnectionPolicy) =>
    function (this: WebSocket) {
      const admitted = policy.admitted.get(this);
      if (!admitted) return;
      policy.admitted.delete(this);
      if (admitted.expiresAt !== null) policy.expiries.delete(admitted.expiresAt, this);
      policy.give(admitted.userId);
    })(this);

  private expire(socket: WebSocket): void {
    this.opts.metrics.expiryCloses.inc({ transport: 'ws' });
    const closer = this.admitted.get(socket)?.closer;
    if (closer) closer.close(CloseCode.Forbidden, 'Forbidden: token expired');
    else socket.close(CloseCode.Forbidden, 'Forbidden: token expired');
  }

  /**
   * Checks the per-connection subscription cap before a subscribe.
   * @param active subscriptions on the connection, this one included.
   * @returns RATE_LIMITED when over the cap, else null.
   */
  checkSubscribe(active: number): GraphQLError | null {
    if (active <= this.opts.maxSubscriptionsPerConnection) return null;
    this.opts.metrics.rateLimited.inc({ limit: 'subscriptions_per_connection' });
    const error = rateLimitedError(`too many subscriptions on this connection (at most ${this.opts.maxSubscriptionsPerConnection}); complete one first`, {
      limit: 'subscriptions_per_connection',
    });
    return new NodeGraphQLError(error.message, { extensions: error.extensions });
  }

  /**
   * The envelop plugin for SSE subscriptions (HTTP transport): the per-user
   * connection cap, and the end of the stream at token expiry with an
   * UNAUTHENTICATED error (`extensions.reason` `expired`).
   */
  useSsePolicy(): Plugin<ViewerContext> {
    return {
      onSubscribe: ({ args, setResultAndStopExecution }) => {
        const context = args.contextValue;
        if (!isHttpContext(context) || !context.viewer) return;
        const viewer = context.viewer;
        const release = this.acquire(viewer.userId);
        if (!release) {
          this.opts.metrics.rateLimited.inc({ limit: 'connections_per_user' });
          this.opts.metrics.connectionsRefused.inc({ transport: 'sse', reason: 'too_many_connections' });
          setResultAndStopExecution({
            errors: [rateLimitedError(`too many connections for this user (at most ${this.opts.maxConnectionsPerUser})`, { limit: 'connections_per_user' })],
          });
          return;
        }
        return {
          onSubscribeResult: ({ result, setResult }) => {
            if (!isAsyncIterable(result)) return release();
            setResult(
              watchIterator(result, {
                deadlineMs: viewer.expiresAt,
                now: this.now,
                onDeadline: () => {
                  this.opts.metrics.expiryCloses.inc({ transport: 'sse' });
                  return {
                    errors: [
                      new GraphQLError('token expired: subscribe again with a fresh token (resume with `after`)', {
                        extensions: { code: 'UNAUTHENTICATED', reason: 'expired' },
                      }),
                    ],
                  };
                },
                onEnd: release,
              }),
            );
          },
          onSubscribeError: () => release(),
        };
      },
    };
  }
}
