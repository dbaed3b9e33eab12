/**
 * Redis key layout (backends/redis-keys.ts): everything one commit touches
 * shares a hash slot, and partitions spread evenly over the slot space.
 */
import calculateSlot from 'cluster-key-slot';
import { describe, expect, it } from 'vitest';
import { partitionTag, RedisKeyspace } from '../../src/backends/redis-keys.js';
import {
  activityBillingTopic,
  activityEnvTopic,
  activityInstTopic,
  activityStateTopic,
  activityUserTopic,
  budgetTopic,
  jobListTopic,
  jobOwnedTopics,
  jobTopic,
  placementOf,
} from '../../src/domain/topics.js';

const slot = (key: string) => calculateSlot(key);

describe('Redis key layout', () => {
  it.each([4, 16, 64, 1024])('puts the %i partitions in evenly spaced slots: partition p in the p-th slice of 16384', (partitions) => {
    const width = 16384 / partitions;
    for (let p = 0; p < partitions; p++) {
      const s = slot(`{${partitionTag(p, partitions)}}`);
      expect(s).toBeGreaterThanOrEqual(Math.floor(p * width));
      expect(s).toBeLessThan(Math.floor((p + 1) * width));
    }
  });

  it('keeps a job, its history, its own topic logs, its channels, its change-log partition and retention set in one slot', () => {
    const keys = new RedisKeyspace(16);
    for (const id of ['j_1', 'j_0mxdwsen40017d71baa12', 'x:y{z}']) {
      const s = slot(keys.job(id));
      const together = [
        keys.jobEvents(id),
        keys.channel(jobTopic(id)),
        keys.changesOf(id),
        keys.retentionOf(id),
        ...jobOwnedTopics(id).flatMap((t) => [keys.logHead(t), keys.logEvents(t), keys.channel(t)]),
      ];
      for (const key of together) expect(slot(key), key).toBe(s);
    }
  });

  it("keeps a tenant's index and idempotency keys in one slot, and an institute's activity state with every notice its commits send", () => {
    const keys = new RedisKeyspace(4);
    const t = { institute: 'acme:{x}', environment: 'prod' };
    expect(slot(keys.idem(t, 'nightly'))).toBe(slot(keys.tenantJobs(t)));
    const state = slot(keys.logHead(activityStateTopic(t.institute)));
    for (const topic of [
      activityEnvTopic(t.institute, t.environment),
      activityInstTopic(t.institute),
      activityUserTopic(t.institute, t.environment, 'u1'),
      activityBillingTopic(t.institute, t.environment),
    ])
      expect(slot(keys.channel(topic)), topic).toBe(state);
    expect(slot(keys.logHead(budgetTopic(t)))).toBe(state);
  });

  it('places job topics with their job, activity and budgets with their institute, other topics alone', () => {
    expect(placementOf(jobTopic('j1'))).toEqual({ job: 'j1' });
    expect(placementOf(`training:j1`)).toEqual({ job: 'j1' });
    expect(placementOf(activityStateTopic('env'))).toEqual({ account: 'env' });
    expect(placementOf(activityInstTopic('inst'))).toEqual({ account: 'inst' });
    expect(placementOf(budgetTopic({ institute: 'i', environment: 'e' }))).toEqual({ account: 'i' });
    expect(placementOf(jobListTopic({ institute: 'i', environment: 'e' }))).toEqual({ own: true });
  });
});
