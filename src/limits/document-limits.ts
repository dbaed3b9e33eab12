/**
 * Document-level limits, shared by HTTP, SSE and graphql-ws (all three run
 * through Yoga's envelop), each refusing with an `extensions.code` and a
 * message that names the limit and its number:
 *
 * | stage | limit | code |
 * | --- | --- | --- |
 * | before parsing | nesting of `{ [ (` deeper than `maxNesting` (a cheap scan; graphql-js's recursive parser would overflow the stack first) | GRAPHQL_PARSE_FAILED |
 * | parsing | more than `maxTokens` tokens (graphql-armor) | GRAPHQL_PARSE_FAILED |
 * | parsing | any syntax error | GRAPHQL_PARSE_FAILED |
 * | validation | field depth over `maxDepth`, not counting introspection (`__schema`, `__type`) | GRAPHQL_VALIDATION_FAILED |
 * | validation | depth inside `__schema` / `__type` over `maxIntrospectionDepth` (graphql-js's standard introspection query fits) | GRAPHQL_VALIDATION_FAILED |
 * | validation | more than `maxSchemaFields` `__schema` fields in one operation | GRAPHQL_VALIDATION_FAILED |
 * | validation | aliases, cost, directives (graphql-armor); introspection list nesting (graphql-js `MaxIntrospectionDepthRule`) | GRAPHQL_VALIDATION_FAILED |
 *
 * Refused errors carry `extensions.limit` (the limit's name), and
 * `extensions.max` (its number) where there is one. Nothing is executed.
 */
import { EnvelopArmor } from '@escape.tech/graphql-armor';
import {
  GraphQLError,
  Kind,
  type ASTNode,
  type FragmentDefinitionNode,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';

/** The numbers of {@link useDocumentLimits}. */
export interface DocumentLimits {
  /** Deepest nesting of `{`, `[` and `(` in the document text (counted before parsing). */
  maxNesting: number;
  /** Most lexical tokens in a document. */
  maxTokens: number;
  /** Deepest field nesting of an operation, introspection fields not counted. */
  maxDepth: number;
  /** Deepest field nesting inside one `__schema` or `__type` field (that field counts as 1). */
  maxIntrospectionDepth: number;
  /** Most `__schema` fields in one operation (fragments included). */
  maxSchemaFields: number;
  /** Most aliases in one operation. */
  maxAliases: number;
  /** Highest graphql-armor cost of an operation (introspection under `__schema` not counted). */
  maxCost: number;
  /** Most directives in one operation. */
  maxDirectives: number;
}

/** A refusal: the message names the limit and its number. */
export function limitError(code: 'GRAPHQL_PARSE_FAILED' | 'GRAPHQL_VALIDATION_FAILED', limit: string, message: string, max?: number, nodes?: ASTNode | readonly ASTNode[]): GraphQLError {
  return new GraphQLError(message, { ...(nodes ? { nodes } : {}), extensions: { code, limit, ...(max !== undefined ? { max } : {}) } });
}

/**
 * The deepest nesting of `{`, `[` and `(` in a GraphQL document, skipping
 * strings, block strings and comments; stops counting once past `stopAt`.
 * Linear in the text, no recursion.
 */
export function documentNesting(source: string, stopAt = Infinity): number {
  let depth = 0;
  let deepest = 0;
  const n = source.length;
  for (let i = 0; i < n; i++) {
    const c = source.charCodeAt(i);
    if (c === 0x23 /* # */) {
      while (i < n && source.charCodeAt(i) !== 0x0a && source.charCodeAt(i) !== 0x0d) i++;
    } else if (c === 0x22 /* " */) {
      if (source.startsWith('"""', i)) {
        i += 3;
        while (i < n && !source.startsWith('"""', i)) i += source.startsWith('\\"""', i) ? 4 : 1;
        i += 2;
      } else {
        i++;
        while (i < n && source.charCodeAt(i) !== 0x22 && source.charCodeAt(i) !== 0x0a) i += source.charCodeAt(i) === 0x5c ? 2 : 1;
      }
    } else if (c === 0x7b || c === 0x5b || c === 0x28 /* { [ ( */) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > stopAt) return deepest;
      }
    } else if (c === 0x7d || c === 0x5d || c === 0x29 /* } ] ) */) {
      depth = Math.max(0, depth - 1);
    }
  }
  return deepest;
}

const INTROSPECTION_ROOTS = new Set(['__schema', '__type']);

/** What a selection set holds, relative to where it starts. */
interface Shape {
  /** Deepest chain of fields outside introspection. */
  depth: number;
  /** Deepest chain of fields from an introspection root (`__schema` / `__type` counts 1) down. */
  introspectionDepth: number;
  /** `__schema` fields, capped at a large number (fragments may repeat). */
  schemaFields: number;
}

const NONE: Shape = { depth: 0, introspectionDepth: 0, schemaFields: 0 };

/**
 * Measures a selection set with fragments expanded in place (a spread adds no
 * depth). Each fragment is measured once per mode and remembered, so the work
 * is linear in the document even when fragments spread others many times over;
 * a fragment cycle (refused by graphql-js anyway) counts as empty.
 */
function measure(context: ValidationContext, set: SelectionSetNode, inIntrospection: boolean, memo: Map<string, Shape>, onPath: Set<string>): Shape {
  let depth = 0;
  let introspectionDepth = 0;
  let schemaFields = 0;
  const add = (shape: Shape) => {
    depth = Math.max(depth, shape.depth);
    introspectionDepth = Math.max(introspectionDepth, shape.introspectionDepth);
    schemaFields = Math.min(1_000_000, schemaFields + shape.schemaFields);
  };
  for (const selection of set.selections) {
    if (selection.kind === Kind.FIELD) {
      const entering = !inIntrospection && INTROSPECTION_ROOTS.has(selection.name.value);
      const inner = selection.selectionSet ? measure(context, selection.selectionSet, inIntrospection || entering, memo, onPath) : NONE;
      if (inIntrospection || entering) {
        add({ depth: 0, introspectionDepth: 1 + inner.introspectionDepth, schemaFields: inner.schemaFields + (entering && selection.name.value === '__schema' ? 1 : 0) });
      } else {
        add({ depth: 1 + inner.depth, introspectionDepth: inner.introspectionDepth, schemaFields: inner.schemaFields });
      }
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      add(measure(context, selection.selectionSet, inIntrospection, memo, onPath));
    } else {
      const name = selection.name.value;
      const key = `${inIntrospection ? 'i' : 'o'}:${name}`;
      let shape = memo.get(key);
      if (shape === undefined) {
        const fragment: FragmentDefinitionNode | null | undefined = context.getFragment(name);
        if (!fragment || onPath.has(key)) continue;
        onPath.add(key);
        shape = measure(context, fragment.selectionSet, inIntrospection, memo, onPath);
        onPath.delete(key);
        memo.set(key, shape);
      }
      add(shape);
    }
  }
  return { depth, introspectionDepth, schemaFields };
}

/**
 * A validation rule: operation depth without introspection ≤ `maxDepth`,
 * depth inside `__schema` / `__type` ≤ `maxIntrospectionDepth`, at most
 * `maxSchemaFields` `__schema` fields. Reports each excess
 * (GRAPHQL_VALIDATION_FAILED) with the number found.
 */
export function depthAndIntrospectionRule(limits: Pick<DocumentLimits, 'maxDepth' | 'maxIntrospectionDepth' | 'maxSchemaFields'>): ValidationRule {
  return (context) => {
    const memo = new Map<string, Shape>();
    return {
      OperationDefinition(operation: OperationDefinitionNode) {
        const { depth, introspectionDepth, schemaFields } = measure(context, operation.selectionSet, false, memo, new Set());
        if (depth > limits.maxDepth) {
          context.reportError(
            limitError('GRAPHQL_VALIDATION_FAILED', 'maxDepth', `Query depth limit of ${limits.maxDepth} exceeded, found ${depth} (introspection not counted).`, limits.maxDepth, operation),
          );
        }
        if (introspectionDepth > limits.maxIntrospectionDepth) {
          context.reportError(
            limitError('GRAPHQL_VALIDATION_FAILED', 'maxIntrospectionDepth', `Introspection depth limit of ${limits.maxIntrospectionDepth} exceeded, found ${introspectionDepth}.`, limits.maxIntrospectionDepth, operation),
          );
        }
        if (schemaFields > limits.maxSchemaFields) {
          context.reportError(
            limitError('GRAPHQL_VALIDATION_FAILED', 'maxSchemaFields', `At most ${limits.maxSchemaFields} __schema field per operation, found ${schemaFields}.`, limits.maxSchemaFields, operation),
          );
        }
      },
    };
  };
}

/** Gives an error without a code the stage's code (graphql-ws gets no codes from Yoga). */
function withCode(error: GraphQLError, code: string): GraphQLError {
  if (typeof error.extensions?.code === 'string') return error;
  return new GraphQLError(error.message, { nodes: error.nodes, source: error.source, positions: error.positions, path: error.path, originalError: error.originalError, extensions: { ...error.extensions, code } });
}

const isGraphQLErrorLike = (e: unknown): e is GraphQLError => e instanceof GraphQLError || (e instanceof Error && e.name === 'GraphQLError');

/** graphql-armor's refusals say "Syntax Error: …" for every limit; say which limit instead, with its code. */
function armorRefusal(limit: keyof DocumentLimits, max: number) {
  return (context: ValidationContext | null, error: GraphQLError) => {
    context?.reportError(limitError('GRAPHQL_VALIDATION_FAILED', limit, error.message.replace(/^Syntax Error: /, ''), max));
  };
}

/**
 * The envelop plugins that enforce {@link DocumentLimits}: graphql-armor for
 * tokens, aliases, cost and directives (field suggestions blocked too), our
 * rule for depth and introspection, a pre-parse nesting scan, and codes on
 * every parse and validation error.
 */
export function useDocumentLimits(limits: DocumentLimits): Plugin<any>[] {
  const armor = new EnvelopArmor({
    maxDepth: { enabled: false },
    maxTokens: { n: limits.maxTokens },
    maxAliases: { n: limits.maxAliases, propagateOnRejection: false, onReject: [armorRefusal('maxAliases', limits.maxAliases)] },
    costLimit: { maxCost: limits.maxCost, propagateOnRejection: false, onReject: [armorRefusal('maxCost', limits.maxCost)] },
    maxDirectives: { n: limits.maxDirectives, propagateOnRejection: false, onReject: [armorRefusal('maxDirectives', limits.maxDirectives)] },
    blockFieldSuggestion: { enabled: true },
  });
  const depthRule = depthAndIntrospectionRule(limits);
  const codes: Plugin<any> = {
    onParse: ({ parseFn, setParseFn }) => {
      setParseFn((source, options) => {
        const text = typeof source === 'string' ? source : source.body;
        const nesting = documentNesting(text, limits.maxNesting);
        if (nesting > limits.maxNesting) {
          throw limitError('GRAPHQL_PARSE_FAILED', 'maxNesting', `Nesting limit of ${limits.maxNesting} exceeded: brackets, braces or parentheses nested more than ${limits.maxNesting} deep.`, limits.maxNesting);
        }
        return parseFn(source, options);
      });
      return ({ result, replaceParseResult }) => {
        if (!(result instanceof Error)) return;
        if (!isGraphQLErrorLike(result)) {
          // Not a syntax error (a bug, or the stack): never shown as it is.
          replaceParseResult(limitError('GRAPHQL_PARSE_FAILED', 'parser', 'The document could not be parsed.'));
          return;
        }
        const token = /^Syntax Error: Token limit of (\d+) exceeded/.exec(result.message);
        if (token) {
          const refusal = limitError('GRAPHQL_PARSE_FAILED', 'maxTokens', `Token limit of ${token[1]} exceeded.`, limits.maxTokens);
          // Keep what Yoga added for HTTP (status 400 under application/graphql-response+json).
          if (result.extensions?.http) (refusal.extensions as Record<string, unknown>).http = result.extensions.http;
          replaceParseResult(refusal);
        } else replaceParseResult(withCode(result, 'GRAPHQL_PARSE_FAILED'));
      };
    },
    onValidate: ({ addValidationRule }) => {
      addValidationRule(depthRule);
      return ({ valid, result, setResult }) => {
        if (!valid) setResult(result.map((e) => withCode(e, 'GRAPHQL_VALIDATION_FAILED')));
      };
    },
  };
  return [...armor.protect().plugins, codes];
}

/**
 * runwatch's numbers. The standard introspection query (graphql-js
 * `getIntrospectionQuery` with every option on, which GraphiQL and codegen
 * send) has introspection depth 15 (fragments expanded), nesting 10 and 184
 * tokens; the limits leave it room to grow by a few `ofType` levels.
 */
export const DOCUMENT_LIMITS: DocumentLimits = {
  maxNesting: 64,
  maxTokens: 2_000,
  maxDepth: 15,
  maxIntrospectionDepth: 20,
  maxSchemaFields: 1,
  maxAliases: 15,
  maxCost: 5_000,
  maxDirectives: 20,
};
