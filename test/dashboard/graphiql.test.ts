/**
 * GraphiQL as a user opens it on a machine without internet: Debian's
 * chromium (never a downloaded one) with every request to another origin
 * aborted. The page renders, loads the schema (its docs explorer lists
 * BatchJob), and a subscription typed into the editor streams a job to
 * COMPLETED; its first tab opens with the Variables pane and the example clear
 * of the toolbar at 1440×900. Screenshots go to test-artifacts/.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { gql } from '../helpers/clients.js';
import { startTestServer } from '../helpers/servers.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = 'test-artifacts';

let browser: Browser;
let server: RunningServer;
/** Requests to any other origin (all aborted, as on a machine without internet). */
const foreign: string[] = [];
/** Uncaught errors of the pages' scripts. */
const pageErrors: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`chromium is not installed at ${CHROMIUM}: the GraphiQL test needs it. Install it with \`apt-get install -y chromium\` (or run \`bash .ci/run\`, which does).`);
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  // Dev mode (no secret): the page has the dev token in its headers, as after `npm start`.
  server = await startTestServer({ config: { jwtSecret: undefined } });
}, 60_000);

afterAll(async () => {
  await browser?.close();
});

/**
 * GraphiQL in a fresh browser context (its own storage, so each test starts from the default tab, in whichever
 * order the tests run), with every request to another origin aborted.
 */
async function openGraphiQL(viewport = { width: 1400, height: 900 }): Promise<Page> {
  const context = await browser.newContext({ viewport });
  const origin = new URL(server.url).origin;
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (new URL(url).origin === origin) return route.continue();
    foreign.push(url);
    return route.abort('internetdisconnected');
  });
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(server.url, { waitUntil: 'load', timeout: 60_000 });
  await page.waitForSelector('.graphiql-container', { timeout: 30_000 });
  return page;
}

describe('GraphiQL offline', () => {
  it('renders from the server alone and its docs explorer lists BatchJob', async () => {
    const page = await openGraphiQL();
    // The default tab is runwatch's example, with the dev token in the headers.
    await page.waitForFunction(() => document.querySelector('.graphiql-query-editor')?.textContent?.includes('WatchJob'), undefined, { timeout: 30_000 });

    await page.click('[aria-label="Show Documentation Explorer"]', { timeout: 10_000 });
    // "All Schema Types" appears once the introspection query has been answered.
    const batchJob = page.locator('.graphiql-doc-explorer a', { hasText: /^BatchJob$/ }).first();
    await batchJob.waitFor({ timeout: 30_000 });
    await batchJob.click();
    await page.waitForFunction(() => document.querySelector('.graphiql-doc-explorer-title')?.textContent === 'BatchJob', undefined, { timeout: 10_000 });
    expect(await page.locator('.graphiql-doc-explorer').innerText()).toContain('etaSeconds');
    await page.screenshot({ path: join(ARTIFACTS, 'graphiql-docs.png') });

    expect(pageErrors).toEqual([]);
    expect(foreign).toEqual([]);
  }, 120_000);

  it('opens the first tab with the Variables pane showing runId, and the whole example clear of the toolbar at 1440×900', async () => {
    const page = await openGraphiQL({ width: 1440, height: 900 });
    await page.waitForFunction(() => document.querySelector('.graphiql-query-editor')?.textContent?.includes('WatchJob'), undefined, { timeout: 30_000 });
    await page.screenshot({ path: join(ARTIFACTS, 'graphiql-first-tab.png') });
    // The Variables tab is the active one and its editor is on screen with the example's variable.
    expect(await page.locator('.graphiql-editor-tools button[data-name="variables"]').getAttribute('class')).toMatch(/\bactive\b/);
    const variables = page.locator('.graphiql-editor-tool .graphiql-editor').filter({ hasText: 'runId' });
    await variables.waitFor({ state: 'visible', timeout: 10_000 });
    const box = (await variables.boundingBox())!;
    expect(box.height).toBeGreaterThan(60);
    expect(box.y + box.height).toBeLessThanOrEqual(900);
    // Every line of the example (Monaco draws spaces as U+00A0) ends left of the toolbar (run, prettify, …) and above the Variables pane.
    const layout = await page.evaluate(() => {
      const rect = (el: Element | null) => el?.getBoundingClientRect();
      const spans = [...document.querySelectorAll('.graphiql-query-editor .view-line > span')].filter((s) => s.textContent?.trim());
      return {
        toolbarLeft: rect(document.querySelector('.graphiql-toolbar'))!.left,
        editorBottom: rect(document.querySelector('.graphiql-query-editor'))!.bottom,
        lines: spans.map((s) => ({ text: s.textContent!.replace(/\u00a0/g, ' '), right: rect(s)!.right, bottom: rect(s)!.bottom })),
      };
    });
    const text = layout.lines.map((l) => l.text).join('\n');
    expect(text).toContain('mutation CreateJob');
    expect(text).toContain('job { status completed total stage etaSeconds }');
    expect(layout.lines.filter((l) => l.right > layout.toolbarLeft).map((l) => l.text)).toEqual([]);
    expect(layout.lines.filter((l) => l.bottom > layout.editorBottom).map((l) => l.text)).toEqual([]);
    // The dev token is still in the Headers tab.
    await page.click('.graphiql-editor-tools button[data-name="headers"]');
    await page.locator('.graphiql-editor-tool .graphiql-editor').filter({ hasText: 'Authorization' }).waitFor({ state: 'visible', timeout: 10_000 });
    expect(pageErrors).toEqual([]);
  }, 120_000);

  it('streams a job to COMPLETED from a subscription typed into the editor', async () => {
    const page = await openGraphiQL();
    const tok = server.devToken!;
    const id = (await gql(server.url, tok, 'mutation { createBatchJob(input: { name: "typed in GraphiQL", total: 10 }) { id } }')).createBatchJob.id as string;

    // Replace the example with a typed subscription (one line: the editor closes brackets and quotes as we type).
    await page.click('.graphiql-query-editor .view-lines');
    await page.keyboard.press('ControlOrMeta+A');
    await page.keyboard.press('Delete');
    await page.keyboard.type(`subscription { runProgress(runId: "${id}") { type job { status completed total } } }`);
    await page.keyboard.press('Escape'); // close any suggestion list
    await page.waitForFunction((jobId) => document.querySelector('.graphiql-query-editor')?.textContent?.includes(jobId), id, { timeout: 10_000 });
    // GraphiQL takes the operation to run from its tab state, which it updates after a debounce: clicking
    // before that runs the old tab (or nothing). Wait until the typed document is the tab's query.
    await page.waitForFunction(
      (jobId) => {
        const state = JSON.parse(localStorage.getItem('graphiql:tabState') ?? '{}') as { tabs?: { query?: string; operationName?: string | null }[]; activeTabIndex?: number };
        const tab = state.tabs?.[state.activeTabIndex ?? 0];
        return Boolean(tab?.query?.includes(jobId) && !tab.operationName);
      },
      id,
      { timeout: 10_000 },
    );
    await page.click('.graphiql-execute-button');

    const response = () => page.locator('.graphiql-response').innerText();
    await page
      .waitForFunction(() => document.querySelector('.graphiql-response')?.textContent?.includes('SNAPSHOT'), undefined, { timeout: 30_000 })
      .catch(async (error: Error) => {
        await page.screenshot({ path: join(ARTIFACTS, 'graphiql-subscription-failed.png') });
        const editor = await page.locator('.graphiql-query-editor').innerText();
        throw new Error(`${error.message}; the editor shows: ${editor.slice(0, 400)}; the response pane shows: ${(await response()).slice(0, 800)}`);
      });
    await gql(server.url, tok, 'mutation($id: ID!) { reportProgress(input: { jobId: $id, completed: 10 }) { id } }', { id });
    await gql(server.url, tok, 'mutation($id: ID!) { completeBatchJob(id: $id) { id } }', { id });
    await page
      .waitForFunction(() => /"COMPLETED"/.test(document.querySelector('.graphiql-response')?.textContent ?? ''), undefined, { timeout: 30_000 })
      .catch(async (error: Error) => {
        throw new Error(`${error.message}; the response pane shows: ${(await response()).slice(0, 800)}`);
      });
    await page.screenshot({ path: join(ARTIFACTS, 'graphiql-subscription.png') });
    expect((await response()).replace(/\s+/g, ' ')).toMatch(/"status": "COMPLETED", "completed": 10, "total": 10/);
    expect(foreign).toEqual([]);
  }, 120_000);
});
