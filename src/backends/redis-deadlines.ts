/**
 * The Redis {@link DeadlineIndex}: sorted sets of job ids scored by check time
 * (epoch ms), sharded by a hash of the job id over {@link DEADLINE_SHARDS}
 * keys `runwatch:{deadlines:<n>}`. Each key carries its own hash tag, so on a
 * Redis Cluster the shards spread over slots and no single key is hot; every
 * command touches one key. A job's entry is written when it is created and
 * moved by the sweep — never by a report — so the hot path of reporting does
 * not touch these keys at all.
 */
import type { Cluster, Redis } from 'ioredis';
import { KEY_PREFIX } from './redis-keys.js';
import { guard } from './redis-log.js';
import type { DeadlineIndex } from './types.js';

/** Shards of the index (keys). */
export const DEADLINE_SHARDS = 16;
/** The key of shard `n`: its own hash tag, `{deadlines:<n>}`. */
export const deadlineKey = (n: number) => `${KEY_PREFIX}{deadlines:${n}}`;

/** FNV-1a of the id, mod the shard count. */
export function deadlineShard(jobId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < jobId.length; i++) {
    h ^= jobId.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) % DEADLINE_SHARDS;
}

// KEYS: 1 shard. ARGV: 1 now (ms), 2 lease end (ms), 3 limit. Claims due ids by moving them to the lease end.
const CLAIM_LUA = `
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return ids
`;

export class RedisDeadlineIndex implements DeadlineIndex {
  constructor(private readonly redis: Redis | Cluster) {}

  async schedule(jobId: string, atMs: number): Promise<void> {
    await guard(this.redis, () => this.redis.zadd(deadlineKey(deadlineShard(jobId)), atMs, jobId));
  }

  /** One claim script per shard, sent back to back (one round trip on one Redis; on a cluster one per master). */
  async claimDue(nowMs: number, leaseMs: number, limit: number): Promise<string[]> {
    const perShard = Math.max(1, Math.ceil(limit / DEADLINE_SHARDS));
    const results = await guard(this.redis, () =>
      Promise.all(Array.from({ length: DEADLINE_SHARDS }, (_, n) => this.redis.eval(CLAIM_LUA, 1, deadlineKey(n), nowMs, nowMs + leaseMs, perShard) as Promise<string[]>)),
    );
    return results.flat();
  }

  async remove(jobId: string): Promise<void> {
    await guard(this.redis, () => this.redis.zrem(deadlineKey(deadlineShard(jobId)), jobId));
  }
}
