/**
 * Which subscriptions may share a channel (src/transport/ws.ts `isShareable`,
 * `channelKeyOf`): `runProgress` alone, `after` left out of the key (a cursor joins after a replay), and only with one key
 * per document, variables, tenant, job restriction and scopes.
 */
import { parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import type { Scope, Viewer } from '../../src/auth/tokens.js';
import { DocumentCache } from '../../src/limits/document-cache.js';
import { schema } from '../../src/schema/index.js';
import { channelKeyOf, isShareable } from '../../src/transport/ws.js';

const WATCH = 'subscription($runId: ID!, $after: String) { runProgress(runId: $runId, after: $after) { cursor type } }';

describe('isShareable', () => {
  it.each([
    ['no after argument', 'subscription { runProgress(runId: "j") { cursor } }', {}, true],
    ['after: null', 'subscription { runProgress(runId: "j", after: null) { cursor } }', {}, true],
    ['after from a variable that is absent', WATCH, { runId: 'j' }, true],
    ['after from a variable that is null', WATCH, { runId: 'j', after: null }, true],
    ['after from a variable with a cursor (joins after a replay)', WATCH, { runId: 'j', after: 'e.3' }, true],
    ['after from a variable with a malformed cursor', WATCH, { runId: 'j', after: 'garbage' }, false],
    ['after from a variable that is not a string', WATCH, { runId: 'j', after: 3 }, false],
    ['after from an absent variable with a default', 'subscription($a: String = "e.1") { runProgress(runId: "j", after: $a) { cursor } }', {}, false],
    ['after as a literal', 'subscription { runProgress(runId: "j", after: "e.1") { cursor } }', {}, false],
    ['another root field', 'subscription { jobUpdates { type } }', {}, false],
    ['two root fields', 'subscription { a: runProgress(runId: "j") { cursor } b: runProgress(runId: "k") { cursor } }', {}, false],
    ['a directive on the field', 'subscription($s: Boolean!) { runProgress(runId: "j") @skip(if: $s) { cursor } }', { s: false }, false],
    ['a query', 'query { batchJob(id: "j") { id } }', {}, false],
  ])('%s', (_what, query, variables, expected) => {
    expect(isShareable(parse(query), undefined, variables)).toBe(expected);
  });
});

describe('channelKeyOf', () => {
  const viewer = (over: Partial<Viewer> = {}): Viewer => ({
    userId: 'u',
    tenant: { institute: 'i', environment: 'default' },
    scopes: new Set<Scope>(['jobs:read', 'jobs:write']),
    expiresAt: null,
    jobId: null,
    ...over,
  });
  const documents = new DocumentCache();
  // Parsed and validated without errors, as the envelop's cache plugin leaves a document it ran.
  const validated = (query: string) => {
    const parsed = parse(query);
    (documents as unknown as { documents: { set(k: string, v: unknown): void } }).documents.set(query, parsed);
    (documents as unknown as { validations: WeakMap<object, WeakMap<object, unknown[]>> }).validations.set(schema, new WeakMap([[parsed, []]]));
  };

  it('is null for a document not validated yet, and equal only for equal documents, variables and viewers', () => {
    const payload = { query: WATCH, variables: { runId: 'j' } };
    expect(channelKeyOf(documents, schema, viewer(), payload)).toBeNull();
    validated(WATCH);
    const key = channelKeyOf(documents, schema, viewer(), payload);
    expect(key).toEqual(expect.any(String));
    expect(channelKeyOf(documents, schema, viewer({ userId: 'someone else', expiresAt: 1 }), payload)).toBe(key);
    expect(channelKeyOf(documents, schema, viewer({ scopes: new Set<Scope>(['jobs:write', 'jobs:read']) }), payload)).toBe(key);
    const others = [
      channelKeyOf(documents, schema, viewer({ tenant: { institute: 'other', environment: 'default' } }), payload),
      channelKeyOf(documents, schema, viewer({ tenant: { institute: 'i', environment: 'staging' } }), payload),
      channelKeyOf(documents, schema, viewer({ scopes: new Set<Scope>(['jobs:read']) }), payload),
      channelKeyOf(documents, schema, viewer({ jobId: 'j' }), payload),
      channelKeyOf(documents, schema, viewer(), { query: WATCH, variables: { runId: 'k' } }),
    ];
    for (const other of others) expect(other).not.toBe(key);
    expect(new Set(others).size).toBe(others.length);
    // The key leaves `after` out: a null cursor shares the channel; a cursor joins it after a replay; a malformed one runs on its own.
    expect(channelKeyOf(documents, schema, viewer(), { query: WATCH, variables: { runId: 'j', after: null } })).toBe(key);
    expect(channelKeyOf(documents, schema, viewer(), { query: WATCH, variables: { runId: 'j', after: 'e.1' } })).toEqual({ key, after: { epoch: 'e', offset: 1 }, variable: 'after' });
    expect(channelKeyOf(documents, schema, viewer(), { query: WATCH, variables: { runId: 'j', after: 'garbage' } })).toBeNull();
  });
});
