/**
 * The JSON the Redis store writes for values carrying a job's steps (events, change records, job-list updates):
 * made from each step's cached JSON, it must parse to exactly what `JSON.stringify` gives, whatever the text.
 */
import { describe, expect, it } from 'vitest';
import { stringifyWithSteps } from '../../src/backends/step-json.js';
import { updateChange } from '../../src/domain/changes.js';
import { applyProgress, applyStep, createJob, type JobRecord } from '../../src/domain/job.js';

const T0 = 1_700_000_000_000;

describe('stringifyWithSteps', () => {
  it('gives what JSON.stringify gives for events, change records and records, also for text that looks like JSON', () => {
    let job: JobRecord = createJob({ name: 'j "x"', kind: 'BATCH', total: null }, { id: 'j1', epoch: 'ep', tenant: { institute: 'i', environment: 'e' }, ownerId: 'u' }, T0);
    const tricky = ['plain', 'a "quoted" \\ stage', '\u0001steps:', '"steps"', '],"x":[', 'ünïcødé ✓'];
    for (const [i, stage] of tricky.entries()) job = applyProgress(job, { stage, message: stage }, T0 + i * 1000, 100).job;
    const change = applyStep(job, { name: 'plain', status: 'FAILED', error: '"boom"' }, T0 + 10_000);
    for (const value of [change.events[0], updateChange(change.job, ['STAGE']), change.job, { job: change.job, other: [1] }, { steps: [] }, 'x', null]) {
      const json = stringifyWithSteps(value);
      expect(JSON.parse(json)).toEqual(JSON.parse(JSON.stringify(value)));
      // Again: from the cache (the first time only the first step was cached: steps seen once are not kept).
      expect(stringifyWithSteps(value)).toBe(json);
      expect(stringifyWithSteps(value)).toBe(json);
    }
    expect(JSON.parse(stringifyWithSteps(change.events[0])).job.steps.map((s: { name: string }) => s.name)).toEqual(tricky);
  });
});
