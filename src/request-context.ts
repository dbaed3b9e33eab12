/**
 * The part of the GraphQL context that code outside the schema reads: the
 * Envelop/Yoga plugins of `observe/` and `limits/` and the delivery helpers.
 * It lives beside them rather than in `schema/` so that those layers need not
 * import the schema (dependencies point one way: domain ← backends ←
 * delivery ← services ← schema ← transport/server). `schema/context.ts`
 * extends it with the services resolvers call.
 */
import type { Viewer } from './auth/tokens.js';

/** What every GraphQL context carries, whatever the transport: the authenticated caller. */
export interface ViewerContext {
  /** The authenticated caller (the context cannot be built without one). */
  viewer: Viewer;
}

/**
 * Is the transport of this GraphQL context an HTTP (SSE) request? Yoga's HTTP
 * contexts carry the `request`; graphql-ws contexts carry none.
 */
export const isHttpContext = (context: unknown): boolean => Boolean((context as { request?: unknown } | null)?.request);
