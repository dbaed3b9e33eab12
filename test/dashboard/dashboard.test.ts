/**
 * The dashboard in a real browser: Debian's chromium (never a downloaded
 * one) driven by playwright-core. A job reported through the API shows its
 * bar move and finish on the page; a share link opens the job page with its
 * event log; the list shows groups folded, stalled jobs, filters, and stays live
 * without polling. Screenshots go to test-artifacts/.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { gql, subscribeWs, wsClient } from '../helpers/clients.js';
import { freshInstitute, startTestServer, token } from '../helpers/servers.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = 'test-artifacts';
const CREATE = `mutation($input: CreateBatchJobInput!) { createBatchJob(input: $input) { id } }`;
const REPORT = `mutation($input: ReportProgressInput!) { reportProgress(input: $input) { id } }`;
const COMPLETE = `mutation($id: ID!) { completeBatchJob(id: $id, message: "all vectors written") { id } }`;
const FAIL = `mutation($id: ID!, $error: String!) { failBatchJob(id: $id, error: $error) { id } }`;
const SHARE = `mutation($id: ID!) { createJobViewToken(jobId: $id, ttlSeconds: 600) { token dashboardPath } }`;

let context: BrowserContext;
let profile: string;
let server: RunningServer;
let tok: string;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`chromium is not installed at ${CHROMIUM}: the dashboard test needs it. Install it with \`apt-get install -y chromium\` (or run \`bash .ci/run\`, which does).`);
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  profile = mkdtempSync(join(tmpdir(), 'runwatch-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 640 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  server = await startTestServer();
});

// A fresh institute per test: the activity panel counts only that test's jobs, whatever ran before it (shuffled order).
beforeEach(async () => {
  tok = await token({ inst: freshInstitute() });
});

afterAll(async () => {
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

const api = (query: string, variables: Record<string, unknown>) => gql(server.url, tok, query, variables);
const origin = () => server.url.replace(/\/graphql$/, '');
const rowAttr = (page: Page, id: string, attr: string) => page.getAttribute(`tr[data-job-id="${id}"]`, attr);
const waitForRow = (page: Page, id: string, attr: string, value: string) =>
  page.waitForFunction(([sel, a, v]) => document.querySelector(sel!)?.getAttribute(a!) === v, [`tr[data-job-id="${id}"]`, attr, value], { timeout: 10_000 });

describe('dashboard', () => {
  it('shows a reported job’s bar move and finish live', async () => {
    // Some company for the screenshot: a finished job, a failed one, one half-way.
    const done = (await api(CREATE, { input: { name: 'embed 12k support tickets', total: 12_000 } })).createBatchJob.id;
    await api(REPORT, { input: { jobId: done, completed: 12_000, stage: 'index' } });
    await api(COMPLETE, { id: done });
    const failed = (await api(CREATE, { input: { name: 're-rank nightly batch', total: 5_000 } })).createBatchJob.id;
    await api(REPORT, { input: { jobId: failed, completed: 2_750 } });
    await api(FAIL, { id: failed, error: 'CUDA error: out of memory' });
    const half = (await api(CREATE, { input: { name: 'ingest PDFs', kind: 'PIPELINE', total: 600 } })).createBatchJob.id;
    await api(REPORT, { input: { jobId: half, completed: 250, stage: 'chunk', resources: { containers: 3, cpuCores: 6, memoryGb: 12, gpus: 0 } } });
    await api(`mutation { setBudget(total: 500, currency: "EUR") { budgetTotal } }`, {});
    await api(`mutation($id: ID!) { recordUsage(jobId: $id, amount: 42.5) { budgetUsed } }`, { id: half });

    const page = await context.newPage();
    const consoleErrors: string[] = [];
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    await page.goto(`${origin()}/#token=${tok}`);
    const id = (await api(CREATE, { input: { name: 'eval: retrieval@10 on 2k queries', kind: 'EVALUATION', total: 2_000 } })).createBatchJob.id;
    await page.waitForSelector(`tr[data-job-id="${id}"]`, { timeout: 10_000 }); // new jobs arrive on the jobUpdates stream
    expect(await rowAttr(page, id, 'data-status')).toBe('QUEUED');
    await page.waitForSelector('#connection[data-state="live"]', { timeout: 10_000 });

    await api(REPORT, { input: { jobId: id, completed: 500, stage: 'retrieve' } });
    await waitForRow(page, id, 'data-percent', '25');
    expect(await rowAttr(page, id, 'data-status')).toBe('RUNNING');
    const width25 = await page.$eval(`tr[data-job-id="${id}"] .fill`, (e) => (e as HTMLElement).style.width);
    expect(width25).toBe('25%');

    await api(REPORT, { input: { jobId: id, completed: 1_280, stage: 'score' } });
    await waitForRow(page, id, 'data-percent', '64');
    expect(await page.textContent(`tr[data-job-id="${id}"] .stage`)).toBe('score');
    expect(await page.textContent(`tr[data-job-id="${id}"] .done`)).toContain('1,280/2,000');
    // the bar itself (after its CSS transition) is drawn at 64 %: what the screenshot shows
    await page.waitForFunction(
      (sel) => {
        const fill = document.querySelector(`${sel} .fill`)!.getBoundingClientRect().width;
        const bar = document.querySelector(`${sel} .bar`)!.getBoundingClientRect().width;
        return Math.abs(fill / bar - 0.64) < 0.005;
      },
      `tr[data-job-id="${id}"]`,
      { timeout: 5_000 },
    );
    // the activity panel: the two running jobs' resources and the budget, live
    await api(REPORT, { input: { jobId: id, completed: 1_280, resources: { containers: 2, cpuCores: 8, memoryGb: 32, gpus: 1 } } });
    await page.waitForFunction(() => document.querySelector('#act-containers')?.textContent === '5', undefined, { timeout: 10_000 });
    expect(await page.textContent('#act-jobs')).toBe('2');
    expect(await page.textContent('#act-gpus')).toBe('1');
    expect(await page.textContent('#act-budget')).toBe('42.50 of 500 EUR used, 457.50 EUR left');
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png') });

    await api(REPORT, { input: { jobId: id, completed: 2_000 } });
    await api(COMPLETE, { id });
    await waitForRow(page, id, 'data-status', 'COMPLETED');
    expect(await rowAttr(page, id, 'data-percent')).toBe('100');
    expect(await page.$eval(`tr[data-job-id="${id}"] .fill`, (e) => (e as HTMLElement).style.width)).toBe('100%');
    expect(await page.textContent(`tr[data-job-id="${id}"] .status`)).toBe('COMPLETED');
    expect(await rowAttr(page, failed, 'data-status')).toBe('FAILED');
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-finished.png') });
    expect(consoleErrors).toEqual([]);
    await page.close();
  });

  it('lists a group folded under its parent, marks a stalled job, filters by tag, and stays live without polling', async () => {
    const create = async (input: Record<string, unknown>) => (await api(CREATE, { input })).createBatchJob.id as string;
    const older = await create({ name: 'embed support tickets (yesterday’s rerun)', total: 1_000 });
    await api(REPORT, { input: { jobId: older, completed: 1_000 } });
    await api(COMPLETE, { id: older });
    const broken = await create({ name: 'translate product catalogue', total: 800 });
    await api(REPORT, { input: { jobId: broken, completed: 120 } });
    await api(FAIL, { id: broken, error: 'HTTPError 429: rate limited by upstream translation API after 3 retries' });
    const parent = await create({ name: 'nightly eval suite', kind: 'EVALUATION', tags: ['nightly', 'gpu'] });
    const shards: string[] = [];
    for (let n = 1; n <= 3; n++) shards.push(await create({ name: `shard ${n} of 3`, kind: 'EVALUATION', total: 500, parentId: parent, tags: ['nightly'] }));
    await api(REPORT, { input: { jobId: shards[0], completed: 500 } });
    await api(COMPLETE, { id: shards[0] });
    await api(REPORT, { input: { jobId: shards[1], completed: 310, stage: 'score', resources: { containers: 2, cpuCores: 8, memoryGb: 32, gpus: 1 } } });
    await api(`mutation { setBudget(total: 20, currency: "EUR") { budgetTotal } }`, {});
    await api(`mutation($id: ID!) { recordUsage(jobId: $id, amount: 37.5) { budgetUsed } }`, { id: shards[1] });
    const longName = 'python train.py --config configs/experiments/2026-12/llama-3.1-8b-instruct-lora-r64-alpha128.yaml --data /mnt/datasets/support-tickets/v7/train.jsonl --output-dir /mnt/checkpoints/run-4711 --seed 1234';
    const stalled = await create({ name: longName, kind: 'TRAINING', total: 2_000, heartbeatSeconds: 1 });
    const events = subscribeWs(wsClient(server.url, tok), `subscription($id: ID!) { runProgress(runId: $id) { type } }`, { id: stalled }, 'runProgress');
    await api(REPORT, { input: { jobId: stalled, completed: 700 } });
    await events.waitFor((es) => es.some((e) => e.type === 'STALLED'), 'a STALLED event', 15_000);
    events.dispose();

    const page = await context.newPage();
    await page.setViewportSize({ width: 1280, height: 720 });
    const consoleErrors: string[] = [];
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    const requests: string[] = []; // every GraphQL request over HTTP after the list has loaded
    let loaded = false;
    page.on('request', (r) => {
      if (loaded && r.url().endsWith('/graphql') && r.method() === 'POST') requests.push(r.postData() ?? '');
    });
    await page.goto(`${origin()}/#token=${tok}`);
    await page.waitForSelector(`tr[data-job-id="${parent}"]`, { timeout: 10_000 });
    await page.waitForSelector('#activity:not([hidden])', { timeout: 10_000 });
    loaded = true;
    const loadedAt = Date.now();
    // a budget that is over says so (not "-17.50 EUR left") and is marked
    await page.waitForFunction(() => document.querySelector('#act-budget')?.getAttribute('data-over') === 'true', undefined, { timeout: 10_000 });
    expect(await page.textContent('#act-budget')).toBe('37.50 of 20 EUR used: over budget by 17.50 EUR');

    // the group: one parent row with its aggregate bar per child status, children folded until asked
    expect(await page.$$eval(`tr[data-job-id="${parent}"] .kids .seg`, (segs) => segs.map((s) => s.className))).toEqual(['seg completed', 'seg running', 'seg queued']);
    expect(await page.textContent(`tr[data-job-id="${parent}"] .sub`)).toContain('group of 3');
    for (const child of shards) expect(await page.$(`tr[data-job-id="${child}"]`)).toBeNull();
    await page.click(`tr[data-job-id="${parent}"] .fold`);
    await page.waitForSelector(`tr[data-job-id="${shards[1]}"][data-parent-id="${parent}"]`, { timeout: 5_000 });
    const order = await page.$$eval('#jobs-body tr', (trs) => trs.map((t) => t.getAttribute('data-job-id')));
    expect(order.indexOf(parent)).toBe(order.indexOf(shards[2]!) - 1); // children right under their parent, newest first
    expect(order.indexOf(shards[0]!)).toBe(order.indexOf(parent) + 3);

    // the stalled job is marked; its long name is clamped, the full name on hover
    expect(await rowAttr(page, stalled, 'data-stalled')).toBe('true');
    expect(await page.textContent(`tr[data-job-id="${stalled}"] .stalled`)).toBe('stalled');
    // the activity panel lists the running jobs with their bars, the stalled one marked
    await page.waitForSelector(`#act-running li[data-job-id="${stalled}"][data-stalled="true"]`, { timeout: 5_000 });
    expect(await page.$$eval('#act-running li', (lis) => lis.map((l) => l.getAttribute('data-job-id')).sort())).toEqual([stalled, parent, shards[1]].sort());
    expect(await page.getAttribute(`tr[data-job-id="${stalled}"] .jobname`, 'title')).toBe(longName);
    const nameBox = await page.$eval(`tr[data-job-id="${stalled}"] .jobname`, (a) => ({ h: a.getBoundingClientRect().height, line: parseFloat(getComputedStyle(a).lineHeight) }));
    expect(nameBox.h).toBeLessThanOrEqual(nameBox.line * 2 + 1);
    // a FAILED row says why; created and duration columns tell repeated runs apart
    expect(await page.textContent(`tr[data-job-id="${broken}"] .err`)).toContain('HTTPError 429');
    expect(await page.textContent(`tr[data-job-id="${older}"] .created`)).toMatch(/\d{2}:\d{2}:\d{2}/);
    expect(await page.textContent(`tr[data-job-id="${older}"] .dur`)).toMatch(/^\d+s$/);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-list.png') });

    // a job that stalls while the page is open gets marked too (the JOB_STALLED hint, or its heartbeat passing)
    const quiet = await create({ name: 'embed wiki dump', total: 100, heartbeatSeconds: 1 });
    await api(REPORT, { input: { jobId: quiet, completed: 10 } });
    await waitForRow(page, quiet, 'data-status', 'RUNNING');
    await page.waitForFunction((id) => document.querySelector(`tr[data-job-id="${id}"]`)?.getAttribute('data-stalled') === 'true', quiet, { timeout: 15_000 });

    // a new job appears live, with no reload and no polling
    const fresh = await create({ name: 'rerank candidates', total: 300, tags: ['adhoc'] });
    await page.waitForSelector(`tr[data-job-id="${fresh}"]`, { timeout: 10_000 });
    await api(REPORT, { input: { jobId: fresh, completed: 150 } });
    await waitForRow(page, fresh, 'data-percent', '50');

    // the tag filter narrows the list to the tagged group
    await page.fill('#f-tags', 'nightly');
    await page.waitForFunction((id) => !document.querySelector(`tr[data-job-id="${id}"]`), fresh, { timeout: 10_000 });
    await page.waitForSelector(`tr[data-job-id="${parent}"]`, { timeout: 10_000 });
    const tagged = await page.$$eval('#jobs-body tr', (trs) => trs.map((t) => t.getAttribute('data-job-id')));
    expect(new Set(tagged)).toEqual(new Set([parent, ...shards]));
    await page.fill('#f-tags', '');
    await page.waitForSelector(`tr[data-job-id="${fresh}"]`, { timeout: 10_000 });

    // a phone-width screen: no horizontal scrolling of the page
    await page.setViewportSize({ width: 390, height: 844 });
    await page.waitForFunction(() => document.documentElement.scrollWidth <= 390, undefined, { timeout: 5_000 });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-phone.png'), fullPage: true });

    // Polling would show within the old 3 s refresh: hold an observation window of 4 s since load.
    const left = 4_000 - (Date.now() - loadedAt);
    if (left > 0) await page.waitForTimeout(left);
    expect(requests.filter((body) => body.includes('batchJobs'))).toEqual([]);
    expect(requests).toEqual([]); // the list and its filters are all one jobUpdates subscription
    expect(consoleErrors).toEqual([]);
    await page.close();
  });

  it('pages through more jobs than the live snapshot holds', async () => {
    const ids: string[] = [];
    for (let n = 1; n <= 108; n++) ids.push((await api(CREATE, { input: { name: `nightly shard ${n}`, total: 10 } })).createBatchJob.id);
    const page = await context.newPage();
    await page.goto(`${origin()}/#token=${tok}`);
    await page.waitForSelector(`tr[data-job-id="${ids[107]}"]`, { timeout: 10_000 }); // newest first
    await page.waitForFunction(() => document.querySelector('#page-info')?.textContent === '1–25 of 100', undefined, { timeout: 10_000 });
    expect(await page.$$eval('#jobs-body tr', (trs) => trs.length)).toBe(25);
    for (let p = 2; p <= 4; p++) await page.click('#page-next');
    expect(await page.textContent('#page-info')).toBe('76–100 of 100');
    expect(await page.isDisabled('#page-next')).toBe(false); // the snapshot was full: there may be older ones
    await page.click('#page-next'); // fetches the jobs older than the snapshot
    await page.waitForSelector(`tr[data-job-id="${ids[0]}"]`, { timeout: 10_000 });
    expect(await page.textContent('#page-info')).toBe('101–108 of 108');
    expect(await page.isDisabled('#page-next')).toBe(true);
    // an older job fetched that way is live too
    await api(REPORT, { input: { jobId: ids[0], completed: 5 } });
    await waitForRow(page, ids[0]!, 'data-percent', '50');
    await page.close();
  });

  it('opens a finished 2,000-step training run with its whole loss curve and history, and draws a live run as it goes', async () => {
    const publish = `mutation($runId: ID!, $events: [TrainingEventInput!]!) { publishTrainingEvents(runId: $runId, events: $events) }`;
    const loss = (step: number) => 2.4 * Math.exp(-step / 500) + 0.35 + 0.04 * Math.sin(step / 7);
    const run = (await api(CREATE, { input: { name: 'fine-tune llama-3.1-8b lora r64', kind: 'TRAINING', tags: ['lora'] } })).createBatchJob.id;
    for (let from = 1; from <= 2_000; from += 500) {
      const events = Array.from({ length: 500 }, (_, i) => ({ progress: { globalStep: from + i, maxStep: 2_000, loss: loss(from + i), learningRate: 2e-4 } }));
      await api(publish, { runId: run, events });
    }
    await api(COMPLETE, { id: run });

    const page = await context.newPage();
    const consoleErrors: string[] = [];
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    await page.goto(`${origin()}/jobs/${run}#token=${tok}`);
    // the whole run on open: uPlot's data spans step 1 to 2,000 (metricSeries), not the steps since the page opened
    await page.waitForFunction(() => Number(document.querySelector('#chart-card')?.getAttribute('data-points')) > 0, undefined, { timeout: 10_000 });
    expect(await page.getAttribute('#chart-card', 'data-x-min')).toBe('1');
    expect(await page.getAttribute('#chart-card', 'data-x-max')).toBe('2000');
    const points = Number(await page.getAttribute('#chart-card', 'data-points'));
    expect(points).toBeGreaterThan(100);
    expect(points).toBeLessThanOrEqual(1_000);
    expect(await page.$$eval('#chart .u-axis', (axes) => axes.length)).toBe(2); // uPlot drew both axes
    expect(await page.getAttribute('#chart-card', 'data-axes')).toBe('training step | loss'); // the labels uPlot draws on its axes
    // the event log opens with the run's history, PROGRESS rows folded into one counted row
    await page.waitForSelector('#events-body tr[data-type="COMPLETED"]', { timeout: 10_000 });
    const types = await page.$$eval('#events-body tr', (rows) => rows.map((r) => r.getAttribute('data-type')).reverse());
    expect(types).toContain('STARTED');
    expect(types.at(-1)).toBe('COMPLETED');
    // (how many PROGRESS events there are depends on conflation at RUNWATCH_PROGRESS_HZ; each run of them is one row)
    expect(types.some((t, i) => t === 'PROGRESS' && types[i + 1] === 'PROGRESS')).toBe(false);
    expect(types.filter((t) => t === 'PROGRESS').length).toBeLessThanOrEqual(1);
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-training.png'), fullPage: true });

    // a live run: the chart opens with what was reported, then grows with each new step
    const live = (await api(CREATE, { input: { name: 'fine-tune live', kind: 'TRAINING' } })).createBatchJob.id;
    await api(publish, { runId: live, events: Array.from({ length: 300 }, (_, i) => ({ progress: { globalStep: i + 1, maxStep: 500, loss: loss(i + 1) } })) });
    await page.goto(`${origin()}/jobs/${live}`);
    await page.waitForFunction(() => document.querySelector('#chart-card')?.getAttribute('data-x-max') === '300', undefined, { timeout: 10_000 });
    for (const step of [350, 400, 450]) {
      await api(publish, { runId: live, events: [{ progress: { globalStep: step, maxStep: 500, loss: loss(step) } }] });
      await page.waitForFunction((s) => document.querySelector('#chart-card')?.getAttribute('data-x-max') === String(s), step, { timeout: 10_000 });
    }
    expect(await page.getAttribute('#chart-card', 'data-x-min')).toBe('1');
    // live PROGRESS events join the folded row instead of stacking up
    await page.waitForFunction(() => document.querySelector('#events-body tr')?.children[2]?.textContent === '450/500', undefined, { timeout: 10_000 });
    const liveTypes = await page.$$eval('#events-body tr', (rows) => rows.map((r) => r.getAttribute('data-type')));
    expect(liveTypes.some((t, i) => t === 'PROGRESS' && liveTypes[i + 1] === 'PROGRESS')).toBe(false);
    expect(consoleErrors).toEqual([]);
    await page.close();
  });

  it('shows an evaluation’s results (failed first) and metrics, and a pipeline’s steps as a timeline, with the log tail', async () => {
    const ITEMS = `mutation($id: ID!, $items: [ItemResultInput!]!) { reportItems(jobId: $id, items: $items) { id } }`;
    const LOGS = `mutation($id: ID!, $lines: [LogLineInput!]!) { appendLogs(jobId: $id, lines: $lines) }`;
    const evalJob = (await api(CREATE, { input: { name: 'qa eval: support-bot v7 on 200 questions', kind: 'EVALUATION', total: 200 } })).createBatchJob.id;
    for (let batch = 0; batch < 4; batch++) {
      const items = Array.from({ length: 50 }, (_, i) => {
        const n = batch * 50 + i;
        const ok = n % 9 !== 4;
        return { itemId: `q${n + 1}`, ok, latencySeconds: 0.3 + (n % 13) / 10, metrics: [{ name: 'accuracy', value: ok ? 1 : 0 }, { name: 'bleu', value: 0.2 + (n % 7) / 10 }], ...(ok ? {} : { error: `wrong answer to q${n + 1}` }) };
      });
      await api(ITEMS, { id: evalJob, items });
    }
    await api(LOGS, { id: evalJob, lines: [{ level: 'INFO', message: 'loaded 200 questions', source: 'grader' }, { level: 'WARNING', message: 'q5 took 1.6 s', source: 'grader' }] });
    const page = await context.newPage();
    const consoleErrors: string[] = [];
    page.on('pageerror', (e) => consoleErrors.push(e.message));
    await page.goto(`${origin()}/jobs/${evalJob}#token=${tok}`);
    await page.waitForSelector('#items-body tr', { timeout: 10_000 });
    const oks = await page.$$eval('#items-body tr', (rows) => rows.map((r) => r.getAttribute('data-ok')));
    expect(oks[0]).toBe('false'); // failed first
    expect(oks.lastIndexOf('false')).toBeLessThan(oks.indexOf('true'));
    expect(await page.textContent('#items-body tr[data-ok="false"] td:last-child')).toMatch(/^wrong answer to q\d+$/);
    await page.waitForSelector('#metrics-body tr[data-metric="accuracy"]', { timeout: 10_000 });
    expect(await page.$$eval('#metrics-body tr[data-metric="accuracy"] td', (tds) => tds.map((t) => t.textContent))).toEqual(['accuracy', '1', '0.89', '0', '1', '200']);
    expect(await page.textContent('#success-rate')).toBe('success rate 89.0%');
    await page.waitForSelector('#logs .logline[data-level="WARNING"]', { timeout: 10_000 });
    expect(await page.textContent('#logs')).toContain('q5 took 1.6 s');
    await page.waitForFunction(() => Number(document.querySelector('#chart-card')?.getAttribute('data-points')) > 0, undefined, { timeout: 10_000 });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-evaluation.png'), fullPage: true });

    // a pipeline: its stages as steps on a timeline, each with its duration
    const pipe = (await api(CREATE, { input: { name: 'ingest PDFs: contracts 2026-Q4', kind: 'PIPELINE', total: 300 } })).createBatchJob.id;
    await page.goto(`${origin()}/jobs/${pipe}`);
    await page.waitForSelector('#job-name:has-text("ingest PDFs")', { timeout: 10_000 });
    for (const [stage, completed] of [['download', 100], ['ocr', 200], ['chunk', 250]] as const) {
      await api(REPORT, { input: { jobId: pipe, completed, stage } });
      await page.waitForSelector(`#steps .step[data-step="${stage}"][data-status="RUNNING"]`, { timeout: 10_000 });
    }
    await api(`mutation($id: ID!) { reportStep(jobId: $id, name: "embed", status: FAILED, error: "embedding service 503") { id } }`, { id: pipe });
    await page.waitForSelector('#steps .step[data-step="embed"][data-status="FAILED"]', { timeout: 10_000 });
    expect(await page.$$eval('#steps .step', (steps) => steps.map((s) => s.getAttribute('data-step')))).toEqual(['download', 'ocr', 'chunk', 'embed']);
    expect(await page.getAttribute('#steps .step[data-step="download"]', 'data-status')).toBe('COMPLETED');
    expect(await page.textContent('#steps .step[data-step="download"] .stepdur')).toMatch(/^\d+(\.\d)?s/);
    expect(await page.textContent('#steps .step[data-step="embed"] .steperr')).toBe('embedding service 503');
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-pipeline.png'), fullPage: true });
    expect(consoleErrors).toEqual([]);
    await page.close();
  });

  it('opens a share link on the job page with its live event log', async () => {
    const id = (await api(CREATE, { input: { name: 'shared embedding run', total: 40 } })).createBatchJob.id;
    const other = (await api(CREATE, { input: { name: 'not shared', total: 1 } })).createBatchJob.id;
    const share = (await api(SHARE, { id })).createJobViewToken;
    const page = await context.newPage();
    await page.goto(`${origin()}${share.dashboardPath}`);
    await page.waitForSelector('#job-name:has-text("shared embedding run")', { timeout: 10_000 });
    expect(page.url()).not.toContain('token='); // the token leaves the address bar
    await page.waitForSelector('#events-body tr[data-type="SNAPSHOT"]', { timeout: 10_000 });
    await api(REPORT, { input: { jobId: id, completed: 20, stage: 'embed' } });
    await api(REPORT, { input: { jobId: id, completed: 40 } });
    await api(COMPLETE, { id });
    await page.waitForSelector('#events-body tr[data-type="COMPLETED"]', { timeout: 10_000 });
    expect(await page.textContent('#job-status')).toBe('COMPLETED');
    const types = await page.$$eval('#events-body tr', (rows) => rows.map((r) => r.getAttribute('data-type')).reverse());
    expect(types[0]).toBe('SNAPSHOT');
    expect(types).toContain('STARTED');
    expect(types.at(-1)).toBe('COMPLETED');
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-job.png') });
    // the share token sees nothing else
    await page.goto(`${origin()}/jobs/${other}`);
    await page.waitForSelector('#notice:has-text("No job")', { timeout: 10_000 });
    await page.close();
  });
});
