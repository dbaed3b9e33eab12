/**
 * Redis key and channel names (the table in docs/operations.md, "Redis keys").
 * Every key and channel starts with `runwatch:`.
 */
import type { JobRecord, Tenant } from '../domain/job.js';

/** Prefix of every key and channel. */
export const KEY_PREFIX = 'runwatch:';
/** The Redis channel of a topic, e.g. `runwatch:job:<id>`. */
export const channelFor = (topic: string) => `${KEY_PREFIX}${topic}`;
/** The key of a job's record (hash {v, data, idem}). */
export const jobKey = (id: string) => `${KEY_PREFIX}job:${id}`;
/** The key of a job's event history (stream). */
export const jobEventsKey = (id: string) => `${KEY_PREFIX}job:${id}:events`;
/** The key of a topic log's head (hash {v, epoch, offset, state}). */
export const logHeadKey = (topic: string) => `${KEY_PREFIX}log:${topic}`;
/** The key of a topic log's event history (stream). */
export const logEventsKey = (topic: string) => `${KEY_PREFIX}log:${topic}:events`;
const part = (s: string) => encodeURIComponent(s);
/** The tenant's job index: a sorted set of job ids by creation time (epoch ms). */
export const tenantJobsKey = (t: Tenant) => `${KEY_PREFIX}jobs:${part(t.institute)}:${part(t.environment)}`;
/** An idempotency key of the tenant: "<jobId>\n<fingerprint>", 7 days. */
export const idemKey = (t: Tenant, key: string) => `${KEY_PREFIX}idem:${part(t.institute)}:${part(t.environment)}:${part(key)}`;
/** Sorted set of finished jobs by removal time (Redis TIME, seconds), for the index sweep (see redis.ts). */
export const RETENTION_KEY = `${KEY_PREFIX}retention`;
/** A finished job's member in {@link RETENTION_KEY}: "<tenant index key>\n<id>". */
export const retentionMember = (job: JobRecord) => `${tenantJobsKey(job.tenant)}\n${job.id}`;
/**
 * Partition `p` of the change log (a stream; entries {c: JSON JobChangeRecord}), one consumer group per projector.
 * The braces are a Redis Cluster hash tag: see docs/operations.md "Change log partitions".
 */
export const changesKey = (p: number) => `${KEY_PREFIX}changes:{${p}}`;
