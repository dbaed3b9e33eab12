/**
 * The job index of the Redis backend: what a job has beyond its topic log
 * (redis-log.ts) — the tenant's index, the idempotency table and retention —
 * and the layout of jobs' logs. Every script here touches one slot: the
 * job's (its partition's tag) or the tenant's; a create spans the two in
 * ordered steps (see {@link RedisJobStore.create}). Key names: redis-keys.ts;
 * the backend's wiring: redis.ts.
 */
import { DomainError, notFound } from '../domain/errors.js';
import type { JobChange, JobEvent, JobRecord, Tenant } from '../domain/job.js';
import type { StepRecord } from '../domain/steps.js';
import { creationChange, updateChange } from '../domain/changes.js';
import { JOB_OWNED, jobTopic, type JobOwnedTopics } from '../domain/topics.js';
import type { RedisKeyspace } from './redis-keys.js';
import { stepJsonOf } from './step-json.js';
import { guard, type RedisClient, type RedisLogLayout, type RedisTopicLogStore } from './redis-log.js';
import { matchesFilter, type HistoryRead, type JobFilter, type JobStore, type ListPosition, type RetentionOptions } from './types.js';

/** Most expired jobs one sweep step removes from the indexes. */
const SWEEP_BATCH = 500;
const IDEMPOTENCY_TTL_SECONDS = 7 * 24 * 3600;
/**
 * Milliseconds after its creation time during which a job id in a tenant index without a record, or an
 * idempotency key whose job has no record, counts as a creation in progress (see {@link RedisJobStore.create});
 * after that, as the leftover of a creation that failed half-way (or of a job removed by retention).
 */
export const CREATE_GRACE_MS = 30_000;
/** Most milliseconds a create waits for an earlier creation with the same idempotency key to finish. */
const IDEMPOTENT_WAIT_MS = 2000;

// Step 1 of a create, in the tenant's slot. KEYS: 1 tenant index, 2 idempotency key (KEYS[1] when none).
// ARGV: 1 createdAt (ms), 2 id, 3 idempotency value, 4 its TTL (s), 5 the value it replaces ('' none).
// Claims the idempotency key (or, with ARGV[5], replaces a void claim if it still holds that value) and
// indexes the job. Returns false when done, else the claim found.
const CLAIM_LUA = `
if KEYS[2] ~= KEYS[1] then
  local seen = redis.call('GET', KEYS[2])
  if seen and seen ~= ARGV[5] then return seen end
  redis.call('SET', KEYS[2], ARGV[3], 'EX', ARGV[4])
end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
return false
`;

// In one partition's slot. KEYS: 1 the partition's retention set. ARGV: 1 batch size, 2 the partition's record key prefix.
// Members: "<tenant index>\n<id>[\n<idempotency key>]". Of the due members: those whose record is gone are
// returned (the caller removes them from their tenant's keys, then from this set); kept ones (no expiry) leave
// the set; others get their new removal time.
const SWEEP_LUA = `
local now = tonumber(redis.call('TIME')[1])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
local gone = {}
for _, member in ipairs(due) do
  local sep = string.find(member, '\\n', 1, true)
  local id = string.sub(member, sep + 1)
  local idEnd = string.find(id, '\\n', 1, true)
  if idEnd then id = string.sub(id, 1, idEnd - 1) end
  local left = redis.call('TTL', ARGV[2] .. id)
  if left == -2 then
    gone[#gone + 1] = member
  elseif left == -1 then
    redis.call('ZREM', KEYS[1], member)
  else
    redis.call('ZADD', KEYS[1], now + left, member)
  end
end
return gone
`;

// In the tenant's slot: a removed job leaves its tenant's keys. KEYS: 1 tenant index, 2 its idempotency key (KEYS[1]
// when none). ARGV: 1 id. The idempotency key is deleted only while it still names the job.
const UNINDEX_LUA = `
redis.call('ZREM', KEYS[1], ARGV[1])
if KEYS[2] ~= KEYS[1] then
  local claim = redis.call('GET', KEYS[2])
  if claim and string.sub(claim, 1, #ARGV[1] + 1) == ARGV[1] .. '\\n' then redis.call('DEL', KEYS[2]) end
end
return 1
`;

type ScriptedRedis = RedisClient & {
  runwatchUnindex(tenantKey: string, idemKey: string, id: string): Promise<number>;
  runwatchClaim(tenantKey: string, idemKey: string, ...args: (string | number)[]): Promise<string | null>;
  runwatchSweep(retentionKey: string, batch: number, recordPrefix: string): Promise<string[]>;
};

/** Prefix of the hash fields that hold a job's steps, one each: `step:<seq>` (see {@link jobLogLayout}). */
const STEP_FIELD = 'step:';

/**
 * Each step record's sequence number, the `<seq>` of its field `step:<seq>`: set when a record is read or written.
 * Records are never changed once made (domain/steps.ts), so a step the domain left as it was is the same object
 * with the same number; a changed step (a new record of the same name) keeps its predecessor's number, and a new
 * step gets the next one. Ascending numbers are the steps' order (of first report).
 */
const stepSeqs = new WeakMap<StepRecord, number>();

/**
 * A job record from its hash's fields: `data` (the record without its steps, JSON) and the steps' fields
 * `step:<seq>` (each a step record's JSON), in order of their numbers. A record written before steps had their
 * own fields (issue 20) has its steps in `data` (and no step fields): read as it is, and rewritten in the new shape
 * by its next commit (see {@link encodeJob}).
 * @returns the record, or null when `data` is missing.
 */
export function decodeJob(data: string | null | undefined, hash: Readonly<Record<string, string>> = {}): JobRecord | null {
  if (data == null) return null;
  const job = JSON.parse(data) as JobRecord;
  const numbered: [number, StepRecord][] = [];
  for (const field in hash) {
    if (!field.startsWith(STEP_FIELD)) continue;
    const step = JSON.parse(hash[field]!) as StepRecord;
    numbered.push([Number(field.slice(STEP_FIELD.length)), step]);
  }
  numbered.sort((a, b) => a[0] - b[0]);
  if (job.steps !== undefined) {
    // The old shape (steps in `data`). With step fields too, an instance of the previous version committed over a
    // record of this one during a rolling upgrade: it saw no steps and wrote only those its report made. The
    // fields' steps come first, the ones in `data` replace theirs by name or follow; the next commit rewrites
    // every step under new numbers and deletes the fields left over (see encodeJob).
    if (numbered.length === 0) return job;
    const steps = numbered.map(([, step]) => step);
    for (const step of job.steps) {
      const at = steps.findIndex((s) => s.name === step.name);
      if (at >= 0) steps[at] = step;
      else steps.push(step);
    }
    job.steps = steps;
    leftoverFields.set(job, numbered.map(([seq]) => `${STEP_FIELD}${seq}`));
    return job;
  }
  for (const [seq, step] of numbered) stepSeqs.set(step, seq);
  if (numbered.length > 0) job.steps = numbered.map(([, step]) => step);
  return job;
}

/** Step fields of a record read in the old shape (see {@link decodeJob}) that its next commit deletes unless it reuses them. */
const leftoverFields = new WeakMap<JobRecord, string[]>();

/**
 * The (field, value) pairs that store `job` over `previous` (the stored record, null when there is none):
 * `data` (the record without its steps) and the field of each step that is not the record `previous` has — one
 * or two per report instead of all (up to 100) of them; none when the steps array is `previous`'s own. When
 * `previous` is of the old shape (steps in `data`, their records without numbers), every step is written: the
 * record is migrated in place by its first commit after the upgrade.
 */
function encodeJob(job: JobRecord, previous: JobRecord | null): string[] {
  const { steps, ...rest } = job;
  const pairs = ['data', JSON.stringify(rest)];
  // The same array as the stored record's, whose steps are stored as fields (numbered): nothing to write.
  if (!steps?.length || (steps === previous?.steps && stepSeqs.has(steps[0]!))) return pairs;
  let byName: Map<string, number> | null = null;
  let last = 0;
  for (const step of previous?.steps ?? []) last = Math.max(last, stepSeqs.get(step) ?? 0);
  for (const step of steps) {
    if (stepSeqs.has(step)) continue; // unchanged: already stored under its number
    byName ??= new Map((previous?.steps ?? []).flatMap((s) => (stepSeqs.has(s) ? [[s.name, stepSeqs.get(s)!] as const] : [])));
    const seq = byName.get(step.name) ?? ++last;
    stepSeqs.set(step, seq);
    pairs.push(`${STEP_FIELD}${seq}`, stepJsonOf(step));
  }
  return pairs;
}

/** The step fields of `previous` whose step `job` no longer has (a new stage past 100 steps drops the oldest finished one). */
function removedSteps(job: JobRecord, previous: JobRecord | null): string[] {
  const leftover = previous && leftoverFields.get(previous);
  if (leftover) {
    const written = new Set((job.steps ?? []).map((s) => `${STEP_FIELD}${stepSeqs.get(s)}`));
    return leftover.filter((field) => !written.has(field));
  }
  if (!previous?.steps?.length || job.steps === previous.steps) return [];
  const kept = new Set((job.steps ?? []).map((s) => stepSeqs.get(s)));
  const removed: string[] = [];
  for (const step of previous.steps) {
    const seq = stepSeqs.get(step);
    if (seq !== undefined && !kept.has(seq)) removed.push(`${STEP_FIELD}${seq}`);
  }
  return removed;
}

/**
 * The layout of jobs' topic logs (see {@link RedisLogLayout}): the record hash
 * `runwatch:{P}:job:<id>` {v, data: the record's JSON without its steps, idem: its idempotency key's name, and
 * `step:<seq>`: each step's JSON}, and the history stream `runwatch:{P}:job:<id>:events`. A commit writes `data`
 * and only the steps that changed (see {@link encodeJob}), all in the one commit script, so a reader (HGETALL)
 * sees a whole record. The head's epoch and offset are the record's.
 * A missing job is NOT_FOUND, never created by a commit. The commit that
 * finishes a job retains it: the record, its history and its own topic logs
 * expire `retentionSeconds` later, and the job joins its partition's retention set.
 */
export function jobLogLayout(keys: RedisKeyspace, retentionSeconds: number, owned: JobOwnedTopics = JOB_OWNED): RedisLogLayout<JobRecord> {
  const idOf = (topic: string) => topic.slice(jobTopic('').length);
  return {
    headKey: (topic) => keys.job(idOf(topic)),
    eventsKey: (topic) => keys.jobEvents(idOf(topic)),
    fields: ['data', 'idem'],
    partsPrefix: STEP_FIELD,
    decode: ([data], hash) => {
      const job = decodeJob(data, hash);
      return job && { epoch: job.epoch, offset: job.offset, state: job };
    },
    encode: (head, previous) => encodeJob(head.state!, previous?.state ?? null),
    removed: (head, previous) => removedSteps(head.state!, previous?.state ?? null),
    missing: (topic) => {
      throw notFound(idOf(topic));
    },
    owner: () => null,
    retention: (topic, head, [, idem]) =>
      head.state!.finishedAt === null
        ? null
        : {
            seconds: retentionSeconds,
            set: keys.retentionOf(idOf(topic)),
            member: keys.retentionMember(head.state!, idem || null),
            keys: owned.of(idOf(topic)).flatMap((t) => [keys.logHead(t), keys.logEvents(t)]),
          },
    changesKey: (change) => keys.changesOf(change.jobId),
  };
}

/** {@link JobStore} on Redis: each job is the topic log `job:<id>` of `logs` (see {@link jobLogLayout}), plus the tenant index and idempotency table. */
export class RedisJobStore implements JobStore {
  private readonly redis: ScriptedRedis;

  /**
   * @param redis the command connection (one Redis or a Cluster).
   * @param logs the topic-log store, with {@link jobLogLayout} for `job:` topics.
   * @param retention how long finished jobs are kept (see the header), the keyspace and the change-log length.
   */
  constructor(
    redis: RedisClient,
    private readonly logs: RedisTopicLogStore,
    private readonly retention: RetentionOptions & { keys: RedisKeyspace; changeLogMaxLen: number },
  ) {
    redis.defineCommand('runwatchClaim', { numberOfKeys: 2, lua: CLAIM_LUA });
    redis.defineCommand('runwatchSweep', { numberOfKeys: 1, lua: SWEEP_LUA });
    redis.defineCommand('runwatchUnindex', { numberOfKeys: 2, lua: UNINDEX_LUA });
    this.redis = redis as ScriptedRedis;
  }

  private get keys(): RedisKeyspace {
    return this.retention.keys;
  }

  /**
   * Removes the ids of jobs whose retention ended from their tenant indexes,
   * and their idempotency keys (Redis already removed their own keys),
   * partition by partition: first from the tenant's keys, then from the
   * retention set, so a sweep cut short is finished by the next. Idempotent,
   * safe on every instance at once.
   * @returns how many jobs left the indexes.
   */
  async sweep(): Promise<number> {
    let total = 0;
    for (let p = 0; p < this.keys.partitions; p++) {
      const set = this.keys.retention(p);
      for (;;) {
        const gone = await this.redis.runwatchSweep(set, SWEEP_BATCH, this.keys.jobPrefix(p));
        await Promise.all(
          gone.map((member) => {
            const [index, id, idem] = member.split('\n') as [string, string, string | undefined];
            return this.redis.runwatchUnindex(index, idem || index, id);
          }),
        );
        if (gone.length > 0) await this.redis.zrem(set, ...gone);
        total += gone.length;
        if (gone.length < SWEEP_BATCH) break;
      }
    }
    return total;
  }

  /**
   * {@link JobStore.create} in two ordered steps, since a job's keys and its
   * tenant's keys are in different slots (no script may span two):
   * 1. in the tenant's slot: claim the idempotency key ("<id>\n<fingerprint>\n<now ms>",
   *    SET only if absent) and add the id to the tenant index;
   * 2. in the job's slot: create the job's log (the record) and XADD its creation to the change log, with the
   *    topic log's one commit script (RedisTopicLogStore.create).
   * A failure between them leaves an indexed id without a record, which is
   * invisible: `list` skips ids without a record and drops them once older
   * than {@link CREATE_GRACE_MS}. An idempotency key whose job has no record is
   * a creation in progress while younger than CREATE_GRACE_MS (a retry waits up
   * to 2 s for it, then fails with SERVICE_UNAVAILABLE), else void (the creation
   * failed half-way, or retention removed the job): the next create with it
   * replaces it — only if it still holds the value seen, so two such creates
   * cannot both win.
   * @throws DomainError SERVICE_UNAVAILABLE when Redis is unreachable, or an earlier creation with the same
   *   idempotency key is still in progress.
   */
  create(job: JobRecord, idem?: { key: string; fingerprint: string }) {
    return guard(this.redis, async () => {
      const tenantKey = this.keys.tenantJobs(job.tenant);
      const idemKey = idem ? this.keys.idem(job.tenant, idem.key) : tenantKey;
      const claim = idem ? `${job.id}\n${idem.fingerprint}\n${Date.now()}` : '';
      let replacing = '';
      for (let attempt = 0; ; attempt++) {
        const seen = await this.redis.runwatchClaim(tenantKey, idemKey, job.createdAt, job.id, claim, IDEMPOTENCY_TTL_SECONDS, replacing);
        if (seen === null) break;
        const [id, fingerprint, claimedAt] = seen.split('\n') as [string, string, string | undefined];
        const existing = await this.awaitRecord(id, Number(claimedAt ?? 0));
        if (existing) return { job: existing, created: false, fingerprint };
        if (attempt >= 3) throw new DomainError('SERVICE_UNAVAILABLE', 'the idempotency key is being claimed concurrently; retry');
        replacing = seen; // void: replace it if it still holds what was seen
      }
      // Step 2: the job's log, by the one commit script ("must not exist"), with its creation in the change log.
      await this.logs.create(jobTopic(job.id), { epoch: job.epoch, offset: job.offset, state: job }, {
        change: creationChange(job),
        fields: idem ? ['idem', idemKey] : [],
      });
      return { job, created: true };
    });
  }

  /**
   * The record of the job an idempotency key claimed at `claimedAtMs` names; while the claim is younger than
   * {@link CREATE_GRACE_MS} and the record missing, waits up to {@link IDEMPOTENT_WAIT_MS} for it.
   * @returns the record, or null when the claim is void (older, and no record).
   * @throws DomainError SERVICE_UNAVAILABLE when a young claim's record does not appear in time.
   */
  private async awaitRecord(id: string, claimedAtMs: number): Promise<JobRecord | null> {
    const until = Date.now() + IDEMPOTENT_WAIT_MS;
    for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
      const job = await this.get(id);
      if (job) return job;
      if (Date.now() - claimedAtMs >= CREATE_GRACE_MS) return null;
      if (Date.now() >= until) throw new DomainError('SERVICE_UNAVAILABLE', 'an earlier creation with this idempotency key is still in progress; retry');
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }

  get(id: string) {
    return guard(this.redis, async () => (await this.logs.head<JobRecord>(jobTopic(id)))?.state ?? null);
  }

  list(tenant: Tenant, filter: JobFilter, first: number, after: ListPosition | null) {
    return guard(this.redis, async () => {
      const key = this.keys.tenantJobs(tenant);
      const jobs: JobRecord[] = [];
      const batch = Math.max(50, first * 2);
      const max = after ? String(after.createdAt) : '+inf';
      for (let offset = 0; ; offset += batch) {
        const rows = await this.redis.zrevrangebyscore(key, max, '-inf', 'WITHSCORES', 'LIMIT', offset, batch);
        if (rows.length === 0) return { jobs, hasNextPage: false };
        const ids: string[] = [];
        const createdAt: number[] = [];
        for (let i = 0; i < rows.length; i += 2) {
          const id = rows[i]!;
          if (after && Number(rows[i + 1]) === after.createdAt && id >= after.id) continue;
          ids.push(id);
          createdAt.push(Number(rows[i + 1]));
        }
        // One command per record: on a cluster they are in different slots (ioredis sends them back to back).
        const hashes = await Promise.all(ids.map((id) => this.redis.hgetall(this.keys.job(id))));
        const results = hashes.map((hash) => decodeJob(hash.data, hash));
        // Ids without a record: expired (retention), or the leftover of a create that failed half-way; they
        // leave the index now rather than at the next sweep. Younger ones may be a create in progress: skipped.
        const staleBefore = Date.now() - CREATE_GRACE_MS;
        const gone = ids.filter((_, i) => results[i] === null && createdAt[i]! < staleBefore);
        if (gone.length > 0) await this.redis.zrem(key, ...gone);
        for (const job of results) {
          if (!job || !matchesFilter(job, filter)) continue;
          if (jobs.length === first) return { jobs, hasNextPage: true };
          jobs.push(job);
        }
        if (rows.length < batch * 2) return { jobs, hasNextPage: false };
      }
    });
  }

  /**
   * {@link JobStore.update}: a commit of the job's topic log. Many workers
   * reporting to one job share one read and one compare-and-set per batch on
   * each instance (RedisTopicLogStore.append); the domain still sees the
   * changes one at a time (gap-free offsets, conflation rules, exact counts).
   */
  update(id: string, change: (job: JobRecord) => JobChange | null): Promise<JobChange | null> {
    return guard(this.redis, async () => {
      // The change may run more than once (a lost compare-and-set): `value` is the committed run's.
      const committed = await this.logs.append<JobRecord, JobEvent, JobChange>(jobTopic(id), (head) => {
        const result = change(head.state!);
        return result && { state: result.job, events: result.events, change: updateChange(result.job, result.events.map((e) => e.type)) ?? undefined, value: result };
      });
      return committed?.value ?? null;
    });
  }

  /**
   * {@link JobStore.restore}: the tenant index first (an id without a record is invisible), then the job's log,
   * created by the one commit script (a finished job gets its retention as its finishing commit gave it).
   */
  restore(job: JobRecord) {
    return guard(this.redis, async () => {
      await this.redis.zadd(this.keys.tenantJobs(job.tenant), job.createdAt, job.id);
      return this.logs.create(jobTopic(job.id), { epoch: job.epoch, offset: job.offset, state: job });
    });
  }

  history(id: string, afterOffset: number): Promise<HistoryRead<JobEvent>> {
    return guard(this.redis, () => this.logs.history<JobEvent>(jobTopic(id), afterOffset));
  }

  async ping() {
    await guard(this.redis, () => this.redis.ping());
  }

  async close() {}
}

