/**
 * The Yoga app: `/graphql` over HTTP (queries, mutations, SSE subscriptions,
 * GraphiQL), `/healthz`, `/readyz`, limits and error masking. graphql-ws
 * executes through the same envelop (see ws.ts), so both transports share
 * one schema, context and set of plugins.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GraphQLError } from 'graphql';
import { createYoga, useReadinessCheck, type Plugin, type YogaServerOptions, type YogaServerInstance } from 'graphql-yoga';
import type { Logger } from 'pino';
import { AuthError, parseBearer, type TokenVerifier, type Viewer } from '../auth/tokens.js';
import type { Backend } from '../backends/types.js';
import type { Context, Services } from '../schema/context.js';
import { createErrorMasker } from '../schema/errors.js';
import { useSharedSubscriptionExecution } from '../delivery/shared-execution.js';
import { useScopeCacheRelease } from '../schema/builder.js';
import { useVariableDepthLimit } from '../schema/json-input.js';
import { CloseGrace } from './close-grace.js';
import { graphiqlOptions, renderOfflineGraphiQL } from './graphiql.js';
import { useMultipartErrorCodes } from './multipart-errors.js';
import { useRequestBodyLimit } from '../limits/body-limit.js';
import { DocumentCache } from '../limits/document-cache.js';
import { DOCUMENT_LIMITS, useDocumentLimits } from '../limits/document-limits.js';
import { schema } from '../schema/index.js';
import type { StreamTransport } from '../delivery/live-stream.js';

/**
 * Request limits: the HTTP body (and a WebSocket message) in bytes; the rest
 * per GraphQL document, enforced on every transport (src/limits/document-limits.ts).
 */
export const LIMITS = {
  maxBodyBytes: 1_000_000,
  ...DOCUMENT_LIMITS,
} as const;

/** Extra fields of the initial context that graphql-ws passes in (HTTP leaves them unset), and the node request and response of HTTP. */
export interface TransportContext {
  viewer?: Viewer;
  transport?: StreamTransport;
  /** HTTP only (the node adapter's server context). */
  req?: IncomingMessage;
  /** HTTP only (the node adapter's server context): an SSE subscription's response. */
  res?: ServerResponse;
}

/**
 * An HTTP (SSE) subscription's transport. A subscriber whose stream
 * overflows gets the stream's error event and end; the response then has the
 * grace period ({@link CloseGrace}, 3 s) to flush them, else it is destroyed:
 * a reader that stopped reading holds at most its stream's queue and the
 * socket's buffer (node waits on 'drain' past its 16 KiB high-water mark) until then.
 */
class HttpStreamTransport implements StreamTransport {
  constructor(
    private readonly res: ServerResponse,
    private readonly grace: CloseGrace,
  ) {}

  dropSlowConsumer(): void {
    this.grace.add(this.res);
  }
}

export interface YogaDeps {
  verifier: TokenVerifier;
  services: Services;
  backend: Backend;
  log: Logger;
  /** Dev token to prefill in GraphiQL's headers (dev mode only). */
  devToken?: string;
  /** More plugins, after the built-in ones (metrics, tracing, limits: see src/ops.ts). */
  plugins?: Plugin[];
  /** Yoga's `cors` option (allowed origins, see src/limits/connection-policy.ts); default: Yoga's. */
  cors?: YogaServerOptions<TransportContext, Context>['cors'];
  /** The parse and validation cache to install (last plugin); default: a new one. The HTTP plan path reads it (src/transport/planned-http.ts). */
  documents?: DocumentCache;
  /** Milliseconds an SSE response the server is ending may take to flush before it is destroyed (default 3,000; {@link CloseGrace}). */
  closeGraceMs?: number;
}

/**
 * The Yoga app (see the module doc); serve it through
 * `createPlannedHttp` (src/transport/planned-http.ts) with the same
 * `documents`, which answers hot queries and mutations without Yoga's
 * per-request HTTP machinery and hands it everything else.
 */
export function createYogaApp(deps: YogaDeps): YogaServerInstance<TransportContext, Context> {
  // One sweep for the app's slow SSE responses.
  const sseGrace = new CloseGrace(deps.closeGraceMs);
  const yogaLog = deps.log.child({ component: 'yoga' });
  return createYoga<TransportContext, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    healthCheckEndpoint: '/healthz',
    landingPage: false,
    // Enforced by useRequestBodyLimit (last plugin): the same answers, without a stream per request.
    maxRequestBodySize: false,
    // Replaced by useDocumentCache (last plugins, where Yoga puts its own): the same caching, keyed without rule names.
    parserAndValidationCache: false,
    ...(deps.cors !== undefined ? { cors: deps.cors } : {}),
    logging: {
      debug: (...args) => yogaLog.debug(args.map(String).join(' ')),
      info: (...args) => yogaLog.info(args.map(String).join(' ')),
      warn: (...args) => yogaLog.warn(args.map(String).join(' ')),
      // Yoga reports every operation error here; the masker already logs the unexpected ones at error level.
      error: (...args) => yogaLog.debug(args.map(String).join(' ')),
    },
    maskedErrors: { maskError: createErrorMasker(deps.log) },
    graphiql: graphiqlOptions(deps.devToken),
    renderGraphiQL: renderOfflineGraphiQL,
    plugins: [
      ...useDocumentLimits(DOCUMENT_LIMITS),
      useVariableDepthLimit(),
      useSharedSubscriptionExecution(),
      useScopeCacheRelease(),
      useReadinessCheck({
        endpoint: '/readyz',
        check: async () => {
          try {
            await deps.backend.store.ping();
            return true;
          } catch {
            return false;
          }
        },
      }),
      ...(deps.plugins ?? []),
      useMultipartErrorCodes(),
      useRequestBodyLimit(LIMITS.maxBodyBytes),
      (deps.documents ?? new DocumentCache()).plugin,
    ],
    context: async (initial): Promise<Context> => {
      const viewer = initial.viewer ?? (await authenticate(deps.verifier, initial.request?.headers.get('authorization')));
      const transport = initial.transport ?? (initial.res ? new HttpStreamTransport(initial.res, sseGrace) : {});
      return { viewer, services: deps.services, log: deps.log, transport };
    },
  });
}

/**
 * Verifies an HTTP Authorization header.
 * @throws GraphQLError UNAUTHENTICATED (HTTP 401) with `extensions.reason` missing | invalid | expired.
 */
async function authenticate(verifier: TokenVerifier, header: string | null | undefined): Promise<Viewer> {
  try {
    return await verifier.verify(parseBearer(header));
  } catch (error) {
    if (!(error instanceof AuthError)) throw error;
    throw new GraphQLError(error.message, {
      extensions: { code: 'UNAUTHENTICATED', reason: error.reason, http: { status: 401, headers: { 'WWW-Authenticate': 'Bearer' } } },
    });
  }
}
