/**
 * The one mapping from errors to what clients see (Yoga's `maskError`).
 *
 * - DomainError → its message and `extensions.code` (BAD_USER_INPUT, NOT_FOUND, ...).
 * - GraphQLError made on purpose (parse/validation, limits, FORBIDDEN) → as it is.
 * - A variable the request gave that graphql-js could not coerce to its type
 *   (an Int out of range or not whole, a Float "NaN", an unknown enum value, a
 *   `@oneOf` input with two fields, a missing required field...) → graphql-js's
 *   message with code BAD_USER_INPUT: it is an invalid argument, and nothing ran.
 * - Anything else → "Unexpected error." with code INTERNAL_SERVER_ERROR, and the
 *   original is logged with the path; no stack trace or message reaches the client.
 *
 * Errors arrive wrapped (located errors inside located errors), so the
 * decision is made on the innermost cause. Classes are recognised by name as
 * well as by `instanceof`, because graphql ships both ESM and CJS builds and
 * a dependency may throw the other build's GraphQLError.
 */
import { GraphQLError, Kind } from 'graphql';
import type { Logger } from 'pino';
import { DomainError } from '../domain/errors.js';
import { AuthError } from '../auth/tokens.js';

const HTTP_STATUS: Partial<Record<string, number>> = { UNAUTHENTICATED: 401, SERVICE_UNAVAILABLE: 503 };

type ErrorLike = Error & { originalError?: unknown; extensions?: Record<string, unknown>; path?: readonly (string | number)[] };

const isGraphQLErrorLike = (e: unknown): e is GraphQLError => e instanceof GraphQLError || (e instanceof Error && e.name === 'GraphQLError');

/** The innermost non-wrapper error. */
function rootCause(error: unknown): unknown {
  let current = error;
  for (let depth = 0; depth < 10; depth++) {
    const inner = (current as ErrorLike | null)?.originalError;
    if (!inner) break;
    current = inner;
  }
  return current;
}

/**
 * Is this graphql-js's refusal of a variable value (values.ts `coerceVariableValues`)?
 * Those errors point at the variable's definition and say `Variable "$name" ...`.
 */
function isVariableCoercionError(error: GraphQLError): boolean {
  return error.nodes?.[0]?.kind === Kind.VARIABLE_DEFINITION || /^Variable "\$[^"]+" /.test(error.message);
}

/** Builds Yoga's `maskError` for a logger. */
export function createErrorMasker(log: Logger) {
  return (error: unknown): Error => {
    const outer = isGraphQLErrorLike(error) ? error : null;
    const where = outer ? { path: outer.path, nodes: outer.nodes, source: outer.source, positions: outer.positions } : {};
    if (outer && !outer.path && isVariableCoercionError(outer)) {
      return new GraphQLError(outer.message, { ...where, extensions: { ...outer.extensions, code: 'BAD_USER_INPUT' } });
    }
    const cause = rootCause(error);
    if (cause instanceof DomainError) {
      const status = HTTP_STATUS[cause.code];
      return new GraphQLError(cause.message, {
        ...where,
        extensions: { ...cause.details, code: cause.code, ...(status ? { http: { status } } : {}) },
      });
    }
    if (cause instanceof AuthError) {
      return new GraphQLError(cause.message, { ...where, extensions: { code: 'UNAUTHENTICATED', reason: cause.reason, http: { status: 401 } } });
    }
    if (isGraphQLErrorLike(cause)) {
      return cause === error ? cause : new GraphQLError(cause.message, { ...where, extensions: cause.extensions });
    }
    log.error({ err: cause, path: outer?.path?.join('.') }, 'unexpected error (masked to the client)');
    return new GraphQLError('Unexpected error.', { ...where, extensions: { code: 'INTERNAL_SERVER_ERROR' } });
  };
}
