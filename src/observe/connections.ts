/**
 * WebSocket connections as operators see them: the open gauge and one log
 * line (debug: one per socket is noise at info) when a socket opens and when it closes,
 * with the close code, reason and duration. (SSE streams are observed in graphql.ts, where they start.)
 * Nothing secret is logged: no connection params, no token.
 */
import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { WebSocket, WebSocketServer } from 'ws';
import type { Metrics } from './metrics.js';

/** Options of {@link observeWebSockets}. */
export interface ObserveWebSocketsOptions {
  metrics: Metrics;
  log: Logger;
  /** The user a socket authenticated as, if it did (for the close line). */
  userOf?: (socket: WebSocket) => string | undefined;
  now?: () => number;
}

/** The client address of a request (the socket's peer; proxies' headers are not trusted here). */
const peerOf = (request: IncomingMessage) => request.socket.remoteAddress;

/** Starts observing `wss`'s connections; lasts as long as the server. */
export function observeWebSockets(wss: WebSocketServer, opts: ObserveWebSocketsOptions): void {
  const log = opts.log.child({ component: 'ws' });
  const now = opts.now ?? Date.now;
  wss.on('connection', (socket: WebSocket, request: IncomingMessage) => {
    const opened = now();
    opts.metrics.connectionsOpen.inc({ transport: 'ws' });
    opts.metrics.connectionsTotal.inc({ transport: 'ws' });
    log.debug({ event: 'connection_open', transport: 'ws', peer: peerOf(request), origin: request.headers.origin }, 'websocket open');
    socket.once('close', (code: number, reason: Buffer) => {
      opts.metrics.connectionsOpen.dec({ transport: 'ws' });
      log.debug(
        { event: 'connection_close', transport: 'ws', code, reason: reason.toString('utf8').slice(0, 120), durationMs: now() - opened, sub: opts.userOf?.(socket) },
        'websocket closed',
      );
    });
  });
}
