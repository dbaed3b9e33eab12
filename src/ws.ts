/**
 * graphql-ws on the HTTP server's `/graphql` path, executing through Yoga's
 * envelop. The token is checked once, in `connection_init`:
 * missing or invalid → close 4401 (fatal for clients); expired → 4403 (retryable
 * with a fresh token). Documents are parsed and validated with the same
 * plugins (limits included) as HTTP; a bad document errors that one
 * operation, never the connection.
 */
import type { Server } from 'node:http';
import { GraphQLError, type ExecutionArgs } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import type { YogaServerInstance } from 'graphql-yoga';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import { AuthError, parseBearer, type TokenVerifier, type Viewer } from './auth/tokens.js';
import { CloseCode } from './close-codes.js';
import type { ConnectionPolicy } from './limits/connection-policy.js';
import type { Context } from './schema/context.js';
import type { TransportContext } from './yoga.js';
import { LIMITS } from './yoga.js';

type Extra = { viewer?: Viewer };

type EnvelopedRoot = { execute: (args: ExecutionArgs) => unknown; subscribe: (args: ExecutionArgs) => unknown };

/**
 * graphql-ws accepts only GraphQLErrors of its own `graphql` import; parse and
 * validation plugins may throw another build's (graphql ships ESM and CJS).
 * Rebuild them, keeping message, locations and extensions.
 */
function asGraphQLError(error: unknown): GraphQLError {
  if (error instanceof GraphQLError) return error;
  const e = error as Partial<GraphQLError> & { message?: string };
  return new GraphQLError(e.message ?? 'Invalid document', { nodes: e.nodes, source: e.source, positions: e.positions, extensions: e.extensions });
}

/** Options of {@link attachGraphqlWs}. */
export interface WsOptions {
  httpServer: Server;
  yoga: YogaServerInstance<TransportContext, Context>;
  verifier: TokenVerifier;
  log: Logger;
  /** Milliseconds a client has to send `connection_init` (default 5000). */
  connectionInitWaitTimeoutMs?: number;
  /** Origin check at upgrade, per-user cap and live expiry after auth, per-connection subscription cap. */
  policy?: ConnectionPolicy;
  /**
   * Negotiate permessage-deflate (RFC 7692) with clients that offer it
   * (default false). With `ws`'s defaults every message is compressed (its
   * 1 KiB threshold applies only without context takeover) and a socket keeps
   * its zlib context from its first message on: about 240 KiB of memory per
   * connection (docs/benchmarks.md, connections and memory).
   */
  perMessageDeflate?: boolean;
}

/** Attaches graphql-ws; returns the WebSocket server and a dispose function. */
export function attachGraphqlWs(opts: WsOptions) {
  const wss = new WebSocketServer({
    server: opts.httpServer,
    path: '/graphql',
    maxPayload: LIMITS.maxBodyBytes,
    perMessageDeflate: opts.perMessageDeflate ?? false,
    ...(opts.policy ? { verifyClient: opts.policy.verifyClient } : {}),
  });
  const log = opts.log.child({ component: 'ws' });
  const server = useServer<Record<string, unknown>, Extra>(
    {
      connectionInitWaitTimeout: opts.connectionInitWaitTimeoutMs ?? 5000,
      onConnect: async (ctx) => {
        const header = ctx.connectionParams?.authorization ?? ctx.connectionParams?.Authorization;
        try {
          ctx.extra.viewer = await opts.verifier.verify(parseBearer(typeof header === 'string' ? header : null));
          const refusal = opts.policy?.admitWebSocket(ctx.extra.socket, ctx.extra.viewer);
          if (refusal) {
            ctx.extra.socket.close(refusal.code, refusal.reason);
            return false;
          }
          return true;
        } catch (error) {
          const reason = error instanceof AuthError ? error.reason : 'invalid';
          if (reason === 'expired') return false; // graphql-ws closes with 4403 Forbidden
          ctx.extra.socket.close(CloseCode.Unauthorized, `Unauthorized: ${reason} token`);
          return false;
        }
      },
      execute: (args) => (args.rootValue as EnvelopedRoot).execute(args) as never,
      subscribe: (args) => (args.rootValue as EnvelopedRoot).subscribe(args) as never,
      onSubscribe: async (ctx, _id, payload) => {
        const capped = opts.policy?.checkSubscribe(Object.keys(ctx.subscriptions).length);
        if (capped) return [capped];
        const socket = ctx.extra.socket;
        const { schema, execute, subscribe, contextFactory, parse, validate } = opts.yoga.getEnveloped({
          params: payload,
          viewer: ctx.extra.viewer,
          transport: {
            dropSlowConsumer: () => socket.close(CloseCode.SlowConsumer, 'Slow consumer: resume from your last cursor'),
          },
        } as never);
        let document;
        try {
          document = parse(payload.query);
        } catch (error) {
          return [asGraphQLError(error)];
        }
        const errors = validate(schema, document);
        if (errors.length > 0) return errors.map(asGraphQLError);
        return {
          schema,
          operationName: payload.operationName,
          document,
          variableValues: payload.variables,
          contextValue: await contextFactory(),
          rootValue: { execute, subscribe },
        };
      },
      onError: (_ctx, _id, _payload, errors) => {
        for (const e of errors) if (!e.extensions?.code) log.debug({ err: e.message }, 'operation error');
      },
    },
    wss,
  );
  return { wss, dispose: () => server.dispose() };
}
