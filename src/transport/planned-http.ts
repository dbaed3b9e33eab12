/**
 * The plan path for hot GraphQL requests over HTTP: a `POST /graphql` JSON
 * query or mutation whose document text was already parsed and validated
 * without error (limits included) is executed straight through the envelop,
 * skipping what Yoga and its node adapter do per request around it — a
 * WHATWG `Request` and `Headers` built from the node request, the body read
 * through a stream into `request.json()`, the per-request hook chains for
 * request parsing, params, parse and validate (every plugin's `onParse` and
 * `onValidate`, answered from the cache anyway), result processing, and a
 * WHATWG `Response` copied back into the node response. A report from a
 * worker (`reportProgress`) is nearly always such a request: its document
 * text is the same every time.
 *
 * What it keeps, per request: the body limit (`Content-Length` at most
 * `maxBodyBytes`), the params checks Yoga makes (only `query`, `variables`,
 * `operationName`, `extensions`, with their types), the GraphQL context of
 * every HTTP request (authentication, src/transport/yoga.ts), and everything
 * plugins do around execution (`onExecute`: rate limits, variable-depth limit,
 * metrics, error logs, tracing spans, error masking). The document's parse
 * and validation results are those the document cache
 * ({@link DocumentCache}) holds, which is what Yoga would use as well. The
 * response is made by Yoga's own `processRegularResult` (status codes from
 * `extensions.http`, internals stripped), so it is the one Yoga sends.
 *
 * Everything else goes to Yoga unchanged, before anything has run: other
 * methods, paths and media types, `Origin` (CORS), chunked bodies, a body
 * that is not a JSON object of valid params, a document not validated yet
 * (Yoga then parses and validates it, which fills the cache), documents with
 * several operations, subscriptions, and a request whose context cannot be
 * built (authentication failed: Yoga answers it, 401 and all). Its body,
 * already read, is handed over as `req.body` (the node adapter's support for
 * pre-read bodies, @whatwg-node/server `normalizeNodeRequest`).
 *
 * Plugins with HTTP-level hooks that would be skipped here (`onParams` other
 * than Yoga's params check, `onExecutionResult`, `onResultProcess` other than
 * Yoga's, `onResponse` other than Yoga's CORS) switch the plan path off at
 * start ({@link createPlannedHttp} logs it). `onRequest` and `onRequestParse`
 * hooks are not counted (Yoga's own are many, each for another path, method
 * or body kind: health, readiness, GraphiQL, /metrics, OPTIONS, multipart,
 * batching, the body limit): a new plugin with one that must see every
 * GraphQL request has to be weighed against this path.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Kind, type DocumentNode, type ExecutionArgs, type ExecutionResult, type OperationDefinitionNode } from 'graphql';
import { processRegularResult, type YogaServerInstance } from 'graphql-yoga';
import type { Logger } from 'pino';
import type { DocumentCache } from '../limits/document-cache.js';
import type { Context } from '../schema/context.js';
import type { TransportContext } from './yoga.js';

/** Options of {@link createPlannedHttp}. */
export interface PlannedHttpOptions {
  /** The GraphQL path, e.g. `/graphql` (exact match; a query string goes to Yoga). */
  endpoint: string;
  /** Largest body in bytes (Yoga refuses larger ones: those go to it). */
  maxBodyBytes: number;
  /** The document cache Yoga's envelop uses (its plugin must be installed there). */
  documents: DocumentCache;
  /** Yoga's error masker, for an error thrown out of execution (Yoga's `maskedErrors.maskError`). */
  maskError: (error: unknown, message: string) => Error;
  log: Logger;
}

/** A request handler that answers the requests it can plan and hands the others to Yoga. */
export type HttpHandler = (req: IncomingMessage, res: ServerResponse) => void;

/** What the plan path needs of the node request, shaped like the WHATWG request Yoga's context carries (headers.get). */
class NodeRequestView {
  readonly method: string;
  readonly url: string;
  readonly headers: { get(name: string): string | null };

  constructor(req: IncomingMessage) {
    this.method = req.method ?? 'POST';
    this.url = req.url ?? '/';
    this.headers = new NodeHeaders(req);
  }
}

/** `Headers.get` over a node request's headers (lower-case names; repeated ones joined with ", " as the Fetch API does). */
class NodeHeaders {
  constructor(private readonly req: IncomingMessage) {}

  get(name: string): string | null {
    const value = this.req.headers[name.toLowerCase()];
    if (value === undefined) return null;
    return Array.isArray(value) ? value.join(', ') : value;
  }
}

/** A `Response` stand-in for Yoga's `processRegularResult`: it only records what the response would be. */
class RecordedResponse {
  constructor(
    readonly body: string,
    readonly init: { status?: number; headers?: Record<string, string> },
  ) {}
}
const RECORDING_FETCH_API = { Response: RecordedResponse } as never;

const JSON_CONTENT_TYPE = /^application\/json\s*(;\s*charset\s*=\s*"?utf-8"?\s*)?$/i;
/** Accept values for which Yoga answers `application/json` (see use-result-processor.js: the last match wins). */
const PLAIN_ACCEPT = new Set(['*/*', 'application/json', 'application/json; charset=utf-8']);
const PARAM_NAMES = new Set(['query', 'variables', 'operationName', 'extensions']);

const ignore = () => {};

/** Is `value` a plain JSON object (not null, not an array)? */
const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** GraphQL-over-HTTP params as Yoga accepts them (graphql-yoga `checkGraphQLQueryParams`), else null. */
function paramsOf(body: unknown): { query: string; variables?: Record<string, unknown>; operationName?: string; extensions?: Record<string, unknown> } | null {
  if (!isObject(body)) return null;
  for (const key in body) if (!PARAM_NAMES.has(key)) return null;
  const { query, variables, operationName, extensions } = body;
  if (typeof query !== 'string') return null;
  if (variables != null && !isObject(variables)) return null;
  if (operationName != null && typeof operationName !== 'string') return null;
  if (extensions != null && !isObject(extensions)) return null;
  return body as never;
}

/** The only operation of a document if it is a query or a mutation; null otherwise (several, a subscription). */
function plannedOperation(document: DocumentNode): OperationDefinitionNode | null {
  let found: OperationDefinitionNode | null = null;
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.OPERATION_DEFINITION) continue;
    if (found) return null;
    found = definition;
  }
  return found && found.operation !== 'subscription' ? found : null;
}

/** Plugin hooks the plan path would skip; a plugin with one of them switches it off. */
function skippedHooks(yoga: YogaServerInstance<TransportContext, Context>): string[] {
  // Yoga's plugin list (YogaServer `plugins`: envelop's `getEnveloped._plugins`, Yoga's own included), which the
  // server adapter passes through; if a version hides it, stay off.
  const list = (yoga as unknown as { plugins?: unknown }).plugins;
  if (!Array.isArray(list)) return ['(plugin list not readable)'];
  const plugins = (list as (Record<string, unknown> | null | undefined)[]).filter((p): p is Record<string, unknown> => Boolean(p));
  const count = (hook: string) => plugins.filter((p) => typeof p[hook] === 'function').length;
  const found: string[] = [];
  // Yoga's own: one onParams (the params check, replicated by paramsOf), one onResultProcess (its result
  // processors), one onResponse (CORS: headers for requests with an Origin, which all go to Yoga; runwatch's
  // `cors` option, src/limits/connection-policy.ts, adds none without one).
  if (count('onParams') > 1) found.push('onParams');
  if (count('onResultProcess') > 1) found.push('onResultProcess');
  if (count('onExecutionResult') > 0) found.push('onExecutionResult');
  if (count('onResponse') > 1) found.push('onResponse');
  return found;
}

/**
 * Wraps Yoga's node handler with the plan path (see the module doc).
 * @returns the handler to give node's HTTP server; it never throws (errors are answered as Yoga would).
 */
export function createPlannedHttp(yoga: YogaServerInstance<TransportContext, Context>, opts: PlannedHttpOptions): HttpHandler {
  const skipped = skippedHooks(yoga);
  if (skipped.length > 0) {
    opts.log.info({ hooks: skipped }, 'HTTP plan path off: plugins have hooks it would skip');
    return (req, res) => void yoga(req, res);
  }
  const operations = new WeakMap<DocumentNode, OperationDefinitionNode | null>();
  const operationOf = (document: DocumentNode) => {
    let operation = operations.get(document);
    if (operation === undefined) operations.set(document, (operation = plannedOperation(document)));
    return operation;
  };

  /** Hands a request whose body was read to Yoga. */
  const toYoga = (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    (req as IncomingMessage & { body?: Buffer }).body = body;
    void yoga(req, res);
  };

  const run = async (req: IncomingMessage, res: ServerResponse, raw: Buffer): Promise<void> => {
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      return toYoga(req, res, raw);
    }
    const params = paramsOf(body);
    if (!params) return toYoga(req, res, raw);
    const initial = { request: new NodeRequestView(req), params, req, res };
    const enveloped = yoga.getEnveloped(initial as never);
    const document = opts.documents.validDocument(enveloped.schema, params.query);
    const operation = document && operationOf(document);
    if (!document || !operation || (params.operationName != null && params.operationName !== operation.name?.value)) return toYoga(req, res, raw);
    let contextValue: Context;
    try {
      contextValue = (await enveloped.contextFactory()) as Context;
    } catch {
      // Authentication failed (or the context could not be built): nothing ran yet; Yoga answers it as always.
      return toYoga(req, res, raw);
    }
    let result: ExecutionResult;
    try {
      const args: ExecutionArgs = { schema: enveloped.schema, document, contextValue, variableValues: params.variables, operationName: params.operationName };
      result = (await enveloped.execute(args)) as ExecutionResult;
    } catch (error) {
      result = { errors: [opts.maskError(error, 'Unexpected error.') as never] };
    }
    const response = processRegularResult(result, RECORDING_FETCH_API, 'application/json') as unknown as RecordedResponse;
    if (res.headersSent || res.destroyed) return;
    res.writeHead(response.init.status ?? 200, { ...response.init.headers, 'content-length': Buffer.byteLength(response.body) });
    res.end(response.body);
  };

  return (req, res) => {
    const headers = req.headers;
    const length = headers['content-length'];
    const accept = headers.accept;
    if (
      req.method !== 'POST' ||
      req.url !== opts.endpoint ||
      headers.origin !== undefined ||
      headers['transfer-encoding'] !== undefined ||
      length === undefined ||
      !(Number(length) > 0 && Number(length) <= opts.maxBodyBytes) ||
      !JSON_CONTENT_TYPE.test(headers['content-type'] ?? '') ||
      (accept !== undefined && !PLAIN_ACCEPT.has(accept.trim().toLowerCase()))
    ) {
      void yoga(req, res);
      return;
    }
    const chunks: Buffer[] = [];
    req.once('error', ignore); // an aborted upload: nothing to answer
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.once('end', () => {
      run(req, res, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).catch((error: unknown) => {
        opts.log.error({ err: error }, 'HTTP plan path failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json; charset=utf-8' });
        res.end('{"errors":[{"message":"Unexpected error.","extensions":{"code":"INTERNAL_SERVER_ERROR"}}]}');
      });
    });
  };
}
