/**
 * Redis key and channel names (the table in docs/operations.md, "Redis keys").
 * Every key and channel starts with `runwatch:` and carries a Redis Cluster
 * hash tag (`{…}`: only the text between the braces picks the slot), so that
 * everything one atomic step touches lives in one slot — on a Redis Cluster
 * on one master, and on one Redis exactly as before:
 *
 * | what | key | tag |
 * | --- | --- | --- |
 * | a job's record, its history, its own topic logs (training, commands, items, metrics), its channel, its partition's change-log stream, retention set and projector leases | `runwatch:{<P>}:job:<id>` … | its change partition `P` |
 * | a tenant's job index and idempotency keys | `runwatch:{tenant:<inst>:<env>}:…` | the tenant |
 * | an institute's activity state, budgets and activity notices | `runwatch:{acct:<inst>}:…` | the institute |
 * | any other topic log (job lists, webhooks, webhook attempts) and its channel | `runwatch:{<topic>}:…` | the topic |
 * | stall deadlines, work queues | `runwatch:{deadlines:<n>}`, `runwatch:{q:<name>}:…` | their own |
 *
 * A job's commit (redis-log.ts) writes its record and history, XADDs its change
 * to its partition's stream and (S)PUBLISHes on its channel in one script: all
 * of them carry the partition tag. Creating a job needs two slots (the tenant's
 * index and idempotency key, then the record): see redis.ts RedisJobStore.create.
 *
 * Partition tags are spread evenly over the slot space ({@link partitionTag}), so
 * with the usual contiguous split of slots over masters the partitions (and so the
 * jobs) spread evenly over masters.
 */
import calculateSlot from 'cluster-key-slot';
import { changePartition } from '../domain/changes.js';
import type { JobRecord, Tenant } from '../domain/job.js';
import { placementOf } from '../domain/topics.js';

/** Prefix of every key and channel. */
export const KEY_PREFIX = 'runwatch:';
/** Redis Cluster's number of hash slots. */
const SLOTS = 16384;
/**
 * Where the deployment's change-partition count is stored (a string, set once at first start; see
 * {@link partitionTag}): job keys are named after their partition, so the count must not change under them.
 */
export const PARTITIONS_KEY = `${KEY_PREFIX}partitions`;

const part = (s: string) => encodeURIComponent(s);
/** Text usable inside a hash tag: no braces (they would end or restart it). */
const tagText = (s: string) => s.replaceAll('{', '%7B').replaceAll('}', '%7D');

const tagCache = new Map<number, string[]>();
/**
 * The hash tag (without braces) of change partition `p` of `partitions`: `<p>.<k>` with the smallest
 * k whose slot (CRC16 mod 16384) lies in the p-th of `partitions` equal slices of the slot space.
 * So the partitions' slots are evenly spaced: with masters owning contiguous, equal slot ranges (what
 * `redis-cli --cluster create` makes), each master serves partitions/masters of them (±1), and so
 * about as many jobs. Computed once per count (about `partitions` CRC16s per partition).
 */
export function partitionTag(p: number, partitions: number): string {
  let tags = tagCache.get(partitions);
  if (!tags) {
    tags = Array.from({ length: partitions }, (_, q) => {
      const from = Math.floor((q * SLOTS) / partitions);
      const to = Math.floor(((q + 1) * SLOTS) / partitions);
      for (let k = 0; ; k++) {
        const slot = calculateSlot(`${q}.${k}`);
        if (slot >= from && slot < to) return `${q}.${k}`;
      }
    });
    tagCache.set(partitions, tags);
  }
  return tags[p]!;
}

/** Partition `p` of the change log (a stream; entries {c: JSON JobChangeRecord}), one consumer group per projector. */
export const changesKey = (p: number, partitions: number) => `${KEY_PREFIX}{${partitionTag(p, partitions)}}:changes`;

/**
 * Every key and channel name of one deployment: the names of job keys depend on the change-partition
 * count (`RUNWATCH_CHANGE_PARTITIONS`, as stored in {@link PARTITIONS_KEY}).
 */
export class RedisKeyspace {
  /** @param partitions the change-log partition count, ≥ 1. */
  constructor(readonly partitions: number) {
    if (!Number.isInteger(partitions) || partitions < 1) throw new Error(`partitions must be a positive integer, got ${partitions}`);
  }

  /** The change partition of a job (domain/changes.ts changePartition). */
  partitionOf(jobId: string): number {
    return changePartition(jobId, this.partitions);
  }

  /** `{<tag>}` of a job's keys: its change partition's. */
  private jobTag(jobId: string): string {
    return `{${partitionTag(this.partitionOf(jobId), this.partitions)}}`;
  }

  /** `{<tag>}` of a topic's keys and channel (see the table in the header). */
  tagOf(topic: string): string {
    const placement = placementOf(topic);
    if ('job' in placement) return this.jobTag(placement.job);
    if ('account' in placement) return `{acct:${tagText(placement.account)}}`;
    return `{${tagText(topic)}}`;
  }

  /** The channel of a topic, e.g. `runwatch:{3.1}:job:<id>`. */
  channel(topic: string): string {
    return `${KEY_PREFIX}${this.tagOf(topic)}:${topic}`;
  }
  /** A job's record (hash {v: version, data: JSON record, idem: its idempotency key's name, if any}). */
  job(id: string): string {
    return `${KEY_PREFIX}${this.jobTag(id)}:job:${id}`;
  }
  /** A job's event history (stream, entry ids `<offset>-0`). */
  jobEvents(id: string): string {
    return `${this.job(id)}:events`;
  }
  /** The prefix of every job record key in partition `p` (the retention sweep appends the id). */
  jobPrefix(p: number): string {
    return `${KEY_PREFIX}{${partitionTag(p, this.partitions)}}:job:`;
  }
  /** A topic log's head (hash {v, epoch, offset, state}). */
  logHead(topic: string): string {
    return `${KEY_PREFIX}${this.tagOf(topic)}:log:${topic}`;
  }
  /** A topic log's event history (stream). */
  logEvents(topic: string): string {
    return `${this.logHead(topic)}:events`;
  }
  /** The tenant's job index: a sorted set of job ids by creation time (epoch ms). */
  tenantJobs(t: Tenant): string {
    return `${KEY_PREFIX}${tenantTag(t)}:jobs`;
  }
  /** An idempotency key of the tenant: "<jobId>\n<fingerprint>\n<claimed at, epoch ms>", 7 days. */
  idem(t: Tenant, key: string): string {
    return `${KEY_PREFIX}${tenantTag(t)}:idem:${part(key)}`;
  }
  /** Partition p's set of finished jobs by removal time (Redis TIME, seconds), for the index sweep (redis.ts). */
  retention(p: number): string {
    return `${KEY_PREFIX}{${partitionTag(p, this.partitions)}}:retention`;
  }
  /** The retention set of a job's partition. */
  retentionOf(jobId: string): string {
    return this.retention(this.partitionOf(jobId));
  }
  /**
   * A finished job's member in its retention set: "<tenant index key>\n<id>\n<its idempotency key or ''>": what
   * the sweep removes, in the tenant's slot, once the job's keys expired.
   */
  retentionMember(job: JobRecord, idemKey: string | null = null): string {
    return `${this.tenantJobs(job.tenant)}\n${job.id}\n${idemKey ?? ''}`;
  }
  /** Partition p of the change log ({@link changesKey}). */
  changes(p: number): string {
    return changesKey(p, this.partitions);
  }
  /** The change-log stream of a job's partition. */
  changesOf(jobId: string): string {
    return this.changes(this.partitionOf(jobId));
  }
}

/** `{tenant:<inst>:<env>}`: the tag of a tenant's index and idempotency keys. */
const tenantTag = (t: Tenant) => `{tenant:${tagText(part(t.institute))}:${tagText(part(t.environment))}}`;

/** Whether two keys or channels hash to one Redis Cluster slot. */
export const sameSlot = (a: string, b: string) => calculateSlot(a) === calculateSlot(b);
