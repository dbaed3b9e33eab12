/**
 * The metric history (M4 buckets merged pairwise): bounded memory, and reads
 * that span the whole series and keep its extremes.
 */
import { describe, expect, it } from 'vitest';
import { addPoints, emptySeries, HISTORY_LIMITS, readSeries, type MetricPoint } from '../../src/domain/metric-history.js';

/** A noisy decaying loss curve with a known dip and spike, `n` steps, deterministic. */
function lossCurve(n: number, dipAt: number, spikeAt: number): MetricPoint[] {
  let seed = 7;
  const noise = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5) * 0.1;
  return Array.from({ length: n }, (_, i) => {
    const step = i + 1;
    let value = 2 / Math.sqrt(step) + 0.2 + noise();
    if (step === dipAt) value = -1;
    if (step === spikeAt) value = 50;
    return { step, value, timestamp: 1_000_000 + step * 10 };
  });
}

describe('metric history', () => {
  it('keeps a 100,000-step series in at most 128 buckets and reads it back spanning first to last with both extremes', () => {
    const points = lossCurve(100_000, 73_123, 4_567);
    let series = emptySeries();
    // Fed in batches, as reports arrive.
    for (let i = 0; i < points.length; i += 997) series = addPoints(series, points.slice(i, i + 997));
    expect(series.count).toBe(100_000);
    expect(series.buckets.length).toBeLessThanOrEqual(HISTORY_LIMITS.bucketsPerSeries);
    expect(JSON.stringify(series).length).toBeLessThan(40_000);
    for (const maxPoints of [4, 5, 50, 500, 2000]) {
      const read = readSeries(series, maxPoints);
      expect(read.length).toBeLessThanOrEqual(maxPoints);
      expect(read[0]).toEqual(points[0]);
      expect(read[read.length - 1]).toEqual(points[points.length - 1]);
      expect(read).toContainEqual(points[73_122]);
      expect(read).toContainEqual(points[4_566]);
      const steps = read.map((p) => p.step);
      expect(steps).toEqual([...steps].sort((a, b) => a - b));
    }
    // 500 points of a 100,000-step curve cover it evenly: no gap wider than a few buckets.
    const read = readSeries(series, 500);
    expect(read.length).toBeGreaterThan(250);
    const gaps = read.slice(1).map((p, i) => p.step - read[i]!.step);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(2 * series.width);
  });

  it('returns every point while they fit', () => {
    const points = lossCurve(40, 10, 20);
    const series = addPoints(emptySeries(), points);
    expect(readSeries(series, 500)).toEqual(points);
  });

  it('is the same whether fed one by one or in one batch, and does not change its input', () => {
    const points = lossCurve(3000, 100, 2000);
    let oneByOne = emptySeries();
    for (const p of points) oneByOne = addPoints(oneByOne, [p]);
    const empty = emptySeries();
    const batch = addPoints(empty, points);
    expect(batch).toEqual(oneByOne);
    expect(empty).toEqual(emptySeries());
  });

  it('keeps ties and a constant series without duplicates', () => {
    const flat = Array.from({ length: 1000 }, (_, i) => ({ step: i + 1, value: 3, timestamp: i }));
    const read = readSeries(addPoints(emptySeries(), flat), 10);
    expect(read.length).toBeLessThanOrEqual(10);
    expect(read[0]).toEqual(flat[0]);
    expect(read[read.length - 1]).toEqual(flat[999]);
    expect(new Set(read.map((p) => p.step)).size).toBe(read.length);
  });

  it('refuses a read budget below 4 or above 2000', () => {
    const series = addPoints(emptySeries(), lossCurve(10, 1, 2));
    for (const bad of [3, 0, -1, 2001, 1.5]) expect(() => readSeries(series, bad)).toThrow(/maxPoints/);
    expect(readSeries(emptySeries(), 4)).toEqual([]);
  });
});
