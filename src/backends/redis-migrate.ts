/**
 * Copies a runwatch deployment's Redis data to the current key layout
 * (redis-keys.ts), onto the same Redis, another Redis or a Redis Cluster, and
 * to another change-partition count — how an operator upgrades from the
 * layout without hash tags, and moves from one Redis to a cluster
 * (`runwatch-server migrate-redis`; docs/operations.md "Moving to a Redis
 * Cluster"). Run it with every runwatch instance stopped.
 *
 * Every `runwatch:` key of the source is read (SCAN) and written under its
 * name in the target layout with DUMP / RESTORE (value, type, consumer groups
 * and remaining TTL kept):
 * - a job's keys (`job:<id>`, its history, its own topic logs) go to its
 *   partition's tag, tenant keys (index, idempotency) to the tenant's tag,
 *   other topic logs to their own (domain/topics.ts placementOf);
 * - key names stored inside values are renamed too: the record's `idem`
 *   field, and retention-set members (which are rebuilt per partition);
 * - change-log partitions are copied when the partition count stays, else
 *   they must have been fully applied (every consumer group caught up:
 *   nothing pending, lag 0), and are left behind; projector leases are left
 *   behind (they expire anyway);
 * - everything else (stall deadlines, work queues, rate-limit buckets) keeps its name;
 * - `runwatch:partitions` is set to the target count.
 * Source keys are deleted only when `deleteSource` is set (an in-place
 * upgrade: the target is the source). A key the target has already is kept
 * (a tenant index gets the source's members added), so a second run changes
 * nothing and data written by the new layout is never overwritten.
 */
import type { RedisClient } from './redis-log.js';
import { changePartition } from '../domain/changes.js';
import { changesKey, KEY_PREFIX, PARTITIONS_KEY, RedisKeyspace } from './redis-keys.js';

/** What a {@link migrateRedis} run did: keys written per kind, and keys left behind with why. */
export interface MigrationReport {
  /** Keys written under their target name, by kind (job, log, tenant, retention, changes, other). */
  copied: Record<string, number>;
  /** Source keys not copied, with the reason. */
  skipped: { key: string; reason: string }[];
}

/** Options of {@link migrateRedis}. */
export interface MigrationOptions {
  /** The change-partition count of the target (its job keys' tags). */
  partitions: number;
  /** Delete each source key once copied under another name (in-place upgrade). */
  deleteSource?: boolean;
}

/** A source key as the layout knows it: what it is, and its name in the target. */
type Parsed =
  | { kind: 'job'; target: string; jobId: string }
  | { kind: 'log'; target: string }
  | { kind: 'tenant'; target: string }
  | { kind: 'retention' }
  | { kind: 'changes'; partition: number | null }
  | { kind: 'lease' }
  | { kind: 'other'; target: string };

/**
 * Reads a key of either layout (without hash tags, or with them under any partition count) and names it in `to`.
 * Tenant parts and topic names stay as they are (URI-encoded where they were).
 */
function parse(key: string, to: RedisKeyspace): Parsed {
  let rest = key.slice(KEY_PREFIX.length);
  // The current layout: `{tag}:` first (but `{deadlines:n}` and `{q:name}` are names of their own).
  const tagged = /^\{([^}]*)\}:(.*)$/s.exec(rest);
  if (tagged && !/^(deadlines|q):/.test(tagged[1]!)) {
    const [, tag, tail] = tagged as unknown as [string, string, string];
    if (tag.startsWith('tenant:')) {
      const tenantKey = `${KEY_PREFIX}{${tag}}`;
      return { kind: 'tenant', target: tail === 'jobs' || tail.startsWith('idem:') ? `${tenantKey}:${tail}` : key };
    }
    if (tail === 'retention') return { kind: 'retention' };
    if (tail === 'changes') return { kind: 'changes', partition: null };
    if (tail.startsWith('changes:lease:')) return { kind: 'lease' };
    rest = tail;
  } else {
    if (rest === 'retention') return { kind: 'retention' };
    const changes = /^changes:\{(\d+)\}$/.exec(rest);
    if (changes) return { kind: 'changes', partition: Number(changes[1]) };
    const jobs = /^jobs:([^:]*):([^:]*)$/.exec(rest);
    if (jobs) return { kind: 'tenant', target: to.tenantJobs({ institute: decodeURIComponent(jobs[1]!), environment: decodeURIComponent(jobs[2]!) }) };
    const idem = /^idem:([^:]*):([^:]*):(.*)$/s.exec(rest);
    if (idem)
      return {
        kind: 'tenant',
        target: to.idem({ institute: decodeURIComponent(idem[1]!), environment: decodeURIComponent(idem[2]!) }, decodeURIComponent(idem[3]!)),
      };
  }
  const job = /^job:(.*?)(:events)?$/s.exec(rest);
  if (job) return { kind: 'job', jobId: job[1]!, target: job[2] ? to.jobEvents(job[1]!) : to.job(job[1]!) };
  const log = /^log:(.*?)(:events)?$/s.exec(rest);
  if (log) return { kind: 'log', target: log[2] ? to.logEvents(log[1]!) : to.logHead(log[1]!) };
  return { kind: 'other', target: key };
}

/** The name of a tenant index or idempotency key in `to`, whichever layout `name` is in ('' stays ''). */
const renameTenantKey = (name: string, to: RedisKeyspace) => {
  if (!name) return name;
  const parsed = parse(name, to);
  return parsed.kind === 'tenant' ? parsed.target : name;
};

/**
 * Copies every runwatch key of `source` to `target` in the current layout with `opts.partitions` partitions
 * (see the header). `source` must be one Redis (SCAN runs on it); `target` one Redis or a cluster client.
 * @returns what was copied and what was left behind.
 * @throws Error when a change-log partition that cannot be copied (the count changes) still holds changes
 *   not applied by every projector: run an instance on the source until they are, then migrate again.
 */
export async function migrateRedis(source: RedisClient, target: RedisClient, opts: MigrationOptions): Promise<MigrationReport> {
  const to = new RedisKeyspace(opts.partitions);
  const report: MigrationReport = { copied: {}, skipped: [] };
  const count = (kind: string) => (report.copied[kind] = (report.copied[kind] ?? 0) + 1);
  const keys: string[] = [];
  if (source.isCluster) throw new Error('the source must be one Redis (not a cluster)');
  let cursor = '0';
  do {
    const [next, batch] = await source.scan(cursor, 'MATCH', `${KEY_PREFIX}*`, 'COUNT', 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  const sourcePartitions = Number((await source.get(PARTITIONS_KEY)) ?? 4);

  // Change-log partitions first: refuse before anything is written.
  const changeKeys = keys.filter((k) => parse(k, to).kind === 'changes');
  const sameCount = sourcePartitions === opts.partitions;
  if (!sameCount) {
    for (const key of changeKeys) {
      const groups = (await source.xinfo('GROUPS', key)) as unknown[][];
      for (const group of groups) {
        const info = Object.fromEntries(Array.from({ length: group.length / 2 }, (_, i) => [String(group[2 * i]), group[2 * i + 1]]));
        if (Number(info.pending) > 0 || (info.lag !== null && Number(info.lag) > 0)) {
          throw new Error(
            `${key}: projector ${String(info.name)} has changes not applied yet (pending ${String(info.pending)}, lag ${String(info.lag)}); run a runwatch instance on the source until it caught up, then migrate again`,
          );
        }
      }
    }
  }

  for (const key of keys) {
    if (key === PARTITIONS_KEY) continue;
    const parsed = parse(key, to);
    let targetName: string;
    switch (parsed.kind) {
      case 'retention':
        if (target === source && isTargetRetention(key, to)) continue; // in place, already where it belongs
        await copyRetention(source, target, key, to);
        count('retention');
        if (opts.deleteSource && !isTargetRetention(key, to)) await source.del(key);
        continue;
      case 'lease':
        report.skipped.push({ key, reason: 'projector lease (expires on its own)' });
        continue;
      case 'changes': {
        if (!sameCount) {
          report.skipped.push({ key, reason: `change-log partition, fully applied (partitions ${sourcePartitions} → ${opts.partitions})` });
          if (opts.deleteSource) await source.del(key);
          continue;
        }
        // Same count: partition p keeps its number (job → partition does not change).
        const p = parsed.partition ?? Array.from({ length: sourcePartitions }, (_, q) => q).find((q) => changesKey(q, sourcePartitions) === key);
        if (p === undefined) {
          report.skipped.push({ key, reason: 'change-log stream of no partition of the source' });
          continue;
        }
        targetName = to.changes(p);
        break;
      }
      default:
        targetName = parsed.target;
    }
    if (targetName === key && target === source) continue; // already where it belongs
    const [dump, pttl] = await Promise.all([source.dumpBuffer(key), source.pttl(key)]);
    if (dump === null) continue; // expired meanwhile
    try {
      await target.restore(targetName, pttl > 0 ? pttl : 0, dump);
    } catch (error) {
      if (!String((error as Error).message).includes('BUSYKEY')) throw error;
      // The target has it already (a second run, or two source layouts naming one key): a sorted set (a tenant
      // index) gets the source's members too; anything else keeps the target's value.
      if ((await source.type(key)) === 'zset' && (await target.type(targetName)) === 'zset') {
        const rows = await source.zrange(key, 0, -1, 'WITHSCORES');
        for (let i = 0; i < rows.length; i += 2) await target.zadd(targetName, rows[i + 1]!, rows[i]!);
        count(`${parsed.kind} (merged)`);
      } else {
        report.skipped.push({ key, reason: `${targetName} exists in the target: kept` });
      }
      if (opts.deleteSource && targetName !== key) await source.del(key);
      continue;
    }
    if (parsed.kind === 'job' && !key.endsWith(':events')) {
      const idem = await target.hget(targetName, 'idem');
      if (idem) await target.hset(targetName, 'idem', renameTenantKey(idem, to));
    }
    count(parsed.kind);
    if (opts.deleteSource && targetName !== key) await source.del(key);
  }
  await target.set(PARTITIONS_KEY, String(opts.partitions));
  return report;
}

/** Whether `key` is one of the target's retention sets. */
const isTargetRetention = (key: string, to: RedisKeyspace) => Array.from({ length: to.partitions }, (_, p) => to.retention(p)).includes(key);

/** Rebuilds a retention set per target partition, with members naming the target's tenant keys. */
async function copyRetention(source: RedisClient, target: RedisClient, key: string, to: RedisKeyspace): Promise<void> {
  const rows = await source.zrange(key, 0, -1, 'WITHSCORES');
  for (let i = 0; i < rows.length; i += 2) {
    const [index, id, idem] = rows[i]!.split('\n') as [string, string, string | undefined];
    const member = `${renameTenantKey(index, to)}\n${id}\n${renameTenantKey(idem ?? '', to)}`;
    await target.zadd(to.retention(changePartition(id, to.partitions)), rows[i + 1]!, member);
  }
}
