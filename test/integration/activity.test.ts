/**
 * Account activity through the public API, on one in-memory instance and on
 * two instances sharing Redis (jobs report through one, watchers on the
 * other): active jobs and totals per scope, budget and usage, hints,
 * tenant isolation, ContextMismatch.
 */
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RunningServer } from '../../src/server.js';
import { errorCode, gql, gqlHttp, subscribeWs, wsClient, type Collector } from '../helpers/clients.js';
import { freshInstitute, startTestServer, token } from '../helpers/servers.js';

const ACTIVITY = `subscription($scope: ActivityScope, $env: ID) {
  activity(scope: $scope, environmentId: $env) {
    __typename
    ... on ActivityUpdate { scope snapshot activeJobs { job { id status } resources { containers cpuCores memoryGb gpus } } totals { jobs containers cpuCores memoryGb gpus } }
    ... on BillingUpdate { budgetTotal budgetUsed budgetRemaining currency environmentId }
    ... on ActivityHint { kind jobId environmentId droppedBefore hintMessage: message }
    ... on ContextMismatch { requestedEnvironmentId tokenEnvironmentId }
  } }`;
const QUERY = `query($scope: ActivityScope) { activity(scope: $scope) { scope activeJobs { job { id } } totals { jobs containers cpuCores memoryGb gpus } budget { budgetTotal budgetUsed budgetRemaining currency percentUsed } } }`;
const CREATE = `mutation($name: String!) { createBatchJob(input: { name: $name, total: 100 }) { id } }`;
const REPORT = `mutation($input: ReportProgressInput!) { reportProgress(input: $input) { status } }`;
const USAGE = `mutation($jobId: ID!, $amount: Float!) { recordUsage(jobId: $jobId, amount: $amount) { budgetTotal budgetUsed budgetRemaining currency percentUsed } }`;
const BUDGET = `mutation($total: Float!, $currency: String!) { setBudget(total: $total, currency: $currency) { budgetTotal budgetUsed budgetRemaining currency } }`;

const SETUPS = [
  { name: 'one in-memory instance', backend: 'memory' as const, instances: 1 },
  { name: 'two instances on Redis', backend: 'redis' as const, instances: 2 },
];

const R1 = { containers: 1, cpuCores: 4, memoryGb: 16, gpus: 1 };
const R2 = { containers: 2, cpuCores: 8.5, memoryGb: 32, gpus: 2 };
const R3 = { containers: 1, cpuCores: 2, memoryGb: 8, gpus: 0 };

/** The newest ActivityUpdate of a collector. */
const latestUpdate = (c: Collector) => [...c.items].reverse().find((e) => e.__typename === 'ActivityUpdate');
const ids = (u: any) => u.activeJobs.map((a: any) => a.job.id).sort();
const waitForJobs = (c: Collector, expected: string[], what: string) =>
  c.waitFor(() => {
    const u = latestUpdate(c);
    return !!u && JSON.stringify(ids(u)) === JSON.stringify([...expected].sort());
  }, what);

describe.each(SETUPS)('activity on $name', ({ backend, instances }) => {
  let work: RunningServer; // where workers report
  let watch: RunningServer; // where people watch
  let inst: string;
  let u1: string; // user 1, environment e1
  let u2: string; // user 2, environment e1
  let u3: string; // user 3, environment e2
  let admin: string; // admin of e1
  let other: string; // another institute

  beforeAll(async () => {
    work = await startTestServer({ backend });
    watch = instances === 2 ? await startTestServer({ backend }) : work;
  });
  // A fresh institute per test: each test starts with no active job, whatever ran before it (shuffled order).
  beforeEach(async () => {
    inst = freshInstitute();
    u1 = await token({ inst, env: 'e1', sub: 'u1' });
    u2 = await token({ inst, env: 'e1', sub: 'u2' });
    u3 = await token({ inst, env: 'e2', sub: 'u3' });
    admin = await token({ inst, env: 'e1', sub: 'boss', scope: 'admin activity:read' });
    other = await token({ inst: freshInstitute(), env: 'e1', sub: 'u1' });
  });

  const start = async (tok: string, name: string, resources: object) => {
    const id = (await gql(work.url, tok, CREATE, { name })).createBatchJob.id as string;
    await gql(work.url, tok, REPORT, { input: { jobId: id, completed: 1, resources } });
    return id;
  };
  const watchScope = async (tok: string, scope: string) => {
    const c = subscribeWs(wsClient(watch.url, tok), ACTIVITY, { scope }, 'activity');
    await c.waitForCount(1);
    expect(c.items[0]).toMatchObject({ __typename: 'ActivityUpdate', snapshot: true, scope });
    return c;
  };

  it('shows jobs with resources appearing and disappearing at each scope, with totals, and hints', async () => {
    const user = await watchScope(u1, 'USER');
    const env = await watchScope(u1, 'ENVIRONMENT');
    const institute = await watchScope(u1, 'INSTITUTE');
    const foreign = await watchScope(other, 'ENVIRONMENT');
    expect(latestUpdate(env).activeJobs).toEqual([]);

    const j1 = await start(u1, 'u1 training', R1);
    const j2 = await start(u2, 'u2 batch', R2);
    const j3 = await start(u3, 'u3 in e2', R3);
    await waitForJobs(user, [j1], 'USER scope: j1');
    await waitForJobs(env, [j1, j2], 'ENVIRONMENT scope: j1, j2');
    await waitForJobs(institute, [j1, j2, j3], 'INSTITUTE scope: j1..j3');
    expect(latestUpdate(user).totals).toEqual({ jobs: 1, ...R1 });
    expect(latestUpdate(env).totals).toEqual({ jobs: 2, containers: 3, cpuCores: 12.5, memoryGb: 48, gpus: 3 });
    expect(latestUpdate(institute).totals).toEqual({ jobs: 3, containers: 4, cpuCores: 14.5, memoryGb: 56, gpus: 3 });
    expect(latestUpdate(env).activeJobs.find((a: any) => a.job.id === j2)).toMatchObject({ job: { status: 'RUNNING' }, resources: R2 });

    // Resources change → the update follows.
    await gql(work.url, u1, REPORT, { input: { jobId: j1, completed: 2, resources: { ...R1, gpus: 4 } } });
    await user.waitFor(() => latestUpdate(user).totals.gpus === 4, 'USER totals with 4 GPUs');

    await gql(work.url, u1, `mutation($id: ID!) { completeBatchJob(id: $id) { status } }`, { id: j1 });
    await gql(work.url, u2, `mutation($id: ID!) { failBatchJob(id: $id, error: "OOM") { status } }`, { id: j2 });
    await waitForJobs(user, [], 'USER scope: empty');
    await waitForJobs(env, [], 'ENVIRONMENT scope: empty');
    await waitForJobs(institute, [j3], 'INSTITUTE scope: j3 only');
    expect(latestUpdate(institute).totals).toEqual({ jobs: 1, ...R3 });

    // Hints, throttled to about one a second: all four job hints reach the environment's watchers, each job's in
    // order. Two jobs' hints may interleave either way: the activity projector applies different jobs' changes
    // concurrently (one job's in order).
    const hintsOf = () => env.items.filter((e) => e.__typename === 'ActivityHint').map((h) => `${h.kind}:${h.jobId}`);
    await env.waitFor(() => hintsOf().length >= 4, 'the four job hints');
    const hints = hintsOf();
    expect([...hints].sort()).toEqual([`JOB_FAILED:${j2}`, `JOB_FINISHED:${j1}`, `JOB_STARTED:${j1}`, `JOB_STARTED:${j2}`].sort());
    expect(hints.indexOf(`JOB_STARTED:${j1}`)).toBeLessThan(hints.indexOf(`JOB_FINISHED:${j1}`));
    expect(hints.indexOf(`JOB_STARTED:${j2}`)).toBeLessThan(hints.indexOf(`JOB_FAILED:${j2}`));
    // USER scope only hears of the user's own jobs.
    await user.waitFor((items) => items.some((e) => e.kind === 'JOB_FINISHED'), 'the USER JOB_FINISHED hint');
    expect(user.items.filter((e) => e.__typename === 'ActivityHint').every((h) => h.jobId === j1)).toBe(true);

    // The query agrees.
    const q = (await gql(watch.url, u1, QUERY, { scope: 'INSTITUTE' })).activity;
    expect(q.activeJobs.map((a: any) => a.job.id)).toEqual([j3]);

    // Tenant B: its own job shows up; nothing of tenant A ever did.
    const mine = await start(other, 'other tenant', R1);
    await waitForJobs(foreign, [mine], "tenant B's own job");
    const seen = JSON.stringify(foreign.items);
    for (const id of [j1, j2, j3]) expect(seen).not.toContain(id);
    expect(foreign.items.filter((e) => e.__typename === 'BillingUpdate')).toEqual([]);
    for (const c of [user, env, institute, foreign]) c.dispose();
  });

  it('keeps budget arithmetic through recordUsage, going over budget with a hint, not an error', async () => {
    const env = await watchScope(u1, 'ENVIRONMENT');
    const foreign = await watchScope(other, 'ENVIRONMENT');
    const job = await start(u1, 'costly', R1);
    const worker = await token({ inst, env: 'e1', sub: 'u1', scope: 'jobs:read jobs:write activity:read' });
    const denied = await gqlHttp(work.url, worker, BUDGET, { total: 10, currency: 'EUR' });
    expect(errorCode(denied.body)).toBe('FORBIDDEN');
    expect((await gql(work.url, admin, BUDGET, { total: 10, currency: 'EUR' })).setBudget).toEqual({
      budgetTotal: 10,
      budgetUsed: 0,
      budgetRemaining: 10,
      currency: 'EUR',
    });
    expect((await gql(work.url, worker, USAGE, { jobId: job, amount: 4.5 })).recordUsage).toMatchObject({ budgetUsed: 4.5, budgetRemaining: 5.5 });
    expect((await gql(work.url, u1, USAGE, { jobId: job, amount: 4.6 })).recordUsage).toMatchObject({ budgetUsed: 9.1, budgetRemaining: 0.9 });
    const over = (await gql(work.url, u1, USAGE, { jobId: job, amount: 1.0 })).recordUsage;
    expect(over.budgetUsed).toBe(10.1);
    expect(over.budgetRemaining).toBeCloseTo(-0.1, 9);
    expect(over.percentUsed).toBeCloseTo(101, 9);

    await env.waitFor((items) => items.some((e) => e.kind === 'OVER_BUDGET'), 'the OVER_BUDGET hint');
    const billing = env.items.filter((e) => e.__typename === 'BillingUpdate');
    expect(billing.map((b) => b.budgetUsed)).toEqual([0, 4.5, 9.1, 10.1]);
    expect(billing.at(-1)).toMatchObject({ budgetTotal: 10, currency: 'EUR', environmentId: 'e1' });
    const budgetHints = env.items.filter((e) => e.kind === 'NEAR_BUDGET' || e.kind === 'OVER_BUDGET').map((e) => e.kind);
    expect(budgetHints).toEqual(['NEAR_BUDGET', 'OVER_BUDGET']);

    const q = (await gql(watch.url, u1, QUERY, { scope: 'ENVIRONMENT' })).activity.budget;
    expect(q).toMatchObject({ budgetTotal: 10, budgetUsed: 10.1, currency: 'EUR' });
    // Other environments and institutes have their own (empty) budget, and cannot record usage on this job.
    expect((await gql(watch.url, u3, QUERY, {})).activity.budget).toMatchObject({ budgetTotal: null, budgetUsed: 0 });
    expect((await gql(watch.url, other, QUERY, {})).activity.budget).toMatchObject({ budgetTotal: null, budgetUsed: 0 });
    expect(errorCode((await gqlHttp(work.url, other, USAGE, { jobId: job, amount: 1 })).body)).toBe('NOT_FOUND');
    expect(errorCode((await gqlHttp(work.url, u1, USAGE, { jobId: job, amount: -1 })).body)).toBe('BAD_USER_INPUT');
    expect(foreign.items.filter((e) => e.__typename !== 'ActivityUpdate')).toEqual([]);
    env.dispose();
    foreign.dispose();
  });

  it('answers a foreign environmentId with ContextMismatch, then completes; needs activity:read', async () => {
    const c = subscribeWs(wsClient(watch.url, u1), ACTIVITY, { scope: 'ENVIRONMENT', env: 'e2' }, 'activity');
    const items = await c.done();
    expect(items).toEqual([{ __typename: 'ContextMismatch', requestedEnvironmentId: 'e2', tokenEnvironmentId: 'e1' }]);
    const same = subscribeWs(wsClient(watch.url, u1), ACTIVITY, { scope: 'USER', env: 'e1' }, 'activity');
    await same.waitForCount(1);
    expect(same.items[0].__typename).toBe('ActivityUpdate');
    same.dispose();
    const noScope = await token({ inst, env: 'e1', scope: 'jobs:read' });
    expect(errorCode((await gqlHttp(watch.url, noScope, QUERY, {})).body)).toBe('FORBIDDEN');
  });
});
