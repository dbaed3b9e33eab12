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
 *   expires (clients reconnect with a fresh token) — one timer per connection;
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

/** One per server: origin checks, per-user and per-connection caps, live token expiry. */
export class ConnectionPolicy {
  private readonly perUser = new Map<string, number>();
  private readonly users = new WeakMap<WebSocket, string>();
  private readonly anyOrigin: boolean;
  private readonly origins: Set<string>;
  private readonly now: () => number;

  constructor(private readonly opts: ConnectionPolicyOptions) {
    this.anyOrigin = opts.allowedOrigins.includes('*');
    this.origins = new Set(opts.allowedOrigins.map((o) => o.toLowerCase().replace(/\/$/, '')));
    this.now = opts.now ?? Date.now;
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
    const held = this.perUser.get(userId) ?? 0;
    if (held >= this.opts.maxConnectionsPerUser) return null;
    this.perUser.set(userId, held + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const n = (this.perUser.get(userId) ?? 1) - 1;
      if (n <= 0) this.perUser.delete(userId);
      else this.perUser.set(userId, n);
    };
  }

  /** The `sub` a WebSocket authenticated as (for logs), if it did. */
  userOf(socket: WebSocket): string | undefined {
    return this.users.get(socket);
  }

  /**
   * Admits an authenticated WebSocket: takes a slot (released on close) and
   * arms the expiry timer (closes with 4403 when the token expires).
   * @returns null when admitted, or the close code and reason to refuse with (1013 at the per-user cap).
   */
  admitWebSocket(socket: WebSocket, viewer: Viewer): { code: number; reason: string } | null {
    const release = this.acquire(viewer.userId);
    if (!release) {
      this.opts.metrics.rateLimited.inc({ limit: 'connections_per_user' });
      this.opts.metrics.connectionsRefused.inc({ transport: 'ws', reason: 'too_many_connections' });
      return { code: CloseCode.TryAgainLater, reason: `Too many connections for this user (at most ${this.opts.maxConnectionsPerUser})` };
    }
    this.users.set(socket, viewer.userId);
    let timer: NodeJS.Timeout | undefined;
    const arm = (expiresAt: number) => {
      const delay = expiresAt - this.now();
      if (delay <= 0) {
        this.opts.metrics.expiryCloses.inc({ transport: 'ws' });
        socket.close(CloseCode.Forbidden, 'Forbidden: token expired');
        return;
      }
      timer = setTimeout(() => arm(expiresAt), Math.min(delay, MAX_DELAY_MS));
      timer.unref();
    };
    if (viewer.expiresAt !== null) arm(viewer.expiresAt);
    socket.once('close', () => {
      clearTimeout(timer);
      release();
    });
    return null;
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
