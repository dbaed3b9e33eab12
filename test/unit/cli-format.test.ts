/**
 * The CLI's number formats (clients/typescript/src/cli/format.ts), which the Python client copies
 * (clients/python/src/runwatch/format.py): what a person reads in `runwatch watch` and `runwatch jobs`.
 */
import { describe, expect, it } from 'vitest';
import { formatDuration, formatPercent, formatRate } from '../../clients/typescript/src/cli/format.js';

describe('formatRate', () => {
  it('shows three significant digits without trailing zeros, whole numbers from 100, k from 10,000', () => {
    expect(formatRate(9.91)).toBe('9.91/s');
    expect(formatRate(1)).toBe('1/s');
    expect(formatRate(10)).toBe('10/s');
    expect(formatRate(12.34)).toBe('12.3/s');
    expect(formatRate(20.5)).toBe('20.5/s');
    expect(formatRate(150.4)).toBe('150/s');
    expect(formatRate(12_345)).toBe('12.3k/s');
    expect(formatRate(null)).toBe('-');
  });

  it('a rate just under 100 that rounds up reads 100/s, not 1/s', () => {
    expect(formatRate(99.96)).toBe('100/s');
    expect(formatRate(99.999)).toBe('100/s');
  });
});

describe('formatPercent and formatDuration', () => {
  it('rounds percent down and formats durations in s, m and h', () => {
    expect(formatPercent(99.99)).toBe('99%');
    expect(formatDuration(65)).toBe('1m 05s');
    expect(formatDuration(7620)).toBe('2h 07m');
  });
});
