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

/** Sizes of a {@link DocumentCache}: entries per cache, and how long one is kept (ms). Yoga's defaults. */
export const DOCUMENT_CACHE = { max: 1024, ttlMs: 3_600_000 } as const;

/**
 * The caches (see the module doc), their envelop plugin, and what other code may read of
 * them: {@link validDocument}, a document text's parse that validated
 * without errors (the HTTP plan path, src/transport/planned-http.ts, runs
 * such documents without asking the envelop again).
 */
export class DocumentCache {
  private readonly documents: LRUCache<string, DocumentNode>;
  private readonly parseErrors: LRUCache<string, Error>;
  private readonly validations = new WeakMap<GraphQLSchema, WeakMap<DocumentNode, readonly GraphQLError[]>>();
  /** The envelop plugin that fills and uses the caches; put it last (see the module doc). */
  readonly plugin: Plugin;

  constructor(size: { max: number; ttlMs: number } = DOCUMENT_CACHE) {
    this.documents = new LRUCache<string, DocumentNode>({ max: size.max, ttl: size.ttlMs });
    this.parseErrors = new LRUCache<string, Error>({ max: size.max, ttl: size.ttlMs });
    const { documents, parseErrors, validations } = this;
    this.plugin = {
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

  /**
   * The parsed document of `text` if it was parsed and then validated against
   * `schema` with no error (limits included) through this cache's plugin;
   * otherwise undefined (not seen, expired, refused, or not validated yet).
   */
  validDocument(schema: GraphQLSchema, text: string): DocumentNode | undefined {
    const document = this.documents.get(text);
    if (!document) return undefined;
    const errors = this.validations.get(schema)?.get(document);
    return errors && errors.length === 0 ? document : undefined;
  }
}
