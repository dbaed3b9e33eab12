/**
 * Store-path benchmark (`npm run bench:store-path`): CPU this process spends per job report in the job store
 * alone — `backend.store.update` of the domain's `applyProgress`, the commit script, and five projectors reading
 * the change log as the server's do (activity, training, groups, joblist, webhooks; here they only take the
 * change) — with no HTTP or GraphQL, so the step and store work of a report is measured with little of the
 * machine's noise. It can run two source trees side by side in one process (their own module graphs, one
 * redis-server each), alternating, which is how a before/after is taken on a busy machine:
 *
 *   npx tsx bench/store-path.ts --trees /tmp/before,/work/wt/stage --rounds 3 --reports 2000
 *
 * Flags: --trees (comma-separated checkouts; default this one) --rounds 3 --reports 2000 (per round and tree)
 * --steps 100 (steps of each job before measuring: each report is then a new stage, the 101st step replacing the
 * oldest) --report stage|progress --backend redis|memory --jobs 10 (reports go round-robin, up to 10 concurrent).
 * Prints CPU µs per report (user + system of this process over the round / reports). Redis's own CPU is not
 * counted. Results: docs/benchmarks.md "Issue 20, branch `stage`".
 */
import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startRedis, type TestRedis } from '../test/helpers/redis.js';

const { values: flags } = parseArgs({
  options: {
    trees: { type: 'string', default: resolve(import.meta.dirname, '..') },
    rounds: { type: 'string', default: '3' },
    reports: { type: 'string', default: '2000' },
    steps: { type: 'string', default: '100' },
    report: { type: 'string', default: 'stage' },
    backend: { type: 'string', default: 'redis' },
    jobs: { type: 'string', default: '10' },
  },
});

interface Tree {
  name: string;
  backend: { store: { create(job: unknown): Promise<unknown>; update(id: string, f: (job: never) => unknown): Promise<unknown> }; changes: { project(name: string, apply: (c: unknown) => Promise<void>): void; ready(): Promise<void> }; close(): Promise<void> };
  job: { createJob: (...args: unknown[]) => { id: string }; applyProgress: (job: unknown, report: unknown, now: number, interval: number) => unknown };
  ids: string[];
  seq: number;
  redis: TestRedis | null;
}

const PROJECTORS = ['activity', 'training', 'groups', 'joblist', 'webhooks'];

async function open(dir: string): Promise<Tree> {
  const job = await import(resolve(dir, 'src/domain/job.ts'));
  let backend: Tree['backend'];
  let redis: TestRedis | null = null;
  if (flags.backend === 'memory') {
    const { createMemoryBackend } = await import(resolve(dir, 'src/backends/memory.ts'));
    backend = createMemoryBackend({ historySize: 1000 });
  } else {
    redis = await startRedis();
    const { createRedisBackend } = await import(resolve(dir, 'src/backends/redis.ts'));
    backend = await createRedisBackend({ url: redis.url, historySize: 1000, onError: (c: string, e: unknown) => console.error(c, e) });
  }
  for (const name of PROJECTORS) backend.changes.project(name, async () => {});
  await backend.changes.ready();
  const tree: Tree = { name: dir, backend, job, ids: [], seq: 0, redis };
  for (let j = 0; j < Number(flags.jobs); j++) {
    const record = job.createJob({ kind: 'BATCH', name: 'bench', total: null }, { id: randomUUID(), epoch: 'e1', tenant: { institute: 'bench', environment: 'default' }, ownerId: 'u' }, Date.now());
    await backend.store.create(record);
    tree.ids.push(record.id);
  }
  for (let i = 0; i < Number(flags.steps); i++) await reportAll(tree, 'stage');
  return tree;
}

/** One report to each job, concurrently. */
function reportAll(tree: Tree, shape: string): Promise<unknown> {
  const n = tree.seq++;
  const report = shape === 'stage' ? { completedDelta: 1, stage: `stage ${n} sent ${Date.now()}` } : { completedDelta: 1 };
  return Promise.all(tree.ids.map((id) => tree.backend.store.update(id, (j) => tree.job.applyProgress(j, report, Date.now(), 0))));
}

async function measure(tree: Tree): Promise<number> {
  const rounds = Math.ceil(Number(flags.reports) / tree.ids.length);
  const start = process.cpuUsage();
  for (let r = 0; r < rounds; r++) await reportAll(tree, flags.report!);
  await new Promise((done) => setTimeout(done, 200)); // the projectors' reads of the last changes
  const used = process.cpuUsage(start);
  return (used.user + used.system) / (rounds * tree.ids.length);
}

const trees: Tree[] = [];
for (const dir of flags.trees!.split(',')) trees.push(await open(dir));
const results = new Map<string, number[]>(trees.map((t) => [t.name, []]));
for (const tree of trees) await measure(tree); // warm-up
for (let round = 0; round < Number(flags.rounds); round++) {
  for (const tree of trees) results.get(tree.name)!.push(await measure(tree));
}
console.log(`store path, ${flags.report} reports, ${flags.backend} backend, ${flags.jobs} jobs, ${flags.steps} steps before measuring, ${flags.reports} reports per round`);
console.log('| tree | CPU µs/report per round | mean |\n| --- | --- | --- |');
for (const [name, values] of results) console.log(`| ${name} | ${values.map((v) => v.toFixed(1)).join(', ')} | ${(values.reduce((a, b) => a + b, 0) / values.length).toFixed(1)} |`);
for (const tree of trees) {
  await tree.backend.close();
  await tree.redis?.stop();
}
process.exit(0);
