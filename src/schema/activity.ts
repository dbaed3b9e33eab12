/**
 * Account activity: the `activity` query and subscription, budget and usage.
 */
import type { ResourceTotals } from '../domain/activity.js';
import { ACTIVITY_SCOPES, HINT_KINDS } from '../domain/activity.js';
import type { BudgetView } from '../domain/budget.js';
import type { ActiveJob, ActivityEvent, ActivitySnapshot } from '../services/activity.js';
import { builder } from './builder.js';
import { BatchJobRef, ResourcesRef } from './jobs.js';

type Ev<K extends ActivityEvent['type']> = Extract<ActivityEvent, { type: K }>;

export const ActivityScopeEnum = builder.enumType('ActivityScope', {
  description: "How wide an activity view is; always inside the token's institute.",
  values: {
    USER: { description: "Your own jobs in the token's environment." },
    ENVIRONMENT: { description: "Every job of the token's environment (institute + environment)." },
    INSTITUTE: { description: 'Every job of every environment of the institute.' },
  } satisfies Record<(typeof ACTIVITY_SCOPES)[number], unknown>,
});

export const ActivityHintKindEnum = builder.enumType('ActivityHintKind', {
  description: 'What an ActivityHint is about.',
  values: {
    JOB_STARTED: { description: 'A job started (its first progress).' },
    JOB_FINISHED: { description: 'A job completed.' },
    JOB_FAILED: { description: 'A job failed.' },
    JOB_CANCELLED: { description: 'A job was cancelled.' },
    JOB_STALLED: { description: 'A RUNNING job sent no report for its `heartbeatSeconds` (it may be stuck or gone).' },
    JOB_RECOVERED: { description: 'A stalled job reported again.' },
    NEAR_BUDGET: { description: 'Usage reached 90% of the budget.' },
    OVER_BUDGET: { description: 'Usage passed the budget (usage is still recorded; nothing is stopped).' },
  } satisfies Record<(typeof HINT_KINDS)[number], unknown>,
});

const ActiveJobRef = builder.objectRef<ActiveJob>('ActiveJob').implement({
  description: 'A RUNNING or PAUSED job and what it holds.',
  fields: (t) => ({
    job: t.field({ type: BatchJobRef, resolve: (a) => a.job }),
    resources: t.field({ type: ResourcesRef, description: 'As last reported; zeros when never reported.', resolve: (a) => a.resources }),
  }),
});

const ResourceTotalsRef = builder.objectRef<ResourceTotals>('ResourceTotals').implement({
  description: 'Sums over the active jobs of a scope.',
  fields: (t) => ({
    jobs: t.exposeInt('jobs', { description: 'Active jobs.' }),
    containers: t.exposeInt('containers'),
    cpuCores: t.exposeFloat('cpuCores'),
    memoryGb: t.exposeFloat('memoryGb', { description: 'GB.' }),
    gpus: t.exposeInt('gpus'),
  }),
});

const budgetFields = (t: any) => ({
  budgetTotal: t.exposeFloat('budgetTotal', { nullable: true, description: 'The budget, in `currency`; null until an admin sets one.' }),
  budgetUsed: t.exposeFloat('budgetUsed', { description: 'Usage recorded so far, in `currency`.' }),
  budgetRemaining: t.exposeFloat('budgetRemaining', { nullable: true, description: 'budgetTotal − budgetUsed; negative when over budget; null without a budget.' }),
  currency: t.exposeString('currency', { nullable: true, description: 'ISO 4217 code; null until a budget is set.' }),
  percentUsed: t.exposeFloat('percentUsed', { nullable: true, description: 'budgetUsed / budgetTotal × 100; null without a (non-zero) budget.' }),
});

export const BudgetRef = builder.objectRef<BudgetView>('Budget').implement({
  description: "A tenant's (institute + environment) budget and usage.",
  fields: (t) => budgetFields(t),
});

const ActivitySnapshotRef = builder.objectRef<ActivitySnapshot>('ActivitySnapshot').implement({
  description: 'The activity of a scope now (query `activity`).',
  fields: (t) => ({
    scope: t.expose('scope', { type: ActivityScopeEnum }),
    activeJobs: t.field({ type: [ActiveJobRef], description: 'Active jobs, oldest first.', resolve: (s) => s.activeJobs }),
    totals: t.field({ type: ResourceTotalsRef, resolve: (s) => s.totals }),
    budget: t.field({ type: BudgetRef, description: "The token's tenant's budget.", resolve: (s) => s.budget }),
    timestamp: t.expose('timestamp', { type: 'DateTime' }),
  }),
});

const ActivityUpdateRef = builder.objectRef<Ev<'ActivityUpdate'>>('ActivityUpdate').implement({
  description: 'The active jobs of the scope and their totals: first as a snapshot, then whenever the set or its resources change (at most 4 a second per scope).',
  isTypeOf: (e) => (e as ActivityEvent).type === 'ActivityUpdate',
  fields: (t) => ({
    scope: t.expose('scope', { type: ActivityScopeEnum }),
    activeJobs: t.field({ type: [ActiveJobRef], description: 'Active jobs, oldest first.', resolve: (s) => s.activeJobs }),
    totals: t.field({ type: ResourceTotalsRef, resolve: (s) => s.totals }),
    snapshot: t.exposeBoolean('snapshot', { description: 'True for the first event of the stream.' }),
    timestamp: t.expose('timestamp', { type: 'DateTime' }),
  }),
});

const BillingUpdateRef = builder.objectRef<Ev<'BillingUpdate'>>('BillingUpdate').implement({
  description: "A tenant's budget after usage was recorded or the budget was set. On INSTITUTE scope, every environment's.",
  isTypeOf: (e) => (e as ActivityEvent).type === 'BillingUpdate',
  fields: (t) => ({
    ...budgetFields(t),
    environmentId: t.exposeID('environmentId', { description: 'The environment whose budget this is.' }),
    timestamp: t.expose('timestamp', { type: 'DateTime' }),
  }),
});

const ActivityHintRef = builder.objectRef<Ev<'ActivityHint'>>('ActivityHint').implement({
  description: 'A short notice: a job started, finished, failed or was cancelled; usage is near or over budget. At most about one a second per scope.',
  isTypeOf: (e) => (e as ActivityEvent).type === 'ActivityHint',
  fields: (t) => ({
    kind: t.expose('kind', { type: ActivityHintKindEnum }),
    message: t.exposeString('message'),
    jobId: t.exposeID('jobId', { nullable: true, description: 'The job, for job hints.' }),
    environmentId: t.id({ description: 'The environment it happened in.', resolve: (h) => h.environment }),
    droppedBefore: t.exposeInt('droppedBefore', { description: 'Hints dropped by throttling just before this one (0: none).' }),
    timestamp: t.expose('timestamp', { type: 'DateTime' }),
  }),
});

const ContextMismatchRef = builder.objectRef<Ev<'ContextMismatch'>>('ContextMismatch').implement({
  description: "The `environmentId` asked for is not the token's environment; the stream completes after this.",
  isTypeOf: (e) => (e as ActivityEvent).type === 'ContextMismatch',
  fields: (t) => ({
    requestedEnvironmentId: t.exposeID('requestedEnvironmentId'),
    tokenEnvironmentId: t.exposeID('tokenEnvironmentId'),
    message: t.exposeString('message'),
    timestamp: t.expose('timestamp', { type: 'DateTime' }),
  }),
});

export const ActivityEventUnion = builder.unionType('ActivityEvent', {
  description: 'One event of the `activity` stream.',
  types: [ActivityUpdateRef, BillingUpdateRef, ActivityHintRef, ContextMismatchRef],
  resolveType: (e) => e.type,
});

builder.queryField('activity', (t) =>
  t.field({
    type: ActivitySnapshotRef,
    authScopes: { 'activity:read': true },
    description: "The active jobs of a scope with their resources and totals, and the token's tenant's budget. Needs `activity:read`.",
    args: { scope: t.arg({ type: ActivityScopeEnum, defaultValue: 'ENVIRONMENT' }) },
    resolve: (_root, args, ctx) => ctx.services.activity.snapshot(ctx.viewer, args.scope ?? 'ENVIRONMENT'),
  }),
);

builder.subscriptionField('activity', (t) =>
  t.field({
    type: ActivityEventUnion,
    authScopes: { 'activity:read': true },
    description: [
      'Live account activity of a scope. First an ActivityUpdate snapshot (`snapshot: true`); then an ActivityUpdate whenever the set of active jobs or their resources change',
      '(conflated to at most 4 a second per scope), a BillingUpdate whenever usage is recorded or the budget set, and ActivityHints (about one a second at most).',
      "With `environmentId` other than the token's environment: one ContextMismatch, then the stream completes. Open until you leave. Needs `activity:read`.",
    ].join(' '),
    args: {
      scope: t.arg({ type: ActivityScopeEnum, defaultValue: 'ENVIRONMENT' }),
      environmentId: t.arg.id({ description: "The environment you expect to watch; a ContextMismatch when it is not the token's." }),
    },
    subscribe: (_root, args, ctx) =>
      ctx.services.activity.openStream(ctx.viewer, args.scope ?? 'ENVIRONMENT', args.environmentId == null ? null : String(args.environmentId), ctx.transport),
    resolve: (e) => e,
  }),
);

builder.mutationFields((t) => ({
  recordUsage: t.field({
    type: BudgetRef,
    authScopes: { 'jobs:write': true },
    description:
      "Records usage (cost, in the budget's currency) of a job against its tenant's budget and returns the budget after it. Going over budget is allowed: it raises an OVER_BUDGET hint. Needs `jobs:write`. Raises NOT_FOUND (no such job in your tenant), BAD_USER_INPUT (amount not positive and finite).",
    args: { jobId: t.arg.id({ required: true }), amount: t.arg.float({ required: true, description: 'Positive, in currency units (e.g. 0.25 for 25 cents).' }) },
    resolve: (_root, args, ctx) => ctx.services.activity.recordUsage(ctx.viewer, String(args.jobId), args.amount),
  }),
  setBudget: t.field({
    type: BudgetRef,
    authScopes: { admin: true },
    description: "Sets the token's tenant's budget (usage so far is kept). Needs `admin`. Raises BAD_USER_INPUT (negative total, currency not an ISO 4217 code).",
    args: { total: t.arg.float({ required: true, description: 'In currency units, ≥ 0.' }), currency: t.arg.string({ required: true, description: 'ISO 4217, e.g. EUR.' }) },
    resolve: (_root, args, ctx) => ctx.services.activity.setBudget(ctx.viewer, args.total, args.currency),
  }),
}));
