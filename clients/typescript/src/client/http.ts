/**
 * Queries and mutations over HTTP POST with typed documents.
 */
import type { DocumentTypeDecoration } from '@graphql-typed-document-node/core';
import { fromGraphQLErrors, RunwatchError } from './errors.js';

/** A bearer token, or a function returning one (called for every request and every WebSocket connect, so it can refresh). */
export type TokenSource = string | (() => string | Promise<string>);

/** Resolves a {@link TokenSource} to the token. */
export const resolveToken = async (token: TokenSource): Promise<string> => (typeof token === 'function' ? token() : token);

/** Normalises a server URL: `http://host:4000` and `http://host:4000/graphql` both give the `/graphql` endpoint. */
export function graphqlEndpoint(url: string): string {
  const u = new URL(url);
  if (!u.pathname.endsWith('/graphql')) u.pathname = `${u.pathname.replace(/\/$/, '')}/graphql`;
  return u.toString();
}

/** What {@link httpRequest} needs. */
export interface HttpOptions {
  /** The `/graphql` endpoint. */
  endpoint: string;
  token: TokenSource;
  /** fetch implementation (default: global fetch). */
  fetch?: typeof fetch | undefined;
  /** Per-request timeout in milliseconds (default 15000). */
  timeoutMs?: number | undefined;
}

/**
 * Runs one operation and returns its `data`.
 * @throws RunwatchError with the server's `extensions.code`; `NETWORK` (transient) when the server
 *   cannot be reached, times out or answers 5xx without a GraphQL body.
 */
export async function httpRequest<TResult, TVariables>(
  opts: HttpOptions,
  document: DocumentTypeDecoration<TResult, TVariables> & { toString(): string },
  variables: TVariables,
): Promise<TResult> {
  const doFetch = opts.fetch ?? fetch;
  let res: Response;
  try {
    res = await doFetch(opts.endpoint, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json, application/json',
        authorization: `Bearer ${await resolveToken(opts.token)}`,
      },
      body: JSON.stringify({ query: document.toString(), variables }),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 15_000),
    });
  } catch (error) {
    throw new RunwatchError('NETWORK', `cannot reach ${opts.endpoint}: ${error instanceof Error ? error.message : String(error)}`, true);
  }
  let body: { data?: TResult | null; errors?: { message: string; extensions?: Record<string, unknown> }[] };
  try {
    body = (await res.json()) as typeof body;
  } catch {
    throw new RunwatchError(res.status >= 500 ? 'NETWORK' : 'BAD_RESPONSE', `HTTP ${res.status} from ${opts.endpoint} without a GraphQL body`, res.status >= 500, res.status);
  }
  if (body.errors?.length) throw fromGraphQLErrors(body.errors, res.status);
  if (!body.data) throw new RunwatchError('BAD_RESPONSE', `HTTP ${res.status} from ${opts.endpoint} without data`, res.status >= 500, res.status);
  return body.data;
}
