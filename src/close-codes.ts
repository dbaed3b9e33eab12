/**
 * WebSocket close codes runwatch sends, beside graphql-ws's own (4400 bad
 * message, 4408 init timeout, 4409 duplicate id, 4429 second init, 4500 internal).
 * Whether the graphql-ws client retries is its own rule: 4401 and 4500 are
 * fatal; 4403, 4008, 1012 and 1013 are retried.
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
  /** Too many connections for this user on this instance: retry later, with backoff (retried by graphql-ws clients). */
  TryAgainLater: 1013,
} as const;
