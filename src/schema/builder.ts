/**
 * The one Pothos builder: plugins, scalars and the auth scopes.
 *
 * Scopes are the contract's (`jobs:read`, `jobs:write`, `jobs:control`,
 * `activity:read`, `admin`); a field lacking its scope raises FORBIDDEN.
 * Subscriptions are authorized once, when they start (`authorizeOnSubscribe`).
 */
import SchemaBuilder from '@pothos/core';
import ScopeAuthPlugin, { RequestCache } from '@pothos/plugin-scope-auth';
import { GraphQLError } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Scope } from '../auth/tokens.js';
import type { Context } from './context.js';
import { BoundedJSON } from './json-input.js';

export const builder = new SchemaBuilder<{
  Context: Context;
  AuthScopes: Record<Scope, boolean>;
  DefaultFieldNullability: false;
  Scalars: {
    DateTime: { Input: Date; Output: number | Date };
    JSON: { Input: unknown; Output: unknown };
    ID: { Input: string; Output: string };
  };
}>({
  plugins: [ScopeAuthPlugin],
  defaultFieldNullability: false,
  scopeAuth: {
    authorizeOnSubscribe: true,
    authScopes: (ctx) => ({
      'jobs:read': ctx.viewer.scopes.has('jobs:read'),
      'jobs:write': ctx.viewer.scopes.has('jobs:write'),
      'jobs:control': ctx.viewer.scopes.has('jobs:control'),
      'activity:read': ctx.viewer.scopes.has('activity:read'),
      admin: ctx.viewer.scopes.has('admin'),
    }),
    unauthorizedError: (_parent, _ctx, info) =>
      new GraphQLError(`not allowed: ${info.parentType.name}.${info.fieldName} needs a scope this token lacks`, {
        extensions: { code: 'FORBIDDEN' },
      }),
  },

});

/** The hooks of {@link useScopeCacheRelease}: one object for every subscription (no closure per subscription). */
const RELEASE_SCOPE_CACHE = {
  onSubscribeResult({ args }: { args: { contextValue: unknown } }): void {
    if (typeof args.contextValue === 'object' && args.contextValue !== null) RequestCache.clearForContext(args.contextValue);
  },
};

/**
 * An envelop plugin: once a subscription has started (its root field
 * authorized, `authorizeOnSubscribe`), drops scope-auth's per-request cache
 * for the subscription's GraphQL context (Pothos `RequestCache`: granted scopes
 * by path in six Maps, about 1.2 KB), which the context would otherwise keep
 * for as long as the subscription runs. Events are executed with one shared
 * context per operation (delivery/shared-execution.ts), which builds its own
 * cache again on the first event. Install it after the schema's plugins.
 */
export function useScopeCacheRelease(): Plugin {
  return {
    onSubscribe() {
      return RELEASE_SCOPE_CACHE;
    },
  };
}

builder.queryType({ description: 'Read jobs and account activity. Every field needs a bearer token.' });
builder.mutationType({ description: 'Create jobs and report their progress (workers), control them (people).' });
builder.subscriptionType({ description: 'Live streams over graphql-ws or SSE.' });

builder.scalarType('DateTime', {
  description: 'A point in time, as an ISO-8601 string in UTC with milliseconds (e.g. 2026-11-21T09:00:00.000Z).',
  serialize: (value) => new Date(value).toISOString(),
  parseValue: (value) => {
    const date = typeof value === 'string' ? new Date(value) : new Date(NaN);
    if (Number.isNaN(date.getTime())) throw new GraphQLError('DateTime must be an ISO-8601 string', { extensions: { code: 'BAD_USER_INPUT' } });
    return date;
  },
});

builder.addScalarType('JSON', BoundedJSON, {});
