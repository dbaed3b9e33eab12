/**
 * `REDIS_CLUSTER_NODES`: the seed nodes of a Redis Cluster (DESIGN.md,
 * "Running"; issue 21). Parsed at start by `src/main.ts`, which refuses it with
 * exit code 2 until the Redis Cluster backend exists (see
 * {@link refuseRedisClusterUntilAvailable}): a deployment that sets it must not
 * silently run on the in-memory backend. Separate from config.ts so that the
 * backend's wiring can take it over without touching the general schema.
 */
import { ConfigError } from './config.js';

/** One seed node of a Redis Cluster: any node will do, the client discovers the rest (`CLUSTER SLOTS`). */
export interface RedisClusterSeed {
  /** Host name or IP address (IPv6 without brackets). */
  host: string;
  /** TCP port, 1..65535. */
  port: number;
}

const VARIABLE = 'REDIS_CLUSTER_NODES';

/** `host:port` or `[ipv6]:port`. */
const SEED = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9._-]+)):(\d{1,5})$/;

/**
 * Reads `REDIS_CLUSTER_NODES` from `env`: comma-separated `host:port` seeds
 * (`[ipv6]:port` for IPv6; spaces around entries ignored; duplicates dropped).
 * @returns the seeds in the order given, or null when the variable is unset or empty.
 * @throws ConfigError naming REDIS_CLUSTER_NODES when an entry is not `host:port` with a port 1..65535,
 *   and naming both variables when `REDIS_URL` is set too (one Redis or a cluster, not both).
 */
export function redisClusterSeeds(env: NodeJS.ProcessEnv = process.env): RedisClusterSeed[] | null {
  const raw = env[VARIABLE]?.trim();
  if (!raw) return null;
  if (env.REDIS_URL?.trim()) {
    throw new ConfigError(
      VARIABLE,
      'set together with REDIS_URL: set REDIS_URL for one Redis or REDIS_CLUSTER_NODES for a Redis Cluster, not both',
    );
  }
  const seeds: RedisClusterSeed[] = [];
  const seen = new Set<string>();
  for (const entry of raw.split(',').map((e) => e.trim())) {
    const match = SEED.exec(entry);
    const port = match ? Number(match[3]) : 0;
    if (!match || port < 1 || port > 65535) {
      throw new ConfigError(VARIABLE, `"${entry}" is not host:port (comma-separated, e.g. 10.0.0.1:6379,10.0.0.2:6379)`);
    }
    const seed = { host: match[1] ?? match[2]!, port };
    const key = `${seed.host}:${seed.port}`;
    if (seen.has(key)) continue;
    seen.add(key);
    seeds.push(seed);
  }
  return seeds;
}

/** The message a start with `REDIS_CLUSTER_NODES` fails with while the cluster backend is missing. */
export const REDIS_CLUSTER_UNAVAILABLE = 'Redis Cluster backend: not available yet (issue 21); run on one Redis with REDIS_URL';

/**
 * Parses `REDIS_CLUSTER_NODES` ({@link redisClusterSeeds}) and, when it is set,
 * refuses to start: the Redis Cluster backend is not wired in yet.
 * @throws ConfigError naming REDIS_CLUSTER_NODES ({@link REDIS_CLUSTER_UNAVAILABLE}, or the parse error).
 */
export function refuseRedisClusterUntilAvailable(env: NodeJS.ProcessEnv = process.env): void {
  if (redisClusterSeeds(env) !== null) throw new ConfigError(VARIABLE, REDIS_CLUSTER_UNAVAILABLE);
}
