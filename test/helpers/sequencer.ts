/**
 * File order for `vitest run` (config `sequence.sequencer`): longest files first, so the two workers
 * finish together instead of one of them starting a 20 s file when the other is nearly done.
 *
 * Vitest's own sequencer orders by the durations it cached from the last run and, without a cache
 * (a fresh clone, CI), by file size — which puts short, long-winded files first and the slowest ones
 * (a browser, `npm pack`, server processes: few lines, many seconds) last. Here a file's duration is
 * its cached one when there is one, else the estimate below (seconds, measured on the 2-core dev
 * machine; docs/benchmarks.md "Test suite time"), else 0; ties go to the larger file, as in vitest.
 *
 * With `--sequence.shuffle` (tests shuffled) the files are shuffled too, with the run's seed, as
 * vitest's RandomSequencer does. Idea and cache keys from vitest's BaseSequencer
 * (vitest/dist/chunks/coverage.*.js).
 */
import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** Seconds per file, for files that take more than about 2 s; the rest sort by size after them. */
export const ESTIMATED_SECONDS: Readonly<Record<string, number>> = {
  'test/dashboard/graphiql.test.ts': 27,
  'test/package/package.test.ts': 150,
  'test/integration/redis-cluster.test.ts': 30,
  'test/integration/cluster-backend.test.ts': 40,
  'test/integration/topic-log.test.ts': 8,
  'test/integration/change-feed-order.test.ts': 7,
  'test/integration/chaos.test.ts': 16,
  'test/integration/faults.test.ts': 16,
  'test/cli/cli.test.ts': 12,
  'test/cli/connect.test.ts': 6,
  'test/cli/watch-all-tty.test.ts': 3,
  'test/integration/webhooks-failover.test.ts': 11,
  'test/integration/groups.test.ts': 12,
  'test/integration/projectors.test.ts': 8,
  'test/integration/results.test.ts': 11,
  'test/integration/activity.test.ts': 10,
  'test/integration/stalls.test.ts': 10,
  'test/integration/webhooks.test.ts': 9,
  'test/integration/limits.test.ts': 9,
  'test/client/codegen.test.ts': 8,
  'test/dashboard/dashboard.test.ts': 30,
  'test/integration/training.test.ts': 7,
  'test/integration/retention.test.ts': 7,
  'test/integration/ws-protocol.test.ts': 7,
  'test/integration/schema-and-config.test.ts': 6,
  'test/integration/delivery.test.ts': 5,
  'test/integration/shared-channels.test.ts': 5,
  'test/integration/job-commands.test.ts': 4,
  'test/integration/stalled-client.test.ts': 8,
  'test/integration/bad-input.test.ts': 4,
  'test/integration/start.test.ts': 11,
  'test/client/sdk.test.ts': 3,
  'test/client/sdk-jobs.test.ts': 4,
  'test/client/python-documents.test.ts': 3,
  'test/integration/subscription-leak.test.ts': 2,
};

/** Mulberry32: a small seeded PRNG, so a shuffled order is reproduced by its seed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export default class LongestFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const { config, cache } = this.ctx;
    if (config.sequence.shuffle) {
      const random = seeded(config.sequence.seed ?? Date.now());
      const out = [...files];
      for (let i = out.length - 1; i > 0; i--) {
        const j = Math.floor(random() * (i + 1));
        [out[i], out[j]] = [out[j]!, out[i]!];
      }
      return out;
    }
    const keyOf = (spec: TestSpecification) => `${spec.project.name}:${relative(config.root, spec.moduleId)}`;
    const millis = (spec: TestSpecification) => {
      const cached = cache.getFileTestResults(keyOf(spec))?.duration;
      if (cached !== undefined) return cached;
      return (ESTIMATED_SECONDS[relative(config.root, spec.moduleId).replaceAll('\\', '/')] ?? 0) * 1000;
    };
    const size = (spec: TestSpecification) => cache.getFileStats(keyOf(spec))?.size ?? 0;
    return [...files].sort((a, b) => millis(b) - millis(a) || size(b) - size(a));
  }
}
