/**
 * Domain errors. Each carries the `extensions.code` of DESIGN.md's error table;
 * `src/schema/errors.ts` maps them to GraphQL errors. Anything else thrown is
 * unexpected and is masked before it reaches a client.
 */

/** The `extensions.code` values of the public contract. */
export type ErrorCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'BAD_USER_INPUT'
  | 'CONFLICT'
  | 'RATE_LIMITED'
  | 'SERVICE_UNAVAILABLE'
  | 'SLOW_CONSUMER';

/** A failure the caller can act on; its message is safe to show to clients. */
export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** Extra, client-safe details merged into `extensions` (e.g. `{ field: 'completed' }`). */
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

/** `BAD_USER_INPUT`: the arguments are invalid; nothing was changed. */
export const badInput = (field: string, message: string) =>
  new DomainError('BAD_USER_INPUT', message, { field });

/** `NOT_FOUND`: no such job in the caller's tenant (another tenant's job looks the same). */
export const notFound = (id: string) => new DomainError('NOT_FOUND', `no job with id ${JSON.stringify(id)}`);

/** `CONFLICT`: the job is finished, or an idempotency key was reused with other input. */
export const conflict = (message: string) => new DomainError('CONFLICT', message);

/** `SERVICE_UNAVAILABLE`: the backend cannot be reached now; the same call can succeed later. */
export const isUnavailable = (error: unknown): boolean => error instanceof DomainError && error.code === 'SERVICE_UNAVAILABLE';
