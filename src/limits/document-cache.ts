/**
 * Parse and validation results, cached: an envelop plugin that replaces
 * Yoga's `parserAndValidationCache` and keeps its behaviour — documents and
 * parse errors by document text (LRU, 1024 each, entries kept an hour),
 * validation results by parsed document (a WeakMap, so they go with it) —
 * minus one per-request cost: Yoga keys validation results by the names of
 * the validation rules, joined, on every request (about 30 function-name
 * reads and a string join), to tell rule sets apart. runwatch validates
 * every document with one rule set (graphql-js's, plus the ones
 * src/limits/document-limits.ts adds unconditionally on every request), so
 * results are keyed by schema and document only.
 *
 * Limits stay enforced for every document: a cached parse error is thrown
 * again (the same refusal, code and all) and a cached validation result
 * carries the refusals the limit rules reported the first time; only the
 * work of finding them again is skipped. Put it after every plugin that
 * changes parse or validation results (it stores what they made of them),
 * as Yoga places its own cache.
 * Borrowed from graphql-yoga 5's `useParserAndValidationCache`
 * (plugins/use-parser-and-validation-cache.js, MIT).
 */
import type { DocumentNode, GraphQLError, GraphQLSchema } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { LRUCache } from 'lru-cache';

/** Sizes of {@link useDocumentCache}: entries per cache, and how long one is kept (ms). Yoga's defaults. */
export const DOCUMENT_CACHE = { max: 1024, ttlMs: 3_600_000 } as const;

/** Builds the plugin; see the module doc. The validation rules must not vary between requests. */
export function useDocumentCache(size: { max: number; ttlMs: number } = DOCUMENT_CACHE): Plugin {
  const documents = new LRUCache<string, DocumentNode>({ max: size.max, ttl: size.ttlMs });
  const parseErrors = new LRUCache<string, Error>({ max: size.max, ttl: size.ttlMs });
  const validations = new WeakMap<GraphQLSchema, WeakMap<DocumentNode, readonly GraphQLError[]>>();
  return {
    onParse({ params, setParsedDocument }) {
      const text = typeof params.source === 'string' ? params.source : params.source.body;
      const document = documents.get(text);
      if (document) {
        setParsedDocument(document);
        return;
      }
      const error = parseErrors.get(text);
      if (error) throw error;
      return ({ result }) => {
        if (result instanceof Error) parseErrors.set(text, result);
        else if (result != null) documents.set(text, result);
      };
    },
    onValidate({ params: { schema, documentAST }, setResult }) {
      if (schema == null) return;
      let bySchema = validations.get(schema);
      if (!bySchema) validations.set(schema, (bySchema = new WeakMap()));
      const cached = bySchema.get(documentAST);
      if (cached) {
        setResult(cached as GraphQLError[]);
        return;
      }
      const store = bySchema;
      return ({ result }) => {
        if (result != null) store.set(documentAST, result as readonly GraphQLError[]);
      };
    },
  };
}
