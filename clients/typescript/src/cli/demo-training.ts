/**
 * The training part of `npm run demo`: a simulated training run (300 steps in
 * about 30 s: falling loss, samples, logs, GPU stats, validation) published
 * through the public API with publishTrainingEvents, plus a budget and usage
 * so the activity stream shows billing and budget hints.
 */

/** Sends one GraphQL request with the demo's token; throws on GraphQL errors. */
export type Request = <T>(query: string, variables: Record<string, unknown>) => Promise<T>;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const PUBLISH = 'mutation($runId: ID!, $events: [TrainingEventInput!]!) { publishTrainingEvents(runId: $runId, events: $events) }';
const MAX_STEP = 300;
const STEPS_PER_TICK = 3;
const TICK_MS = 300;

/**
 * Runs the demo training run to COMPLETED. Sets the tenant's budget to 20 EUR
 * (needs `admin`; skipped without it) and records 0.25 EUR of usage every
 * 10 steps, so usage passes 90% and then 100% of the budget.
 */
export async function runTrainingDemo(request: Request, log: (line: string) => void): Promise<void> {
  const { createBatchJob: run } = await request<{ createBatchJob: { id: string } }>(
    `mutation { createBatchJob(input: { name: "fine-tune sd-lora (demo)", kind: TRAINING, total: ${MAX_STEP}, metadata: { demo: true } }) { id } }`,
    {},
  );
  log(`${'TRAINING'.padEnd(10)} ${run.id}  fine-tune sd-lora (demo)`);
  const budget = await request('mutation { setBudget(total: 20, currency: "EUR") { budgetTotal } }', {}).catch(() => null);
  await sleep(1500); // time to open a subscription before it starts
  await request(PUBLISH, { runId: run.id, events: [{ status: { status: 'STARTING', message: 'loading model and data' } }] });
  await sleep(600);
  await request(PUBLISH, { runId: run.id, events: [{ status: { status: 'RUNNING' } }, { log: { level: 'INFO', message: 'training started', source: 'trainer' } }] });
  await request(`mutation($id: ID!) { reportProgress(input: { jobId: $id, resources: { containers: 1, cpuCores: 8, memoryGb: 48, gpus: 1 } }) { id } }`, { id: run.id });
  for (let step = 1; step <= MAX_STEP; step += STEPS_PER_TICK) {
    const events: Record<string, unknown>[] = [];
    for (let s = step; s < step + STEPS_PER_TICK && s <= MAX_STEP; s++) {
      const loss = 1.8 * Math.exp(-s / 90) + 0.08 + (Math.random() - 0.5) * 0.05;
      events.push({
        progress: {
          globalStep: s,
          maxStep: MAX_STEP,
          step: s,
          epoch: Math.floor((s - 1) / 100),
          epochStep: ((s - 1) % 100) + 1,
          maxEpoch: 2,
          loss,
          learningRate: 1e-4 * 0.5 * (1 + Math.cos((Math.PI * s) / MAX_STEP)),
          etaSeconds: ((MAX_STEP - s) * TICK_MS) / STEPS_PER_TICK / 1000,
        },
      });
      events.push({ log: { level: s % 40 === 0 ? 'WARNING' : 'INFO', message: `step ${s}: loss ${loss.toFixed(4)}${s % 40 === 0 ? ' (grad norm clipped)' : ''}`, source: 'trainer' } });
      if (s % 10 === 0) {
        events.push({
          systemStats: {
            gpuMemoryUsedGb: 17 + Math.random() * 3,
            gpuMemoryTotalGb: 24,
            gpuUtilizationPercent: 85 + Math.random() * 14,
            cpuPercent: 20 + Math.random() * 20,
            ramUsedGb: 30 + Math.random() * 4,
            ramTotalGb: 64,
          },
        });
      }
      if (s % 50 === 0) {
        events.push({ sample: { sampleId: `sample-${s}`, sampleType: 'IMAGE', path: `/runs/demo/samples/${s}.png`, step: s, epoch: Math.floor((s - 1) / 100), prompt: 'a watercolor fox' } });
      }
      if (s % 100 === 0) {
        events.push({ validation: { step: s, epoch: s / 100 - 1, validationLoss: 1.9 * Math.exp(-s / 110) + 0.12, metrics: [{ name: 'clip_score', value: 0.2 + s / 1000 }] } });
      }
      if (budget && s % 10 === 0) await request('mutation($id: ID!) { recordUsage(jobId: $id, amount: 0.25) { budgetUsed } }', { id: run.id });
    }
    await request(PUBLISH, { runId: run.id, events });
    await sleep(TICK_MS);
  }
  await request(PUBLISH, { runId: run.id, events: [{ status: { status: 'COMPLETED', message: 'saved final checkpoint' } }] });
}
