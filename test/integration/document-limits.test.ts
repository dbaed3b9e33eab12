/**
 * Standard tools can read the schema (graphql-js's introspection query with
 * every option on, over HTTP, SSE and graphql-ws), while abusive documents are
 * refused before execution with a coded error that names the limit, and the
 * server keeps answering.
 */
import { readFileSync } from 'node:fs';
import { buildClientSchema, buildSchema, getIntrospectionQuery, lexicographicSortSchema, printSchema, type IntrospectionQuery } from 'graphql';
import { beforeAll, describe, expect, it } from 'vitest';
import { DOCUMENT_LIMITS } from '../../src/limits/document-limits.js';
import { gql, gqlHttp, subscribeSse, subscribeWs, withTimeout, wsClient, type GqlResult } from '../helpers/clients.js';
import { startTestServer, token } from '../helpers/servers.js';

/** graphql-js's standard introspection query with every option on (what GraphiQL, codegen and IDEs send). */
const INTROSPECTION = getIntrospectionQuery({
  descriptions: true,
  specifiedByUrl: true,
  directiveIsRepeatable: true,
  schemaDescription: true,
  inputValueDeprecation: true,
  oneOf: true,
});

const committedSchema = () => printSchema(lexicographicSortSchema(buildSchema(readFileSync(new URL('../../schema.graphql', import.meta.url), 'utf8'))));
const printIntrospection = (data: IntrospectionQuery) => printSchema(lexicographicSortSchema(buildClientSchema(data)));

const N = 20_000;
const DEEP_LIST = `query { batchJobs(status: ${'['.repeat(N)}${']'.repeat(N)}) { totalCount } }`;
const ALIAS_BOMB = `query { ${Array.from({ length: 1000 }, (_, i) => `a${i}: __typename`).join(' ')} }`;
let bombFields = 'name';
for (let i = 0; i < 12; i++) bombFields = `fields { type { ${bombFields} } }`;
const INTROSPECTION_BOMB = `{ __type(name: "BatchJob") { ${bombFields} } }`;

let url: string;
let tok: string;
beforeAll(async () => {
  url = (await startTestServer()).url;
  tok = await token();
});

/** Runs a document over graphql-ws and returns the errors it ended with (none: []). */
async function wsErrors(query: string): Promise<{ message: string; extensions?: Record<string, unknown> }[]> {
  const c = subscribeWs(wsClient(url, tok), query, {}, '__typename');
  await c.done(10_000);
  return (c.errors[0] as { message: string; extensions?: Record<string, unknown> }[] | undefined) ?? [];
}

/** Runs a document over SSE and returns the errors it ended with. */
async function sseErrors(query: string) {
  const c = subscribeSse(url, tok, query, {}, '__typename');
  await c.done(10_000);
  return (c.errors[0] as GqlResult['errors']) ?? [];
}

describe('the standard introspection query', () => {
  it('returns the whole schema over HTTP', async () => {
    const data = await gql<IntrospectionQuery>(url, tok, INTROSPECTION);
    expect(printIntrospection(data)).toBe(committedSchema());
  });

  it('returns the whole schema over graphql-ws', async () => {
    const client = wsClient(url, tok);
    const result = await withTimeout(
      (async () => {
        for await (const r of client.iterate<IntrospectionQuery>({ query: INTROSPECTION })) return r;
        throw new Error('no result');
      })(),
      10_000,
      'the introspection result over graphql-ws',
    );
    expect(result.errors).toBeUndefined();
    expect(printIntrospection(result.data!)).toBe(committedSchema());
  });

  it('returns the whole schema over SSE', async () => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${tok}` },
      body: JSON.stringify({ query: INTROSPECTION }),
    });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const text = await res.text();
    const data = text
      .split('\n\n')
      .filter((block) => block.startsWith('event: next'))
      .map((block) => JSON.parse(block.split('\n').find((l) => l.startsWith('data:'))!.slice(5)) as GqlResult<IntrospectionQuery>);
    expect(data).toHaveLength(1);
    expect(printIntrospection(data[0]!.data!)).toBe(committedSchema());
  });
});

describe('abusive documents', () => {
  const cases = [
    { name: `a list literal nested ${N} levels deep`, query: DEEP_LIST, code: 'GRAPHQL_PARSE_FAILED', limit: 'maxNesting', says: `Nesting limit of ${DOCUMENT_LIMITS.maxNesting}` },
    { name: 'a 1,000-alias bomb', query: ALIAS_BOMB, code: 'GRAPHQL_PARSE_FAILED', limit: 'maxTokens', says: `Token limit of ${DOCUMENT_LIMITS.maxTokens}` },
    { name: 'a deep introspection bomb', query: INTROSPECTION_BOMB, code: 'GRAPHQL_VALIDATION_FAILED', limit: 'maxIntrospectionDepth', says: `Introspection depth limit of ${DOCUMENT_LIMITS.maxIntrospectionDepth}` },
  ];

  for (const c of cases) {
    it(`refuses ${c.name} with ${c.code} naming the limit, over HTTP, SSE and graphql-ws, and keeps answering`, async () => {
      const http = await gqlHttp(url, tok, c.query);
      expect(http.body.data).toBeUndefined();
      const httpError = http.body.errors?.find((e) => e.extensions?.limit === c.limit);
      expect(httpError, JSON.stringify(http.body.errors).slice(0, 500)).toBeDefined();
      expect(httpError!.extensions!.code).toBe(c.code);
      expect(httpError!.message).toContain(c.says);

      const sse = await sseErrors(c.query);
      expect(sse?.find((e) => e.extensions?.limit === c.limit)?.extensions?.code, JSON.stringify(sse).slice(0, 500)).toBe(c.code);

      const ws = await wsErrors(c.query);
      const wsError = ws.find((e) => e.extensions?.limit === c.limit);
      expect(wsError?.extensions?.code, JSON.stringify(ws).slice(0, 500)).toBe(c.code);
      expect(wsError?.message).toContain(c.says);

      expect(await gql(url, tok, '{ __typename }')).toEqual({ __typename: 'Query' });
    });
  }

  it('refuses a document again, the same way, every time it is sent (parse and validation results are cached)', async () => {
    const oversized = [
      { query: DEEP_LIST, code: 'GRAPHQL_PARSE_FAILED', limit: 'maxNesting' },
      { query: ALIAS_BOMB, code: 'GRAPHQL_PARSE_FAILED', limit: 'maxTokens' },
      { query: INTROSPECTION_BOMB, code: 'GRAPHQL_VALIDATION_FAILED', limit: 'maxIntrospectionDepth' },
      { query: `{ ${Array.from({ length: 16 }, (_, i) => `a${i}: batchJob(id: "x") { id }`).join(' ')} }`, code: 'GRAPHQL_VALIDATION_FAILED', limit: 'maxAliases' },
    ];
    for (const c of oversized) {
      for (let send = 1; send <= 3; send++) {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', authorization: `Bearer ${tok}` },
          body: JSON.stringify({ query: c.query }),
        });
        const body = (await res.json()) as GqlResult;
        expect(res.status, `${c.limit}, send ${send}`).toBe(400);
        expect(body.data).toBeUndefined();
        expect(body.errors?.find((e) => e.extensions?.limit === c.limit)?.extensions, `${c.limit}, send ${send}`).toMatchObject({ code: c.code, limit: c.limit });
        const ws = await wsErrors(c.query);
        expect(ws.find((e) => e.extensions?.limit === c.limit)?.extensions, `${c.limit} over graphql-ws, send ${send}`).toMatchObject({ code: c.code, limit: c.limit });
      }
    }
    // A document that passes keeps passing.
    for (let send = 1; send <= 3; send++) expect(await gql(url, tok, '{ __typename }')).toEqual({ __typename: 'Query' });
  });

  it('refuses a fragment bomb (fragments spreading the next twice, 2^40 fields) at once with maxCost, and keeps answering', async () => {
    const fragments = Array.from({ length: 40 }, (_, i) => `fragment F${i} on Query { ...F${i + 1} ...F${i + 1} }`);
    const bomb = ['query { ...F0 }', ...fragments, 'fragment F40 on Query { __typename }'].join('\n');
    const { body } = await withTimeout(gqlHttp(url, tok, bomb), 10_000, 'the answer to a fragment bomb');
    expect(body.errors?.[0]).toMatchObject({ extensions: { code: 'GRAPHQL_VALIDATION_FAILED', limit: 'maxCost', max: DOCUMENT_LIMITS.maxCost } });
    expect(await gql(url, tok, '{ __typename }')).toEqual({ __typename: 'Query' });
  });

  it('says which limit a document hit, with the number, for each limit', async () => {
    const refusal = async (query: string) => (await gqlHttp(url, tok, query)).body.errors?.[0];
    const aliases = await refusal(`{ ${Array.from({ length: 16 }, (_, i) => `a${i}: batchJob(id: "x") { id }`).join(' ')} }`);
    expect(aliases).toMatchObject({ message: 'Aliases limit of 15 exceeded, found 16.', extensions: { code: 'GRAPHQL_VALIDATION_FAILED', limit: 'maxAliases', max: 15 } });

    const twoSchemas = await refusal('{ a: __schema { queryType { name } } b: __schema { queryType { name } } }');
    expect(twoSchemas).toMatchObject({ extensions: { code: 'GRAPHQL_VALIDATION_FAILED', limit: 'maxSchemaFields', max: 1 } });

    let deep = 'id';
    for (let i = 0; i < 16; i++) deep = `job { ${deep} }`;
    const depth = await refusal(`subscription { runProgress(runId: "x") { ${deep} } }`);
    expect(depth).toMatchObject({ extensions: { code: 'GRAPHQL_VALIDATION_FAILED', limit: 'maxDepth', max: 15 } });
    expect(depth?.message).toMatch(/^Query depth limit of 15 exceeded, found \d+/);

    // GraphQL over HTTP: a refused document is a 400 for clients that accept application/graphql-response+json.
    for (const query of [DEEP_LIST, ALIAS_BOMB, INTROSPECTION_BOMB]) {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json', authorization: `Bearer ${tok}` },
        body: JSON.stringify({ query }),
      });
      expect(res.status, query.slice(0, 40)).toBe(400);
    }

    const syntax = await refusal('{ batchJob(id: "x" { id } }');
    expect(syntax).toMatchObject({ extensions: { code: 'GRAPHQL_PARSE_FAILED' } });
    const syntaxWs = await wsErrors('{ batchJob(id: "x" { id } }');
    expect(syntaxWs[0]?.extensions?.code).toBe('GRAPHQL_PARSE_FAILED');

    const unknownField = await wsErrors('{ nope }');
    expect(unknownField[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
  });
});
