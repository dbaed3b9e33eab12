/**
 * `npm run demo`: a demo producer. Against a running server it creates three
 * jobs of different kinds — an embedding batch of 4,000 items, an evaluation
 * run where some items fail, a five-stage document pipeline — plus a
 * simulated training run with a budget (demo-training.ts), and reports
 * their progress through the public API at a human pace (about 30 s), so a
 * new user sees live streams at once.
 *
 * Server: RUNWATCH_URL (default http://127.0.0.1:4000; with or without `/graphql`).
 * Token: RUNWATCH_TOKEN; when unset, the dev token of a dev-mode server is
 * fetched from its dashboard configuration (`/dashboard/config.json`).
 */
import { graphqlEndpoint } from '../client/http.js';
import { runTrainingDemo } from './demo-training.js';

const url = graphqlEndpoint(process.env.RUNWATCH_URL ?? 'http://127.0.0.1:4000');

async function devToken(): Promise<string> {
  const res = await fetch(new URL('/dashboard/config.json', url)).catch((error: Error) => {
    throw new Error(`cannot reach ${url}: ${error.message}. Start the server first (npm start).`);
  });
  const { devToken } = res.ok ? ((await res.json()) as { devToken: string | null }) : { devToken: null };
  if (!devToken) throw new Error('set RUNWATCH_TOKEN: the server is not in dev mode, so it does not hand out a dev token');
  return devToken;
}

async function request<T>(token: string, query: string, variables: Record<string, unknown>): Promise<T> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const text = await res.text();
  let body: { data?: T; errors?: { message: string }[] };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    throw new Error(`HTTP ${res.status} from ${url}: ${text.slice(0, 200) || '(empty body)'}`);
  }
  if (body.errors?.length) throw new Error(body.errors.map((e) => e.message).join('; '));
  return body.data as T;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const jitter = (n: number) => Math.max(0, Math.round(n * (0.6 + Math.random() * 0.8)));

interface DemoJob {
  name: string;
  kind: 'BATCH' | 'EVALUATION' | 'PIPELINE';
  total: number;
  /** Items per tick (a tick is 250 ms). */
  perTick: number;
  /** Chance per tick that some items fail. */
  failChance?: number;
  stages?: string[];
  resources: { containers: number; cpuCores: number; memoryGb: number; gpus: number };
}

const JOBS: DemoJob[] = [
  { name: 'embed corpus with e5-large', kind: 'BATCH', total: 4000, perTick: 40, resources: { containers: 4, cpuCores: 16, memoryGb: 64, gpus: 2 } },
  { name: 'eval: qa-benchmark v3', kind: 'EVALUATION', total: 1200, perTick: 10, failChance: 0.15, resources: { containers: 2, cpuCores: 8, memoryGb: 32, gpus: 1 } },
  {
    name: 'ingest 600 PDFs',
    kind: 'PIPELINE',
    total: 600,
    perTick: 6,
    stages: ['download', 'parse', 'chunk', 'embed', 'index'],
    resources: { containers: 3, cpuCores: 6, memoryGb: 12, gpus: 0 },
  },
];

async function run(token: string, spec: DemoJob): Promise<void> {
  const { createBatchJob: job } = await request<{ createBatchJob: { id: string } }>(
    token,
    `mutation($input: CreateBatchJobInput!) { createBatchJob(input: $input) { id } }`,
    { input: { name: spec.name, kind: spec.kind, total: spec.total, metadata: { demo: true } } },
  );
  process.stdout.write(`${spec.kind.padEnd(10)} ${job.id}  ${spec.name}\n`);
  await sleep(1500); // time to open a subscription before it starts
  let done = 0;
  let failed = 0;
  while (done + failed < spec.total) {
    const remaining = spec.total - done - failed;
    const fails = spec.failChance && Math.random() < spec.failChance ? Math.min(remaining, 1 + Math.floor(Math.random() * 3)) : 0;
    const step = Math.min(remaining - fails, jitter(spec.perTick));
    const stage = spec.stages ? spec.stages[Math.min(spec.stages.length - 1, Math.floor(((done + failed) / spec.total) * spec.stages.length))] : undefined;
    await request(token, `mutation($input: ReportProgressInput!) { reportProgress(input: $input) { id } }`, {
      input: {
        jobId: job.id,
        completedDelta: step,
        failedDelta: fails,
        stage,
        message: fails ? `${fails} item(s) failed: answer did not parse` : undefined,
        resources: spec.resources,
      },
    });
    done += step;
    failed += fails;
    await sleep(250);
  }
  await request(token, `mutation($id: ID!) { completeBatchJob(id: $id, message: "demo finished") { id } }`, { id: job.id });
}

async function main(): Promise<void> {
  const token = process.env.RUNWATCH_TOKEN ?? (await devToken());
  process.stdout.write(`runwatch demo against ${url}\n\n`);
  const runs = JOBS.map((spec) => run(token, spec));
  runs.push(runTrainingDemo((query, variables) => request(token, query, variables), (line) => process.stdout.write(`${line}\n`)));
  await sleep(200);
  process.stdout.write(
    `\nWatch one in GraphiQL (${url}):\n  subscription { runProgress(runId: "<id>") { type cursor job { status completed failed total percent rate etaSeconds stage } } }\n` +
      `  subscription { trainingEvents(runId: "<TRAINING id>", types: [TRAINING_PROGRESS, SAMPLE_GENERATED, TRAINING_LOG]) { __typename ... on TrainingProgress { globalStep loss } ... on SampleGenerated { sampleId path } ... on TrainingLog { level message } } }\n` +
      `  subscription { activity(scope: ENVIRONMENT) { __typename ... on ActivityUpdate { totals { jobs gpus memoryGb } } ... on BillingUpdate { budgetUsed budgetRemaining currency } ... on ActivityHint { kind message } } }\n\n`,
  );
  await Promise.all(runs);
  process.stdout.write('all demo jobs finished\n');
}

main().catch((error) => {
  process.stderr.write(`demo: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
