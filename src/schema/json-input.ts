/**
 * Bounded JSON input: the `JSON` scalar and a guard on raw variables, so no
 * client value reaches a recursive walk (graphql-js, JSON.stringify in size
 * checks and fingerprints, Redis serialization) nested deep enough to
 * overflow the stack. Both checks are iterative.
 *
 * - `JSON` scalar values (job `metadata`, command `args`) may nest at most
 *   {@link MAX_JSON_DEPTH} levels of arrays and objects, from variables
 *   (parseValue) or from literals in the query text (parseLiteral);
 * - each operation variable may nest at most {@link MAX_VARIABLE_DEPTH} levels
 *   (room for input objects and lists around a JSON value); deeper is refused
 *   before execution starts.
 * Both refusals are BAD_USER_INPUT with a message naming the limit; nothing changes.
 */
import { GraphQLError, GraphQLScalarType, Kind, type ValueNode } from 'graphql';
import { JSONResolver } from 'graphql-scalars';
import type { Plugin } from 'graphql-yoga';

/** Most levels of nested arrays/objects in one JSON scalar value (`{}` is 1, `{"a":[1]}` is 2). */
export const MAX_JSON_DEPTH = 64;
/** Most levels of nested arrays/objects in one operation variable's value. */
export const MAX_VARIABLE_DEPTH = MAX_JSON_DEPTH + 8;

/**
 * Levels of nested arrays and objects in `value`, counting no further than
 * `limit + 1` (so a hostile value costs at most its size, never the stack).
 * Scalars are 0.
 */
export function jsonDepth(value: unknown, limit: number): number {
  if (typeof value !== 'object' || value === null) return 0;
  let deepest = 0;
  // Two parallel stacks (no per-node allocation): containers and their levels.
  const nodes: object[] = [value];
  const levels: number[] = [1];
  while (nodes.length > 0) {
    const current = nodes.pop()! as Record<string, unknown>;
    const level = levels.pop()!;
    if (level > deepest) {
      deepest = level;
      if (level > limit) return level;
    }
    if (Array.isArray(current)) {
      for (let i = 0; i < current.length; i++) {
        const child: unknown = current[i];
        if (typeof child === 'object' && child !== null) {
          nodes.push(child);
          levels.push(level + 1);
        }
      }
    } else {
      for (const key in current) {
        const child = current[key];
        if (typeof child === 'object' && child !== null) {
          nodes.push(child);
          levels.push(level + 1);
        }
      }
    }
  }
  return deepest;
}

/** Levels of nested list and object literals in a value node (variables inside resolved from `variables`). */
function literalDepth(node: ValueNode, variables: Record<string, unknown> | null | undefined, limit: number): number {
  let deepest = 0;
  const stack: [ValueNode, number][] = [[node, 0]];
  while (stack.length > 0) {
    const [current, depth] = stack.pop()!;
    if (current.kind === Kind.VARIABLE) {
      const total = depth + jsonDepth(variables?.[current.name.value], limit - depth);
      if (total > deepest) deepest = total;
      if (deepest > limit) return deepest;
      continue;
    }
    if (current.kind !== Kind.LIST && current.kind !== Kind.OBJECT) continue;
    const level = depth + 1;
    if (level > deepest) deepest = level;
    if (level > limit) return level;
    if (current.kind === Kind.LIST) for (const child of current.values) stack.push([child, level]);
    else for (const field of current.fields) stack.push([field.value, level]);
  }
  return deepest;
}

const tooDeep = (what: string, limit: number) =>
  new GraphQLError(`${what} is nested deeper than ${limit} levels of arrays and objects (the limit); flatten it`, {
    extensions: { code: 'BAD_USER_INPUT' },
  });

/** The `JSON` scalar: graphql-scalars' JSON with a depth bound on input ({@link MAX_JSON_DEPTH}; deeper is BAD_USER_INPUT). */
export const BoundedJSON = new GraphQLScalarType({
  name: 'JSON',
  description: `${JSONResolver.description ?? 'A JSON value.'} Input may nest at most ${MAX_JSON_DEPTH} levels of arrays and objects.`,
  specifiedByURL: JSONResolver.specifiedByURL,
  serialize: JSONResolver.serialize,
  parseValue: (value: unknown): unknown => {
    if (jsonDepth(value, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) throw tooDeep('JSON value', MAX_JSON_DEPTH);
    return JSONResolver.parseValue(value);
  },
  parseLiteral: (node: ValueNode, variables?: Record<string, unknown> | null): unknown => {
    if (literalDepth(node, variables, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) throw tooDeep('JSON value', MAX_JSON_DEPTH);
    return JSONResolver.parseLiteral(node, variables);
  },
});

/** The first variable nested deeper than {@link MAX_VARIABLE_DEPTH}, or null. */
function tooDeepVariable(variables: unknown): string | null {
  if (typeof variables !== 'object' || variables === null) return null;
  for (const [name, value] of Object.entries(variables)) {
    if (jsonDepth(value, MAX_VARIABLE_DEPTH) > MAX_VARIABLE_DEPTH) return name;
  }
  return null;
}

/**
 * Envelop plugin: refuses an operation whose variables nest deeper than
 * {@link MAX_VARIABLE_DEPTH} with BAD_USER_INPUT before it executes (HTTP, SSE
 * and graphql-ws alike), so nothing downstream walks them recursively.
 */
export function useVariableDepthLimit(): Plugin {
  const refuse = (name: string) => ({ errors: [tooDeep(`variable $${name}`, MAX_VARIABLE_DEPTH)] });
  return {
    onExecute({ args, setResultAndStopExecution }) {
      const name = tooDeepVariable(args.variableValues);
      if (name !== null) setResultAndStopExecution(refuse(name));
    },
    onSubscribe({ args, setResultAndStopExecution }) {
      const name = tooDeepVariable(args.variableValues);
      if (name !== null) setResultAndStopExecution(refuse(name));
    },
  };
}
