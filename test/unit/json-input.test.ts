/**
 * The depth bound on JSON input, walked without recursion: values a client
 * sends as variables and literals in the query text, with variables inside literals.
 */
import { parseValue } from 'graphql';
import { describe, expect, it } from 'vitest';
import { BoundedJSON, jsonDepth, MAX_JSON_DEPTH } from '../../src/schema/json-input.js';

const nested = (depth: number): unknown => {
  let value: unknown = [];
  for (let i = 1; i < depth; i++) value = [value];
  return value;
};

describe('JSON input depth', () => {
  it('counts levels of arrays and objects, scalars being 0', () => {
    expect(jsonDepth(3, 64)).toBe(0);
    expect(jsonDepth(null, 64)).toBe(0);
    expect(jsonDepth({}, 64)).toBe(1);
    expect(jsonDepth({ a: [1, { b: [] }], c: 'x' }, 64)).toBe(4);
  });

  it('stops one level past the limit, however deep the value (no stack overflow at 200,000 levels)', () => {
    expect(jsonDepth(nested(200_000), 64)).toBe(65);
  });

  it('accepts values at the limit and refuses deeper ones as BAD_USER_INPUT, from variables and from literals', () => {
    expect(BoundedJSON.parseValue(nested(MAX_JSON_DEPTH))).toEqual(nested(MAX_JSON_DEPTH));
    expect(() => BoundedJSON.parseValue(nested(MAX_JSON_DEPTH + 1))).toThrow(/nested deeper than 64 levels/);
    const literal = (depth: number) => parseValue(`${'['.repeat(depth)}${']'.repeat(depth)}`);
    expect(BoundedJSON.parseLiteral(literal(MAX_JSON_DEPTH), {})).toEqual(nested(MAX_JSON_DEPTH));
    try {
      BoundedJSON.parseLiteral(literal(MAX_JSON_DEPTH + 1), {});
      expect.unreachable();
    } catch (error) {
      expect((error as { extensions?: { code?: string } }).extensions?.code).toBe('BAD_USER_INPUT');
    }
  });

  it('counts a variable inside a literal at the depth where it stands', () => {
    const node = parseValue('{ a: [$v] }');
    expect(() => BoundedJSON.parseLiteral(node, { v: nested(MAX_JSON_DEPTH - 2) })).not.toThrow();
    expect(() => BoundedJSON.parseLiteral(node, { v: nested(MAX_JSON_DEPTH - 1) })).toThrow(/64 levels/);
  });
});
