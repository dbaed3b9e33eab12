/**
 * Sliding-window rate and ETA with a fake clock.
 */
import { describe, expect, it } from 'vitest';
import { applyProgress, createJob, viewJob } from '../../src/domain/job.js';
import { addRateSample, etaSeconds, MAX_RATE_SAMPLES, RATE_WINDOW_MS, rateAt, type RateSample } from '../../src/domain/rate.js';

const T0 = 1_700_000_000_000;

describe('rate over a sliding window', () => {
  it('is unknown with fewer than two samples', () => {
    expect(rateAt([], T0)).toBeNull();
    expect(rateAt([[T0, 10]], T0 + 1000)).toBeNull();
  });

  it('measures items per second at a steady pace', () => {
    let samples: RateSample[] = [];
    for (let s = 0; s <= 20; s++) samples = addRateSample(samples, T0 + s * 1000, s * 50);
    expect(rateAt(samples, T0 + 20_000)).toBeCloseTo(50, 5);
  });

  it('falls during a stall instead of freezing, reaching 0 once the window holds no progress', () => {
    let samples: RateSample[] = [];
    for (let s = 0; s <= 10; s++) samples = addRateSample(samples, T0 + s * 1000, s * 100);
    const atStall = rateAt(samples, T0 + 10_000)!;
    const later = rateAt(samples, T0 + 20_000)!;
    const muchLater = rateAt(samples, T0 + 10_000 + RATE_WINDOW_MS + 1)!;
    expect(atStall).toBeCloseTo(100, 5);
    expect(later).toBeLessThan(atStall);
    expect(later).toBeGreaterThan(0);
    expect(muchLater).toBe(0);
  });

  it('keeps a bounded number of samples however often it is fed', () => {
    let samples: RateSample[] = [];
    for (let i = 0; i < 10_000; i++) samples = addRateSample(samples, T0 + i * 10, i);
    expect(samples.length).toBeLessThanOrEqual(MAX_RATE_SAMPLES);
    expect(rateAt(samples, T0 + 9_999 * 10)).toBeCloseTo(100, 0);
  });
});

describe('ETA', () => {
  it('is remaining / rate, and null while unknown or stalled', () => {
    expect(etaSeconds(100, 10)).toBe(10);
    expect(etaSeconds(null, 10)).toBeNull();
    expect(etaSeconds(100, null)).toBeNull();
    expect(etaSeconds(100, 0)).toBeNull();
  });

  it('comes out of a job view with the clock it is viewed at', () => {
    const tenant = { institute: 'i', environment: 'e' };
    let job = createJob({ name: 'n', kind: 'BATCH', total: 1000 }, { id: 'j', epoch: 'e', tenant, ownerId: 'u' }, T0);
    for (let s = 0; s <= 10; s++) job = applyProgress(job, { completed: s * 10 }, T0 + s * 1000, 100).job;
    const view = viewJob(job, T0 + 10_000);
    expect(view.rate).toBeCloseTo(10, 5);
    expect(view.etaSeconds).toBeCloseTo(90, 5);
    const stalled = viewJob(job, T0 + 10_000 + RATE_WINDOW_MS + 1);
    expect(stalled.rate).toBe(0);
    expect(stalled.etaSeconds).toBeNull();
  });
});
