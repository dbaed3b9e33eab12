/**
 * Topic names, defined once. A topic is the name of one ordered stream of
 * events (a topic log with history, or a notice channel without one); the
 * backends store and publish topics without knowing what they mean, and take
 * the few facts about names they need (which topic logs belong to a job) as
 * parameters ({@link JOB_OWNED}).
 *
 * Names are `<kind>:<id>`; ids and tenant parts are URI-encoded where they are
 * free text, so that `:` inside them cannot make two topics collide.
 */
import type { Tenant } from './job.js';

const part = (s: string) => encodeURIComponent(s);

/** Prefix of job topics (`job:<id>`): the job's record and its runProgress events. */
export const JOB_PREFIX = 'job:';
/** The topic of a job's events (and, as a topic log, its record). */
export const jobTopic = (jobId: string) => `${JOB_PREFIX}${jobId}`;

/** Prefix of training topics. */
export const TRAINING_PREFIX = 'training:';
/** The topic log of a training run's events (TrainingService). */
export const trainingTopic = (runId: string) => `${TRAINING_PREFIX}${runId}`;

/** Prefix of command topics. */
export const COMMANDS_PREFIX = 'commands:';
/** The topic log of a job's commands (CommandService). */
export const commandsTopic = (runId: string) => `${COMMANDS_PREFIX}${runId}`;

/** Prefix of item-result topics. */
export const ITEMS_PREFIX = 'items:';
/** The topic log of a job's newest item results, one event per item (ResultsService, itemResults). */
export const itemsTopic = (jobId: string) => `${ITEMS_PREFIX}${jobId}`;

/** Prefix of metric-history topics. */
export const METRICS_PREFIX = 'metrics:';
/** The topic log whose state is a job's downsampled metric history (metricSeries); it has no events. */
export const metricsTopic = (jobId: string) => `${METRICS_PREFIX}${jobId}`;

/** Prefix of tenant job-list topics (`jobUpdates`). */
export const JOB_LIST_PREFIX = 'joblist:';
/** The topic log of a tenant's job list: one event per created job, status change and (conflated) progress. */
export const jobListTopic = (t: Tenant) => `${JOB_LIST_PREFIX}${part(t.institute)}:${part(t.environment)}`;

/** The activity state of an institute (a topic log whose state is its active jobs). */
export const activityStateTopic = (institute: string) => `activity:${part(institute)}`;
/** The budget of a tenant (a topic log whose state is its Budget). */
export const budgetTopic = (t: Tenant) => `budget:${part(t.institute)}:${part(t.environment)}`;
/** Prefix of every activity notice channel (no history: a notice means "recompute"). */
export const ACTIVITY_NOTICE_PREFIX = 'activity:';
/** Activity notices of an environment. */
export const activityEnvTopic = (inst: string, env: string) => `activity:env:${part(inst)}:${part(env)}`;
/** Activity notices of an institute. */
export const activityInstTopic = (inst: string) => `activity:inst:${part(inst)}`;
/** Activity notices of one user. */
export const activityUserTopic = (inst: string, env: string, user: string) => `activity:user:${part(inst)}:${part(env)}:${part(user)}`;
/** Billing notices of a tenant. */
export const activityBillingTopic = (inst: string, env: string) => `activity:billing:${part(inst)}:${part(env)}`;

/** The topic logs that belong to one job (removed with it when retention ends): its training events, commands, item results and metric history. */
export const jobOwnedTopics = (jobId: string) => [trainingTopic(jobId), commandsTopic(jobId), itemsTopic(jobId), metricsTopic(jobId)];

const JOB_OWNED_PREFIXES = [TRAINING_PREFIX, COMMANDS_PREFIX, ITEMS_PREFIX, METRICS_PREFIX] as const;

/** The job a topic log belongs to (`training:<id>`, `commands:<id>`, `items:<id>`, `metrics:<id>`), or null for account-level logs (activity, budgets, job lists). */
export function ownerJobOf(topic: string): string | null {
  for (const prefix of JOB_OWNED_PREFIXES) if (topic.startsWith(prefix)) return topic.slice(prefix.length);
  return null;
}

/**
 * Which topics a backend keeps together (e.g. in one Redis Cluster slot), so
 * that one atomic commit may touch them all: a job's own topics (its events,
 * training, commands, items, metric history) go with the job; an institute's
 * activity state, budgets and activity notices go with the institute (a commit
 * of the activity state or a budget notifies the institute's notice topics);
 * any other topic stands alone (`{ own: true }`).
 */
export type TopicPlacement = { job: string } | { account: string } | { own: true };

/** The {@link TopicPlacement} of a topic name (see the names above). */
export function placementOf(topic: string): TopicPlacement {
  if (topic.startsWith(JOB_PREFIX)) return { job: topic.slice(JOB_PREFIX.length) };
  const owner = ownerJobOf(topic);
  if (owner !== null) return { job: owner };
  // activity:<inst>, activity:{env,inst,user,billing}:<inst>:…, budget:<inst>:<env> (tenant parts are URI-encoded: no ':').
  const parts = topic.split(':');
  if (parts[0] === 'budget' && parts[1]) return { account: parts[1] };
  if (parts[0] === 'activity') {
    const institute = ['env', 'inst', 'user', 'billing'].includes(parts[1]!) && parts.length > 2 ? parts[2] : parts[1];
    if (institute) return { account: institute };
  }
  return { own: true };
}

/** What a backend needs to know about topic names: which logs a job owns (retention, refusal after the job is gone). */
export interface JobOwnedTopics {
  /** The topic logs removed with a job. */
  of(jobId: string): string[];
  /** The job owning a topic log, or null. */
  ownerOf(topic: string): string | null;
}

/** The default {@link JobOwnedTopics}: training, command, item-result and metric-history logs. */
export const JOB_OWNED: JobOwnedTopics = { of: jobOwnedTopics, ownerOf: ownerJobOf };
