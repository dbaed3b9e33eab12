/**
 * The one mapping from errors to what clients see (Yoga's `maskError`).
 *
 * - DomainError → its message and `extensions.code` (BAD_USER_INPUT, NOT_FOUND, ...).
 * - GraphQLError made on purpose (parse/validation, limits, FORBIDDEN) → as it is.
 * - Anything else → "Unexpected error." with code INTERNAL_SERVER_ERROR, and the
 *   original is logged with the path; no stack trace or message reaches the client.
 */
import { GraphQLError } from 'graphql';
import type { Logger } from 'pino';
import { DomainError } from '../domain/errors.js';
import { AuthError } from '../auth/tokens.js';

const HTTP_STATUS: Partial<Record<string, number>> = { UNAUTHENTICATED: 401, SERVICE_UNAVAILABLE: 503 };

/** Builds Yoga's `maskError` for a logger. */
export function createErrorMasker(log: Logger) {
  return (error: unknown): Error => {
    const graphqlError = error instanceof GraphQLError ? error : null;
    const original = graphqlError?.originalError ?? error;
    const where = graphqlError ? { path: graphqlError.path, nodes: graphqlError.nodes, source: graphqlError.source, positions: graphqlError.positions } : {};
    if (original instanceof DomainError) {
      const status = HTTP_STATUS[original.code];
      return new GraphQLError(original.message, {
        ...where,
        extensions: { ...original.details, code: original.code, ...(status ? { http: { status } } : {}) },
      });
    }
    if (original instanceof AuthError) {
      return new GraphQLError(original.message, { ...where, extensions: { code: 'UNAUTHENTICATED', reason: original.reason, http: { status: 401 } } });
    }
    if (graphqlError && (!graphqlError.originalError || graphqlError.originalError instanceof GraphQLError)) {
      return graphqlError;
    }
    log.error({ err: original, path: graphqlError?.path?.join('.') }, 'unexpected error (masked to the client)');
    return new GraphQLError('Unexpected error.', { ...where, extensions: { code: 'INTERNAL_SERVER_ERROR' } });
  };
}
