/**
 * graphql-transport-ws on the HTTP server's `/graphql` path, executing
 * through Yoga's envelop, served by runwatch's own adapter
 * (src/transport/graphql-ws-server.ts: graphql-ws's protocol, push delivery
 * with one serialization per shared result). The token is checked once, in
 * `connection_init`: missing or invalid → close 4401 (fatal for clients);
 * expired → 4403 (retryable with a fresh token). Documents are parsed and
 * validated with the same plugins (limits included) as HTTP; a bad document
 * errors that one operation, never the connection.
 */
import type { Server } from 'node:http';
import { getOperationAST, GraphQLError, Kind, type DocumentNode, type ExecutionArgs, type GraphQLSchema } from 'graphql';
import type { SubscribePayload } from 'graphql-ws';
import type { YogaServerInstance } from 'graphql-yoga';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import { AuthError, parseBearer, type TokenVerifier, type Viewer } from '../auth/tokens.js';
import { CloseCode } from '../close-codes.js';
import { decodeCursor, type StreamPosition } from '../domain/cursor.js';
import type { ConnectionPolicy } from '../limits/connection-policy.js';
import type { DocumentCache } from '../limits/document-cache.js';
import type { Context } from '../schema/context.js';
import { createErrorMasker } from '../schema/errors.js';
import { serveGraphqlWs, type CursorJoin } from './graphql-ws-server.js';
import type { TransportContext } from './yoga.js';
import { LIMITS } from './yoga.js';

/**
 * Parse and validation plugins may throw another build's GraphQLError
 * (graphql ships ESM and CJS). Rebuild them, keeping message, locations and extensions.
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
  /** Bytes a socket may buffer before deliveries to it pause until it drains (default 64 KiB). */
  maxBufferedBytes?: number;
  /**
   * Negotiate permessage-deflate (RFC 7692) with clients that offer it
   * (default false). With `ws`'s defaults every message is compressed (its
   * 1 KiB threshold applies only without context takeover) and a socket keeps
   * its zlib context from its first message on: about 240 KiB of memory per
   * connection (docs/benchmarks.md, connections and memory).
   */
  perMessageDeflate?: boolean;
  /** The parse and validation cache Yoga's envelop fills (the one given to createYogaApp); needed for shared channels. */
  documents?: DocumentCache;
  /**
   * Shared channels (src/transport/shared-channel.ts) for `runProgress`
   * subscriptions whose document the cache holds as valid; a subscriber with
   * its own `after` cursor joins an open channel after a replay from
   * history (default false; needs `documents`). See {@link channelKeyOf}.
   */
  sharedChannels?: boolean;
  /** Milliseconds a socket the server is closing may take to complete the close before it is terminated (default 3,000; {@link CloseGrace}). */
  closeGraceMs?: number;
  /** May a channel's envelop response stream carry plugin end hooks (see GraphqlWsServerOptions.channelEndHooks; default true)? */
  channelEndHooks?: boolean;
}

/** Root fields whose subscriptions may share a channel: their stream's policy has `joinStart` (services/jobs.ts). */
const SHAREABLE_FIELDS = new Set(['runProgress']);

/** What of a token decides what a subscription sees (tenant, job restriction, scopes), as a key part; cached per Viewer object (one per connection). */
const viewerKeys = new WeakMap<Viewer, string>();
function viewerKey(viewer: Viewer): string {
  let key = viewerKeys.get(viewer);
  if (key === undefined) {
    key = `${JSON.stringify(viewer.tenant)}\u0000${viewer.jobId ?? ''}\u0000${[...viewer.scopes].sort().join(' ')}`;
    viewerKeys.set(viewer, key);
  }
  return key;
}

/** A small number per parsed document object (the document cache returns one object per query text). */
const documentIds = new WeakMap<DocumentNode, number>();
let nextDocumentId = 1;
function documentId(document: DocumentNode): number {
  let id = documentIds.get(document);
  if (id === undefined) documentIds.set(document, (id = nextDocumentId++));
  return id;
}

/**
 * How a subscription of `document` may share a channel: a subscription
 * operation whose one root field is a {@link SHAREABLE_FIELDS} field, with
 * no directives, and whose `after` argument is absent, a literal null, or a
 * variable without a non-null default.
 * @returns null when it may not; '' when it may and has no `after`
 *   variable; else the name of its `after` variable (whose value, when not
 *   null, is the subscriber's own cursor: it joins the channel after a
 *   replay, and the channel key leaves that variable out).
 */
export function shareableAfter(document: DocumentNode, operationName: string | null | undefined): string | null {
  const operation = getOperationAST(document, operationName);
  if (!operation || operation.operation !== 'subscription' || operation.directives?.length) return null;
  const selections = operation.selectionSet.selections;
  const field = selections[0];
  if (selections.length !== 1 || field?.kind !== Kind.FIELD || !SHAREABLE_FIELDS.has(field.name.value) || field.directives?.length) return null;
  const after = field.arguments?.find((a) => a.name.value === 'after')?.value;
  if (!after || after.kind === Kind.NULL) return '';
  if (after.kind !== Kind.VARIABLE) return null;
  const name = after.name.value;
  const fallback = operation.variableDefinitions?.find((d) => d.variable.name.value === name)?.defaultValue;
  return !fallback || fallback.kind === Kind.NULL ? name : null;
}

/**
 * May a subscription of `document` with `variables` share a channel (see
 * {@link shareableAfter}; a cursor in its `after` variable must be a
 * well-formed runwatch cursor: a malformed one runs on its own stream, which
 * reports BAD_USER_INPUT)?
 */
export function isShareable(document: DocumentNode, operationName: string | null | undefined, variables: Record<string, unknown> | null | undefined): boolean {
  const afterVariable = shareableAfter(document, operationName);
  return afterVariable !== null && cursorOf(afterVariable, variables) !== undefined;
}

/**
 * The decoded cursor in variable `name` of `variables`: null when there is
 * none ('' or an absent or null value), undefined when the value is not a
 * well-formed cursor.
 */
function cursorOf(name: string, variables: Record<string, unknown> | null | undefined): StreamPosition | null | undefined {
  const value = name === '' ? null : variables?.[name];
  if (value === null || value === undefined) return null;
  if (typeof value !== 'string') return undefined;
  try {
    return decodeCursor(value);
  } catch {
    return undefined;
  }
}

/**
 * The shared channel key of a `subscribe` by `viewer`: the parsed document
 * (one object per text in the cache), operation name, variables (JSON,
 * without the `after` variable) and the viewer's tenant, job restriction and
 * scopes — so subscribers with one key get equal results — with the
 * subscriber's own decoded cursor when its `after` variable holds one
 * (`{ key, after }`: it joins the channel after a replay, see
 * shared-channel.ts `Channel.attachAfter`). Null when it runs on its own: a
 * document not yet validated without error by `documents` (the first of its
 * text goes through the envelop, which validates and caches it), one
 * {@link shareableAfter} refuses, or a malformed cursor (its own stream
 * reports BAD_USER_INPUT).
 */
export function channelKeyOf(documents: DocumentCache, schema: GraphQLSchema, viewer: Viewer, payload: SubscribePayload): string | CursorJoin | null {
  if (typeof payload.query !== 'string') return null;
  const document = documents.validDocument(schema, payload.query);
  if (!document) return null;
  const afterVariable = shareableAfter(document, payload.operationName);
  if (afterVariable === null) return null;
  let variables = payload.variables ?? null;
  const after = cursorOf(afterVariable, variables);
  if (after === undefined) return null;
  if (variables && afterVariable !== '' && afterVariable in variables) {
    const { [afterVariable]: _cursor, ...rest } = variables;
    variables = rest;
  }
  // The document as a number, not its text: a shorter key to build and hash per subscribe.
  const key = `${documentId(document)}\u0000${payload.operationName ?? ''}\u0000${JSON.stringify(variables)}\u0000${viewerKey(viewer)}`;
  return after ? { key, after, variable: afterVariable } : key;
}

/** Attaches graphql-transport-ws; returns the WebSocket server and a dispose function. */
export function attachGraphqlWs(opts: WsOptions) {
  const wss = new WebSocketServer({
    server: opts.httpServer,
    path: '/graphql',
    maxPayload: LIMITS.maxBodyBytes,
    perMessageDeflate: opts.perMessageDeflate ?? false,
    ...(opts.policy ? { verifyClient: opts.policy.verifyClient } : {}),
  });
  const log = opts.log.child({ component: 'ws' });
  // The same masker as Yoga's (src/yoga.ts): pushed results skip the envelop wrappers, so they are masked here, once per shared result.
  const maskError = createErrorMasker(opts.log);
  const dropSlowConsumer = (connection: { close(code: number, reason: string): void }) =>
    connection.close(CloseCode.SlowConsumer, 'Slow consumer: resume from your last cursor');
  const documents = opts.sharedChannels ? opts.documents : undefined;
  // The schema documents are validated against (the envelop's; one object for the server's life).
  let schema: GraphQLSchema | undefined;
  const server = serveGraphqlWs<Viewer>(wss, {
    connectionInitWaitTimeoutMs: opts.connectionInitWaitTimeoutMs ?? 5000,
    maxBufferedBytes: opts.maxBufferedBytes,
    closeGraceMs: opts.closeGraceMs,
    log,
    maskError,
    channelEndHooks: opts.channelEndHooks,
    onConnect: async (connection, params) => {
      const header = params?.authorization ?? params?.Authorization;
      let viewer: Viewer;
      try {
        viewer = await opts.verifier.verify(parseBearer(typeof header === 'string' ? header : null));
      } catch (error) {
        const reason = error instanceof AuthError ? error.reason : 'invalid';
        if (reason === 'expired') return { close: { code: CloseCode.Forbidden, reason: 'Forbidden' } };
        return { close: { code: CloseCode.Unauthorized, reason: `Unauthorized: ${reason} token` } };
      }
      // Closed while the token was being verified: admitting now would take a slot that no 'close' event ever releases.
      if (connection.socket.readyState !== connection.socket.OPEN) return { close: { code: 1000, reason: 'Closed' } };
      const refusal = opts.policy?.admitWebSocket(connection.socket, viewer, connection);
      return refusal ? { close: refusal } : { accept: viewer };
    },
    onSlowConsumer: dropSlowConsumer,
    channelKey: documents
      ? (connection, payload) => {
          const capped = opts.policy?.checkSubscribe(connection.operationCount);
          if (capped) return [capped];
          if (!connection.value) return null;
          schema ??= opts.yoga.getEnveloped({} as never).schema as GraphQLSchema;
          return channelKeyOf(documents, schema as GraphQLSchema, connection.value, payload);
        }
      : undefined,
    prepare: async (connection, _id, payload, forChannel) => {
      if (!forChannel) {
        const capped = opts.policy?.checkSubscribe(connection.operationCount);
        if (capped) return [capped];
      }
      const { schema, execute, subscribe, contextFactory, parse, validate } = opts.yoga.getEnveloped({
        params: payload,
        viewer: connection.value,
        // A channel's subscription serves many connections: no connection of its own to drop; plugins count its members.
        transport: forChannel
          ? { members: [] }
          : {
              // Method syntax: tsx names an arrow here with defineProperty, a dictionary per operation.
              dropSlowConsumer() {
                dropSlowConsumer(connection);
              },
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
      const args: ExecutionArgs = {
        schema,
        operationName: payload.operationName,
        document,
        variableValues: payload.variables,
        contextValue: await contextFactory(),
      };
      return { args, execute, subscribe };
    },
  });
  return { wss, dispose: () => server.dispose() };
}
