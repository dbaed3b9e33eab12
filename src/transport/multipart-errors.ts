/**
 * Codes for refused `multipart/form-data` bodies (GraphQL multipart request spec:
 * an `operations` JSON field, an optional `map` JSON field, then files).
 *
 * Yoga 5's multipart parser (graphql-yoga `plugins/request-parser/post-multipart.js`) refuses a
 * missing `operations` field, an `operations` or `map` field that is not a string or not JSON,
 * with a bare GraphQLError: no `extensions.code`, and HTTP 200. Every other malformed body (bad JSON,
 * a non-object body, bad `query`/`variables`/`extensions` params, unreadable multipart data) is
 * refused by Yoga with `extensions.code` BAD_REQUEST and HTTP 400, as the GraphQL-over-HTTP spec
 * allows for a request that is not a well-formed GraphQL request. This plugin gives the multipart
 * refusals the same code and status, keeping Yoga's message. It wraps only the parser of multipart
 * requests, so JSON requests (nearly all of them) pay nothing.
 */
import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/** True when the request's body is `multipart/form-data` (Yoga's own test, by media type). */
const isMultipart = (request: Request) => /^\s*multipart\/form-data\s*(;|$)/i.test(request.headers.get('content-type') ?? '');

/**
 * The error a multipart parser threw, with `extensions.code` BAD_REQUEST and HTTP 400 when it had no
 * code; errors that carry a code (413 REQUEST_ENTITY_TOO_LARGE, BAD_REQUEST) and non-GraphQL errors
 * (an aborted request) pass unchanged.
 */
export function withBadRequestCode(error: unknown): unknown {
  if (!(error instanceof GraphQLError) || error.extensions?.code !== undefined) return error;
  return new GraphQLError(error.message, { extensions: { ...error.extensions, http: { status: 400 }, code: 'BAD_REQUEST' } });
}

/**
 * Gives code-less refusals of a multipart body `extensions.code` BAD_REQUEST and HTTP 400 (see the
 * module doc). Put it after the plugins that choose a request parser (Yoga's own come first).
 */
export function useMultipartErrorCodes(): Plugin {
  return {
    onRequestParse({ request, requestParser, setRequestParser }) {
      if (requestParser == null || !isMultipart(request)) return;
      const parse = requestParser;
      setRequestParser(async (req) => {
        try {
          return await parse(req);
        } catch (error) {
          throw withBadRequestCode(error);
        }
      });
    },
  };
}
