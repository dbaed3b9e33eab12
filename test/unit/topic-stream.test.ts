/**
 * The one resumable stream (src/delivery/topic-stream.ts) and every stream
 * kind built on it (runProgress, trainingEvents, trainingCommands, activity),
 * in-process on the in-memory backend: replay after a cursor, fresh start,
 * dedupe of events that arrive while the head is read, conflation of a
 * lagging consumer's queue, overflow (slow consumer dropped), and release of
 * the bus subscription exactly once on every path.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Viewer } from '../../src/auth/tokens.js';
import { createMemoryBackend } from '../../src/backends/memory.js';
import type { Backend, BusEvent, EventBus } from '../../src/backends/types.js';
import { openTopicStream, StreamRegistry, type LiveSource, type TopicStreamSpec } from '../../src/delivery/topic-stream.js';
import { DomainError } from '../../src/domain/errors.js';
import { ActivityService } from '../../src/services/activity.js';
import { CommandService } from '../../src/services/commands.js';
import { JobService } from '../../src/services/jobs.js';
import { createInfra } from '../../src/delivery/job-writer.js';
import type { MemoryChangeFeed } from '../../src/backends/memory-changes.js';
import { TrainingService } from '../../src/services/training.js';
import { testStreamOptions, type Ev } from '../helpers/live-stream-options.js';
import type { TrainingEventInput } from '../../src/domain/training.js';
import { MemoryEventBus } from '../../src/backends/memory.js';

/** Bus wrapper counting how often each subscription's release is called (exactly once is right; the fan-out's own is idempotent). */
function countingBus(bus: EventBus) {
  const releases: number[] = [];
  const counted: EventBus = {
    subscribe: async (topic, listener) => {
      const unsubscribe = await bus.subscribe(topic, listener);
      const i = releases.push(0) - 1;
      return () => {
        releases[i]!++;
        unsubscribe();
      };
    },
    topicCount: () => bus.topicCount(),
    onGap: (handler) => bus.onGap(handler),
    close: () => bus.close(),
  };
  return { bus: counted, releases };
}

/** Expects every subscription made so far to have been released exactly once, and no topic to be held. */
function expectAllReleasedOnce(releases: number[], bus: EventBus) {
  expect(releases.length).toBeGreaterThan(0);
  expect(releases).toEqual(releases.map(() => 1));
  expect(bus.topicCount()).toBe(0);
}

const viewer: Viewer = {
  userId: 'u1',
  tenant: { institute: 'inst', environment: 'default' },
  scopes: new Set(['jobs:read', 'jobs:write', 'jobs:control', 'activity:read']),
  expiresAt: null,
  jobId: null,
};

/** In-memory backend, counting bus, a hand-driven clock, and all four services. */
function world(opts: { conflateAbove?: number; maxQueued?: number } = {}) {
  let now = 1_700_000_000_000;
  const clock = () => now;
  const raw = createMemoryBackend({ historySize: 100, clock });
  const { bus, releases } = countingBus(raw.bus);
  const backend: Backend = { ...raw, bus };
  const dropped: number[] = [];
  const hooks = { onDropped: (n: number) => dropped.push(n) };
  const errors: unknown[] = [];
  const onError = (_m: string, e: unknown) => errors.push(e);
  const infra = createInfra(backend, clock, { progressHz: 10, onError });
  const jobs = new JobService(infra, { onError, hooks, ...opts });
  const training = new TrainingService(infra, { progressHz: 10, onError, hooks, ...opts });
  const commands = new CommandService(infra);
  const activity = new ActivityService(infra, { onError, updateHz: 1000 });
  const close = () => {
    jobs.close();
    training.close();
    commands.close();
    activity.close();
  };
  closers.push(close);
  /** Resolves when the projectors (activity, training) have applied every job change so far. */
  const projected = () => (raw.changes as MemoryChangeFeed).idle();
  return { backend, raw, bus, releases, jobs, training, commands, activity, clock, advance: (ms: number) => (now += ms), dropped, errors, close, projected };
}
const closers: (() => void)[] = [];
afterEach(() => {
  for (const close of closers.splice(0)) close();
});

/** Reads `n` events (fails if the stream ends first or nothing comes within 2 s). */
async function take<T>(stream: AsyncIterator<T>, n: number): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i++) {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no event ${i + 1} of ${n}`)), 2000)));
    const r = await Promise.race([stream.next(), timeout]).finally(() => clearTimeout(timer));
    if (r.done) throw new Error(`stream ended after ${i} of ${n} events`);
    out.push(r.value);
  }
  return out;
}

/** Expects the stream to be done (ended normally). */
async function expectDone(stream: AsyncIterator<unknown>) {
  expect((await stream.next()).done).toBe(true);
}

/** A controllable source: subscribe resolves when the test says so; counts releases. */
function manualSource<E>() {
  let push: (e: E) => void = () => {};
  let open!: () => void;
  let fail!: (error: unknown) => void;
  const released: number[] = [];
  const opened = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  const source: LiveSource<E> = {
    subscribe: async (p) => {
      push = p;
      await opened;
      const i = released.push(0) - 1;
      return () => void released[i]!++;
    },
  };
  return { source, open, fail, released, push: (e: E) => push(e) };
}

const basePolicy = { ...testStreamOptions, onOverflow: () => {} };
type Head = { epoch: string; offset: number; finished?: boolean };

describe('openTopicStream', () => {
  const spec = (over: Partial<TopicStreamSpec<Ev, Head>> & { head: Head; history?: Ev[] | null; after?: { epoch: string; offset: number } | null }) => {
    const { head, history, after, ...rest } = over;
    return {
      source: { subscribe: async () => () => {} },
      policy: basePolicy,
      registry: new StreamRegistry<Ev>(),
      readHead: async () => head,
      freshStart: (h: Head) => [{ offset: h.offset, kind: 'SNAP' as const }],
      resume: {
        after: after ?? null,
        positionOf: (h: Head) => h,
        history: async (afterOffset: number) =>
          history === null ? { events: [], covered: false } : { events: (history ?? []).filter((e) => e.offset > afterOffset), covered: true },
        isFinished: (h: Head) => h.finished ?? false,
      },
      ...rest,
    } satisfies TopicStreamSpec<Ev, Head>;
  };
  const hist: Ev[] = [1, 2, 3, 4].map((offset) => ({ offset, kind: 'E' }));

  it('replays after the cursor when the epoch matches and history covers it', async () => {
    const s = await openTopicStream(spec({ head: { epoch: 'a', offset: 4 }, history: hist, after: { epoch: 'a', offset: 2 } }));
    expect((await take(s, 2)).map((e) => e.offset)).toEqual([3, 4]);
  });

  it('starts fresh without a cursor, on another epoch, a cursor ahead of the head, lost history, or an empty replay of a finished stream', async () => {
    const cases = [
      spec({ head: { epoch: 'a', offset: 4 }, history: hist }),
      spec({ head: { epoch: 'b', offset: 4 }, history: hist, after: { epoch: 'a', offset: 2 } }),
      spec({ head: { epoch: 'a', offset: 4 }, history: hist, after: { epoch: 'a', offset: 9 } }),
      spec({ head: { epoch: 'a', offset: 4 }, history: null, after: { epoch: 'a', offset: 2 } }),
      spec({ head: { epoch: 'a', offset: 4, finished: true }, history: hist, after: { epoch: 'a', offset: 4 } }),
    ];
    for (const c of cases) {
      const s = await openTopicStream(c);
      expect(await take(s, 1)).toEqual([{ offset: 4, kind: 'SNAP' }]);
    }
  });

  it('delivers events published while the head is read once, after the start, in offset order', async () => {
    const m = manualSource<Ev>();
    m.open();
    const s = await openTopicStream(
      spec({
        head: { epoch: 'a', offset: 2 },
        source: m.source,
        readHead: async () => {
          m.push({ offset: 2, kind: 'E' }); // already in the head
          m.push({ offset: 3, kind: 'E' });
          return { epoch: 'a', offset: 2 };
        },
      }),
    );
    m.push({ offset: 3, kind: 'E' }); // duplicate
    m.push({ offset: 4, kind: 'END' });
    expect(await take(s, 3)).toEqual([
      { offset: 2, kind: 'SNAP' },
      { offset: 3, kind: 'E' },
      { offset: 4, kind: 'END' },
    ]);
    await expectDone(s);
    expect(m.released).toEqual([1]);
  });

  it('releases once when reading the head fails, and hands the caller the error', async () => {
    const m = manualSource<Ev>();
    m.open();
    const registry = new StreamRegistry<Ev>();
    const missing = new DomainError('NOT_FOUND', 'no such job');
    await expect(
      openTopicStream(spec({ head: { epoch: 'a', offset: 0 }, source: m.source, registry, readHead: () => Promise.reject(missing) })),
    ).rejects.toBe(missing);
    expect(m.released).toEqual([1]);
    expect(registry.size).toBe(0);
  });

  it('hands the caller a failure to subscribe, holding nothing', async () => {
    const m = manualSource<Ev>();
    const registry = new StreamRegistry<Ev>();
    const opening = openTopicStream(spec({ head: { epoch: 'a', offset: 0 }, source: m.source, registry }));
    m.fail(new DomainError('SERVICE_UNAVAILABLE', 'redis away'));
    await expect(opening).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    expect(m.released).toEqual([]);
    expect(registry.size).toBe(0);
  });

  it('releases once when the service shuts down while the subscription is still opening', async () => {
    const m = manualSource<Ev>();
    const registry = new StreamRegistry<Ev>();
    let headReads = 0;
    const opening = openTopicStream(spec({ head: { epoch: 'a', offset: 0 }, source: m.source, registry, readHead: async () => (headReads++, { epoch: 'a', offset: 0 }) }));
    registry.closeAll('server restarting');
    m.open();
    const s = await opening;
    await expect(s.next()).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    expect(m.released).toEqual([1]);
    expect(headReads).toBe(0);
    // A stream opened after the shutdown ends at once too.
    const late = await openTopicStream(spec({ head: { epoch: 'a', offset: 0 }, registry }));
    await expect(late.next()).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
  });

  it('releases once when the stream ends after a final event, when the client leaves, and on shutdown', async () => {
    const registry = new StreamRegistry<Ev>();
    const sources = [manualSource<Ev>(), manualSource<Ev>(), manualSource<Ev>()];
    const streams = [];
    for (const m of sources) {
      m.open();
      streams.push(await openTopicStream(spec({ head: { epoch: 'a', offset: 1 }, source: m.source, registry })));
    }
    expect(registry.size).toBe(3);
    sources[0]!.push({ offset: 2, kind: 'END' });
    expect((await take(streams[0]!, 2)).map((e) => e.kind)).toEqual(['SNAP', 'END']);
    await streams[1]!.return!();
    await streams[1]!.return!(); // twice: still one release
    registry.closeAll('server restarting'); // the queued start is dropped: the error comes first
    await expect(streams[2]!.next()).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    expect(sources.map((m) => m.released)).toEqual([[1], [1], [1]]);
    expect(registry.size).toBe(0);
  });

  it('with awaitHead false, returns once subscribed, starts when the head comes, and releases if the client leaves first', async () => {
    const m = manualSource<Ev>();
    m.open();
    let giveHead!: (h: Head) => void;
    const head = new Promise<Head>((resolve) => (giveHead = resolve));
    const s = await openTopicStream(spec({ head: { epoch: 'a', offset: 0 }, source: m.source, readHead: () => head, awaitHead: false }));
    m.push({ offset: 6, kind: 'E' }); // before the head: held until the start
    const first = s.next();
    giveHead({ epoch: 'a', offset: 5 });
    expect((await first).value).toEqual({ offset: 5, kind: 'SNAP' });
    expect((await s.next()).value).toEqual({ offset: 6, kind: 'E' });

    const m2 = manualSource<Ev>();
    m2.open();
    const s2 = await openTopicStream(spec({ head: { epoch: 'a', offset: 0 }, source: m2.source, readHead: () => new Promise<Head>(() => {}), awaitHead: false }));
    await s2.return!();
    expect(m2.released).toEqual([1]);
  });

  it('filters live events of a bus topic with `accept`', async () => {
    const bus = new MemoryEventBus();
    const s = await openTopicStream(spec({ head: { epoch: 'a', offset: 0 }, source: { bus, topic: 't', accept: (e: Ev) => e.offset % 2 === 0 } }));
    for (const offset of [1, 2, 3, 4]) bus.publish('t', { offset, kind: 'E' } as Ev);
    expect((await take(s, 3)).map((e) => e.offset)).toEqual([0, 2, 4]);
    await s.return!();
    expect(bus.topicCount()).toBe(0);
  });
});

describe('runProgress on the topic stream', () => {
  it('fresh start: a SNAPSHOT, then live events, ending after the terminal one; released once', async () => {
    const w = world();
    const job = await w.jobs.create(viewer, { name: 'j', kind: 'BATCH', total: 10 });
    const s = await w.jobs.openStream(viewer, job.id, null);
    expect(w.jobs.activeStreams).toBe(1);
    await w.jobs.report(viewer, job.id, { completed: 1 });
    w.advance(1000);
    await w.jobs.report(viewer, job.id, { completed: 2 });
    await w.jobs.finish(viewer, job.id, 'COMPLETED', null);
    const events = [];
    for await (const e of s) events.push(e);
    expect(events.map((e) => e.type)).toEqual(['SNAPSHOT', 'STARTED', 'PROGRESS', 'COMPLETED']);
    expect(events.map((e) => e.job.completed)).toEqual([0, 1, 2, 2]);
    expect(w.jobs.activeStreams).toBe(0);
    expectAllReleasedOnce(w.releases, w.bus);
  });

  it('replay: with a cursor, the events after it from history, then live, each once', async () => {
    const w = world();
    const job = await w.jobs.create(viewer, { name: 'j', kind: 'BATCH', total: 100 });
    const first = await w.jobs.openStream(viewer, job.id, null);
    for (let i = 1; i <= 3; i++) {
      w.advance(1000);
      await w.jobs.report(viewer, job.id, { completed: i });
    }
    const seen = await take(first, 4); // SNAPSHOT, STARTED (completed 1), PROGRESS 2, PROGRESS 3
    expect(seen.map((e) => e.job.completed)).toEqual([0, 1, 2, 3]);
    await first.return();
    const resumed = await w.jobs.openStream(viewer, job.id, seen[1]!.cursor);
    w.advance(1000);
    await w.jobs.report(viewer, job.id, { completed: 4 });
    const rest = await take(resumed, 3);
    expect(rest.map((e) => e.job.completed)).toEqual([2, 3, 4]);
    expect(rest.map((e) => e.offset)).toEqual([seen[2]!.offset, seen[3]!.offset, seen[3]!.offset + 1]);
    await resumed.return();
    expectAllReleasedOnce(w.releases, w.bus);
  });

  it('dedupe: an event committed while the head is read is not delivered twice', async () => {
    const w = world();
    const job = await w.jobs.create(viewer, { name: 'j', kind: 'BATCH', total: 10 });
    const get = w.backend.store.get.bind(w.backend.store);
    let raced = false;
    w.backend.store.get = async (id) => {
      if (!raced) {
        raced = true;
        await w.jobs.report(viewer, job.id, { completed: 1 }); // published live, and in the head read next
      }
      return get(id);
    };
    const s = await w.jobs.openStream(viewer, job.id, null);
    w.backend.store.get = get;
    w.advance(1000);
    await w.jobs.report(viewer, job.id, { completed: 2 });
    const events = await take(s, 2);
    expect(events.map((e) => [e.type, e.job.completed])).toEqual([
      ['SNAPSHOT', 1],
      ['PROGRESS', 2],
    ]);
    await s.return();
  });

  it('conflation: a lagging consumer gets fewer PROGRESS events, the newest state, and every status change', async () => {
    const w = world({ conflateAbove: 2 });
    const job = await w.jobs.create(viewer, { name: 'j', kind: 'BATCH', total: 100 });
    const s = await w.jobs.openStream(viewer, job.id, null);
    for (let i = 1; i <= 20; i++) {
      w.advance(1000);
      await w.jobs.report(viewer, job.id, { completed: i, ...(i === 10 ? { stage: 'half' } : {}) });
    }
    await w.jobs.finish(viewer, job.id, 'COMPLETED', null);
    const events = [];
    for await (const e of s) events.push(e);
    const progress = events.filter((e) => e.type === 'PROGRESS');
    expect(progress.length).toBeLessThan(19);
    expect(events.map((e) => e.type)).toContain('STAGE');
    expect(events.at(-1)!.type).toBe('COMPLETED');
    expect(events.at(-1)!.job.completed).toBe(20);
    expect(events.map((e) => e.offset)).toEqual([...events.map((e) => e.offset)].sort((a, b) => a - b));
    expectAllReleasedOnce(w.releases, w.bus);
  });

  it('overflow: a consumer too slow for its bound is dropped once with SLOW_CONSUMER and released', async () => {
    const w = world({ conflateAbove: 2, maxQueued: 4 });
    const job = await w.jobs.create(viewer, { name: 'j', kind: 'BATCH', total: 100 });
    let drops = 0;
    const s = await w.jobs.openStream(viewer, job.id, null, { dropSlowConsumer: () => drops++ });
    for (let i = 1; i <= 8; i++) await w.jobs.report(viewer, job.id, { stage: `stage ${i}` }); // not conflatable
    await expect(s.next()).rejects.toMatchObject({ code: 'SLOW_CONSUMER' });
    expect(drops).toBe(1);
    expect(w.dropped).toEqual([4]);
    expectAllReleasedOnce(w.releases, w.bus);
  });

  it('shutdown ends open streams with SERVICE_UNAVAILABLE; NOT_FOUND opens nothing', async () => {
    const w = world();
    const job = await w.jobs.create(viewer, { name: 'j', kind: 'BATCH', total: 10 });
    await expect(w.jobs.openStream(viewer, 'j_missing', null)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(w.jobs.openStream(viewer, job.id, 'not-a-cursor')).rejects.toMatchObject({ code: 'BAD_USER_INPUT' });
    const s = await w.jobs.openStream(viewer, job.id, null);
    await take(s, 1);
    w.jobs.close();
    await expect(s.next()).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    expect(w.jobs.activeStreams).toBe(0);
    expectAllReleasedOnce(w.releases, w.bus);
  });
});

const progress = (globalStep: number, maxStep = 100): TrainingEventInput => ({
  type: 'TRAINING_PROGRESS',
  step: globalStep,
  epoch: 1,
  epochStep: globalStep,
  globalStep,
  maxStep,
  maxEpoch: 1,
  loss: 1 / globalStep,
  learningRate: 0.001,
  etaSeconds: null,
});
const stats = (cpuPercent: number): TrainingEventInput => ({
  type: 'SYSTEM_STATS',
  gpuMemoryUsedGb: null,
  gpuMemoryTotalGb: null,
  gpuUtilizationPercent: null,
  cpuPercent,
  ramUsedGb: null,
  ramTotalGb: null,
});
const log = (message: string): TrainingEventInput => ({ type: 'TRAINING_LOG', level: 'INFO', message, source: null });

describe('trainingEvents on the topic stream', () => {
  it('fresh start: the newest progress and stats and the status, as snapshot events; then live; ends when the job is cancelled', async () => {
    const w = world();
    const run = await w.jobs.create(viewer, { name: 'r', kind: 'TRAINING' });
    await w.training.publish(viewer, run.id, [progress(1), stats(10)]);
    w.advance(1000);
    await w.training.publish(viewer, run.id, [progress(2)]);
    const s = await w.training.openStream(viewer, run.id, {}, null);
    const start = await take(s, 3);
    expect(start.map((e) => [e.type, e.snapshot])).toEqual([
      ['TRAINING_PROGRESS', true],
      ['SYSTEM_STATS', true],
      ['TRAINING_STATUS_CHANGE', true],
    ]);
    expect(start[0]!.type === 'TRAINING_PROGRESS' && start[0]!.globalStep).toBe(2);
    w.advance(1000);
    await w.training.publish(viewer, run.id, [log('hello')]);
    expect((await take(s, 1))[0]!.type).toBe('TRAINING_LOG');
    // Cancelled by other means: the training stream hears of it through JobService.onChange and ends.
    await w.jobs.finish(viewer, run.id, 'CANCELLED', 'stop');
    const [last] = await take(s, 1);
    expect(last!.type === 'TRAINING_STATUS_CHANGE' && last!.status).toBe('STOPPED');
    await expectDone(s);
    expect(w.training.activeStreams).toBe(0);
    expectAllReleasedOnce(w.releases, w.bus);
  });

  it('replay after a cursor from history, then live, each once; a foreign epoch starts fresh', async () => {
    const w = world();
    const run = await w.jobs.create(viewer, { name: 'r', kind: 'TRAINING' });
    await w.training.publish(viewer, run.id, [log('a'), log('b'), log('c')]);
    const s = await w.training.openStream(viewer, run.id, { types: ['TRAINING_LOG'] }, null);
    await s.return!();
    const head = await w.backend.logs.head(`training:${run.id}`);
    const { encodeCursor } = await import('../../src/domain/cursor.js');
    const resumed = await w.training.openStream(viewer, run.id, {}, encodeCursor(head!.epoch, 1));
    await w.training.publish(viewer, run.id, [log('d')]);
    const events = await take(resumed, 3);
    expect(events.map((e) => e.type === 'TRAINING_LOG' && e.message)).toEqual(['b', 'c', 'd']);
    expect(events.every((e) => !e.snapshot)).toBe(true);
    await resumed.return!();
    const fresh = await w.training.openStream(viewer, run.id, {}, encodeCursor('otherEpoch', 1));
    expect((await take(fresh, 1))[0]!.snapshot).toBe(true);
    await fresh.return!();
    expectAllReleasedOnce(w.releases, w.bus);
  });

  it('dedupe: an event stored while the head is read comes once', async () => {
    const w = world();
    const run = await w.jobs.create(viewer, { name: 'r', kind: 'TRAINING' });
    await w.training.publish(viewer, run.id, [log('a')]);
    const head = w.backend.logs.head.bind(w.backend.logs);
    let raced = false;
    w.backend.logs.head = (async (topic: string) => {
      if (!raced) {
        raced = true;
        await w.training.publish(viewer, run.id, [log('b')]);
      }
      return head(topic);
    }) as typeof w.backend.logs.head;
    const { encodeCursor } = await import('../../src/domain/cursor.js');
    const before = await head(`training:${run.id}`);
    const s = await w.training.openStream(viewer, run.id, {}, encodeCursor(before!.epoch, before!.offset));
    await w.training.publish(viewer, run.id, [log('c')]);
    const events = await take(s, 2);
    expect(events.map((e) => e.type === 'TRAINING_LOG' && e.message)).toEqual(['b', 'c']);
    await s.return!();
  });

  it('conflation: a lagging consumer keeps the newest progress and the newest stats apart, and every log line', async () => {
    const w = world({ conflateAbove: 2 });
    const run = await w.jobs.create(viewer, { name: 'r', kind: 'TRAINING' });
    const s = await w.training.openStream(viewer, run.id, {}, null);
    for (let i = 1; i <= 10; i++) {
      w.advance(1000);
      await w.training.publish(viewer, run.id, [progress(i), stats(i), log(`line ${i}`)]);
    }
    await w.jobs.finish(viewer, run.id, 'COMPLETED', null);
    const events = [];
    for await (const e of s) events.push(e);
    const live = events.filter((e) => !e.snapshot);
    expect(live.filter((e) => e.type === 'TRAINING_PROGRESS').length).toBeLessThan(10);
    expect(live.filter((e) => e.type === 'TRAINING_LOG').length).toBe(10);
    const lastProgress = live.filter((e) => e.type === 'TRAINING_PROGRESS').at(-1);
    const lastStats = live.filter((e) => e.type === 'SYSTEM_STATS').at(-1);
    expect(lastProgress?.type === 'TRAINING_PROGRESS' && lastProgress.globalStep).toBe(10);
    expect(lastStats?.type === 'SYSTEM_STATS' && lastStats.cpuPercent).toBe(10);
    expectAllReleasedOnce(w.releases, w.bus);
  });

  it('overflow: too many unconflatable events for a stopped consumer drop it once', async () => {
    const w = world({ conflateAbove: 2, maxQueued: 4 });
    const run = await w.jobs.create(viewer, { name: 'r', kind: 'TRAINING' });
    let drops = 0;
    const s = await w.training.openStream(viewer, run.id, {}, null, { dropSlowConsumer: () => drops++ });
    await w.training.publish(viewer, run.id, [log('1'), log('2'), log('3'), log('4'), log('5'), log('6')]);
    await expect(s.next()).rejects.toMatchObject({ code: 'SLOW_CONSUMER' });
    expect(drops).toBe(1);
    expectAllReleasedOnce(w.releases, w.bus);
  });
});

describe('trainingCommands on the topic stream', () => {
  it('fresh start: the pending, unexpired commands in order; then new ones live; answered or expired ones never', async () => {
    const w = world();
    const run = await w.jobs.create(viewer, { name: 'r', kind: 'TRAINING' });
    const a = await w.commands.send(viewer, run.id, 'SAVE_CHECKPOINT', null, 60);
    const b = await w.commands.send(viewer, run.id, 'SAMPLE', null, 5);
    const c = await w.commands.send(viewer, run.id, 'PAUSE', null, 60);
    await w.commands.acknowledge(viewer, c.id, true, null);
    w.advance(10_000); // b expired
    const s = await w.commands.openStream(viewer, run.id);
    expect((await take(s, 1)).map((x) => x.id)).toEqual([a.id]);
    const d = await w.commands.send(viewer, run.id, 'RESUME', null, 60);
    expect((await take(s, 1)).map((x) => x.id)).toEqual([d.id]);
    void b;
    await s.return();
    expectAllReleasedOnce(w.releases, w.bus);
  });

  it('dedupe: a command sent while the pending ones are read comes once', async () => {
    const w = world();
    const run = await w.jobs.create(viewer, { name: 'r', kind: 'TRAINING' });
    const head = w.backend.logs.head.bind(w.backend.logs);
    let sent: string | null = null;
    w.backend.logs.head = (async (topic: string) => {
      if (!sent) sent = (await w.commands.send(viewer, run.id, 'SAVE_CHECKPOINT', null, 60)).id;
      return head(topic);
    }) as typeof w.backend.logs.head;
    const s = await w.commands.openStream(viewer, run.id);
    w.backend.logs.head = head;
    const next = await w.commands.send(viewer, run.id, 'PAUSE', null, 60);
    expect((await take(s, 2)).map((x) => x.id)).toEqual([sent, next.id]);
    await s.return();
  });

  it('overflow: a trainer that stops reading is dropped after 1000 queued commands; shutdown ends the others', async () => {
    const w = world();
    const run = await w.jobs.create(viewer, { name: 'r', kind: 'TRAINING' });
    let drops = 0;
    const stuck = await w.commands.openStream(viewer, run.id, { dropSlowConsumer: () => drops++ });
    const otherRun = await w.jobs.create(viewer, { name: 'r2', kind: 'TRAINING' });
    const other = await w.commands.openStream(viewer, otherRun.id);
    await w.commands.send(viewer, otherRun.id, 'SAVE_CHECKPOINT', null, 60);
    await take(other, 1);
    for (let i = 0; i < 1001; i++) await w.commands.send(viewer, run.id, 'SAVE_CHECKPOINT', null, 60);
    expect(drops).toBe(1);
    await expect(stuck.next()).rejects.toMatchObject({ code: 'SLOW_CONSUMER' });
    w.commands.close();
    await expect((async () => { for (;;) await other.next(); })()).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    expectAllReleasedOnce(w.releases, w.bus);
  });
});

describe('activity on the topic stream', () => {
  it('fresh start: an ActivityUpdate snapshot first; job changes (JobService.onChange) follow; leaving releases the scope', async () => {
    const w = world();
    const s = await w.activity.openStream(viewer, 'ENVIRONMENT', null);
    const [snapshot] = await take(s, 1);
    expect(snapshot).toMatchObject({ type: 'ActivityUpdate', snapshot: true, activeJobs: [] });
    const job = await w.jobs.create(viewer, { name: 'j', kind: 'BATCH', total: 10 });
    await w.jobs.report(viewer, job.id, { completed: 1, resources: { containers: 1, cpuCores: 2, memoryGb: 4, gpus: 1 } });
    const events = await take(s, 2); // the update and the "started" hint, in either order
    const update = events.find((e) => e.type === 'ActivityUpdate');
    expect(update).toMatchObject({ snapshot: false, totals: { gpus: 1 } });
    expect(events.some((e) => e.type === 'ActivityHint')).toBe(true);
    expect(w.activity.activeStreams).toBe(1);
    await s.return();
    expect(w.activity.watchedScopes).toBe(0);
    expect(w.activity.activeStreams).toBe(0);
    expectAllReleasedOnce(w.releases, w.bus);
  });

  it('the snapshot comes before billing updates published while it is computed (dedupe by offset after it)', async () => {
    const w = world();
    const s = await w.activity.openStream(viewer, 'ENVIRONMENT', null);
    await w.activity.setBudget(viewer, 100, 'EUR'); // before the first computation ran
    const events = await take(s, 2);
    expect(events.map((e) => e.type)).toEqual(['ActivityUpdate', 'BillingUpdate']);
    expect(events[1]!.offset).toBeGreaterThan(events[0]!.offset);
    await s.return();
  });

  it('conflation: a lagging consumer gets the newest billing state, not every update', async () => {
    const w = world();
    const s = await w.activity.openStream(viewer, 'ENVIRONMENT', null);
    await take(s, 1);
    await w.activity.setBudget(viewer, 1000, 'EUR');
    const job = await w.jobs.create(viewer, { name: 'j', kind: 'BATCH', total: 10 });
    for (let i = 1; i <= 50; i++) await w.activity.recordUsage(viewer, job.id, 1);
    const billing = [];
    for (;;) {
      const e = (await take(s, 1))[0]!;
      if (e.type === 'BillingUpdate') billing.push(e);
      if (e.type === 'BillingUpdate' && e.budgetUsed === 50) break;
    }
    expect(billing.length).toBeLessThan(51);
    await s.return();
    expectAllReleasedOnce(w.releases, w.bus);
  });

  it('overflow: a stopped consumer is dropped once; a ContextMismatch ends at once; shutdown ends the rest', async () => {
    const w = world();
    let drops = 0;
    const stuck = await w.activity.openStream(viewer, 'INSTITUTE', null, { dropSlowConsumer: () => drops++ });
    // Another user's own jobs: none of the hints below reach this scope.
    const other = await w.activity.openStream({ ...viewer, userId: 'u2' }, 'USER', null);
    await take(stuck, 1);
    await take(other, 1);
    // Hints are never conflated: one JOB_STARTED hint per started job, a throttle interval apart, fill the queue (500).
    for (let i = 0; i < 600 && drops === 0; i++) {
      const job = await w.jobs.create(viewer, { name: `j${i}`, kind: 'BATCH', total: 10 });
      w.advance(1100);
      await w.jobs.report(viewer, job.id, { completed: 1 });
      // The hint comes from the activity projector, right after the commit.
      await w.projected();
    }
    expect(drops).toBe(1);
    await expect((async () => { for (;;) await stuck.next(); })()).rejects.toMatchObject({ code: 'SLOW_CONSUMER' });
    const mismatch = await w.activity.openStream(viewer, 'ENVIRONMENT', 'elsewhere');
    expect((await take(mismatch, 1))[0]!.type).toBe('ContextMismatch');
    await expectDone(mismatch);
    w.activity.close();
    await expect((async () => { for (;;) await other.next(); })()).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
    expect(w.activity.activeStreams).toBe(0);
    expect(w.activity.watchedScopes).toBe(0);
    expectAllReleasedOnce(w.releases, w.bus);
  });
});
