/**
 * The in-memory backend's one event store (src/backends/memory-log.ts with
 * its HistoryRing): when a history read says it covers a gap — the rule that
 * decides between a replay and a fresh SNAPSHOT for a resuming subscriber —
 * and that a job is the topic log `job:<id>`, so jobs follow the same rule,
 * publish through the same path and leave with their logs.
 */
import { describe, expect, it } from 'vitest';
import { createMemoryBackend, MemoryEventBus } from '../../src/backends/memory.js';
import { MemoryTopicLogStore } from '../../src/backends/memory-log.js';
import type { BusEvent } from '../../src/backends/types.js';
import { jobTopic, trainingTopic } from '../../src/domain/topics.js';
import { applyProgress, createJob, finishJob, type JobEvent, type JobRecord } from '../../src/domain/job.js';
import { newEpoch } from '../../src/domain/ids.js';

type Ev = BusEvent & { n: number };
const HISTORY = 5;

/** A log store holding `count` events on topic `t` (offsets 1..count), with HISTORY kept. */
async function logWith(count: number) {
  const logs = new MemoryTopicLogStore(new MemoryEventBus(), HISTORY);
  for (let i = 0; i < count; i++) await logs.append<null, Ev>('t', (head) => ({ state: null, events: [{ offset: head.offset + 1, n: head.offset + 1 }] }));
  return logs;
}

describe('memory topic log history: covered iff it holds every event after the offset asked for', () => {
  it('is not covered once the events right after the offset were overwritten (trimmed history)', async () => {
    const logs = await logWith(8); // holds 4..8
    const read = await logs.history<Ev>('t', 2);
    expect(read.covered).toBe(false);
    expect(read.events.map((e) => e.offset)).toEqual([4, 5, 6, 7, 8]);
  });

  it('is covered when the oldest held event is exactly the next one after the offset', async () => {
    const logs = await logWith(8);
    const read = await logs.history<Ev>('t', 3);
    expect(read).toEqual({ covered: true, events: [4, 5, 6, 7, 8].map((n) => ({ offset: n, n })) });
    expect((await logs.history<Ev>('t', 6)).events.map((e) => e.n)).toEqual([7, 8]);
  });

  it('is covered with no events at or past the head, and not covered for a log that does not exist', async () => {
    const logs = await logWith(8);
    expect(await logs.history('t', 8)).toEqual({ events: [], covered: true });
    expect(await logs.history('t', 9)).toEqual({ events: [], covered: true });
    expect(await logs.history('missing', 0)).toEqual({ events: [], covered: false });
  });

  it('covers everything from offset 0 while nothing was overwritten', async () => {
    const logs = await logWith(HISTORY);
    const read = await logs.history<Ev>('t', 0);
    expect(read.covered).toBe(true);
    expect(read.events.map((e) => e.offset)).toEqual([1, 2, 3, 4, 5]);
  });

  it('refuses a commit whose offsets do not follow the head, changing nothing', async () => {
    const logs = await logWith(2);
    await expect(logs.append<null, Ev>('t', () => ({ state: null, events: [{ offset: 4, n: 4 }] }))).rejects.toThrow(/expected 3/);
    expect((await logs.head('t'))!.offset).toBe(2);
  });
});

describe('memory job store on the topic log store', () => {
  const tenant = { institute: 'inst', environment: 'default' };
  let now = 1_700_000_000_000;
  const clock = () => now;

  /** A backend with one job that made `reports` PROGRESS events (offsets 1..reports). */
  async function jobWith(reports: number, retentionSeconds = 60) {
    const backend = createMemoryBackend({ historySize: HISTORY, clock, retentionSeconds });
    const job = createJob({ name: 'j', kind: 'BATCH', total: 100 }, { id: `job-${newEpoch()}`, epoch: newEpoch(), tenant, ownerId: 'u' }, now);
    await backend.store.create(job);
    const published: JobEvent[] = [];
    const off = await backend.bus.subscribe<JobEvent>(jobTopic(job.id), (e) => published.push(e));
    for (let i = 1; i <= reports; i++) {
      now += 1000;
      await backend.store.update(job.id, (j) => applyProgress(j, { completed: i }, now, 100));
    }
    off();
    return { backend, job, published };
  }

  it('keeps a job as the log job:<id>: head = the record, history and publication of its events', async () => {
    const { backend, job, published } = await jobWith(3);
    const head = await backend.logs.head<JobRecord>(jobTopic(job.id));
    const record = (await backend.store.get(job.id))!;
    expect(head).toEqual({ epoch: job.epoch, offset: 3, state: record });
    expect(record.completed).toBe(3);
    expect(published.map((e) => [e.offset, e.type, e.job.completed])).toEqual([
      [1, 'STARTED', 1],
      [2, 'PROGRESS', 2],
      [3, 'PROGRESS', 3],
    ]);
    expect(await backend.store.history(job.id, 0)).toEqual({ events: published, covered: true });
    expect(await backend.logs.history(jobTopic(job.id), 1)).toEqual({ events: published.slice(1), covered: true });
    await backend.close();
  });

  it('applies the same completeness rule to a job: trimmed history is not covered, the exact gap is', async () => {
    const { backend, job } = await jobWith(8); // holds 4..8
    expect((await backend.store.history(job.id, 2)).covered).toBe(false);
    const exact = await backend.store.history(job.id, 3);
    expect(exact.covered).toBe(true);
    expect(exact.events.map((e) => e.offset)).toEqual([4, 5, 6, 7, 8]);
    expect(await backend.store.history(job.id, 8)).toEqual({ events: [], covered: true });
    await backend.close();
  });

  it('removes the job with all its logs (job:<id> included) when its retention ends', async () => {
    const { backend, job } = await jobWith(2, 10);
    await backend.logs.append(trainingTopic(job.id), (h) => ({ state: { a: 1 }, events: [{ offset: h.offset + 1 }] }));
    await backend.store.update(job.id, (j) => finishJob(j, 'COMPLETED', null, now));
    now += 11_000;
    expect(await backend.store.get(job.id)).toBeNull();
    expect(await backend.logs.head(jobTopic(job.id))).toBeNull();
    expect(await backend.logs.head(trainingTopic(job.id))).toBeNull();
    expect(await backend.store.history(job.id, 0)).toEqual({ events: [], covered: false });
    // A log owned by a removed job refuses appends.
    await expect(backend.logs.append(trainingTopic(job.id), (h) => ({ state: {}, events: [{ offset: h.offset + 1 }] }))).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
    await backend.close();
  });
});
