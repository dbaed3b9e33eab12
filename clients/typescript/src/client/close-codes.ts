/**
 * The WebSocket close codes a runwatch server sends (besides graphql-ws's own), as the SDK reads them.
 * The server's list is src/close-codes.ts in the repository root; the client package cannot import the
 * server, so it keeps this copy, and test/unit/close-codes.test.ts checks that the two agree.
 * Whether the graphql-ws client retries is its own rule: 4401 and 4500 are fatal; 4403, 4008, 1012
 * and 1013 are retried.
 */
export const CloseCode = {
  /** Missing or invalid token: fatal, retrying with the same token cannot help. */
  Unauthorized: 4401,
  /** Expired token (at connect, or while connected): retryable with a fresh token. */
  Forbidden: 4403,
  /** The client read too slowly and its queue overflowed: reconnect and resume from the last cursor. */
  SlowConsumer: 4008,
  /** The server is shutting down (rolling deploy): reconnect, to this or another instance. */
  ServiceRestart: 1012,
  /** Too many connections for this user on this instance: retry later, with backoff. */
  TryAgainLater: 1013,
} as const;
