/**
 * `runwatch demo`: a few jobs reported at a human pace through the SDK's
 * ProgressReporter, so there is something to watch in the CLI and dashboard.
 * An embedding batch, an evaluation with failed items, a staged pipeline and
 * (with `failOne`) a job that fails.
 */
import { ProgressReporter, type JobKind, type RunwatchClient } from '../client/index.js';

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Speed factor: 1 takes about 30 seconds, 10 about 3 (default 1). */
  speed?: number;
  /** Also run a job that fails halfway (default true). */
  failOne?: boolean;
  /** Called with each created job's id and name. */
  onStart?: (id: string, name: string) => void;
}

interface Plan {
  name: string;
  kind: JobKind;
  total: number;
  stages?: string[];
  failEvery?: number;
  failAt?: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Runs the demo jobs to their end; resolves with their ids. */
export async function runDemo(client: RunwatchClient, opts: DemoOptions = {}): Promise<string[]> {
  const speed = opts.speed ?? 1;
  const plans: Plan[] = [
    { name: 'embed 12k support tickets', kind: 'BATCH', total: 12_000 },
    { name: 'eval: retrieval@10 on 2k queries', kind: 'EVALUATION', total: 2_000, failEvery: 97 },
    { name: 'ingest PDFs', kind: 'PIPELINE', total: 600, stages: ['download', 'parse', 'chunk', 'embed', 'index'] },
  ];
  if (opts.failOne ?? true) plans.push({ name: 're-rank nightly batch', kind: 'BATCH', total: 5_000, failAt: 0.55 });
  const ids: string[] = [];
  await Promise.all(
    plans.map(async (plan, index) => {
      const reporter = new ProgressReporter(client);
      const id = await reporter.start({ name: plan.name, kind: plan.kind, total: plan.total, metadata: { demo: true } });
      if (!id) return;
      ids.push(id);
      opts.onStart?.(id, plan.name);
      await sleep((index * 1500) / speed);
      const steps = 100 + index * 20;
      const per = plan.total / steps;
      let done = 0;
      for (let step = 1; step <= steps; step++) {
        const target = Math.round(step * per);
        const n = target - done;
        const failed = plan.failEvery && step % 7 === 0 ? Math.min(n, Math.ceil(n / plan.failEvery)) : 0;
        reporter.advance(n - failed, failed);
        done = target;
        if (plan.stages) reporter.setStage(plan.stages[Math.min(plan.stages.length - 1, Math.floor((step / steps) * plan.stages.length))]!);
        if (plan.failAt && step / steps >= plan.failAt) {
          await reporter.fail('CUDA error: out of memory (tried to allocate 2.00 GiB)');
          return;
        }
        await sleep((250 + 100 * Math.sin(step / 5 + index)) / speed);
      }
      await reporter.complete('done');
    }),
  );
  return ids;
}
