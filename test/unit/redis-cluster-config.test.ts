/**
 * REDIS_CLUSTER_NODES: parsed into seeds, refused with REDIS_URL (naming both),
 * and carried into the config (the server then runs on the Redis Cluster backend).
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, redisClusterSeeds } from '../../src/config.js';

describe('REDIS_CLUSTER_NODES', () => {
  it('is absent when unset or blank', () => {
    expect(redisClusterSeeds({})).toBeNull();
    expect(redisClusterSeeds({ REDIS_CLUSTER_NODES: '  ' })).toBeNull();
    expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' }).redisClusterNodes).toBeUndefined();
  });

  it('parses comma-separated host:port seeds (IPv6 in brackets), ignoring spaces and duplicates', () => {
    expect(redisClusterSeeds({ REDIS_CLUSTER_NODES: 'redis-0.redis:6379, 10.0.0.2:7001 ,[fd00::3]:7002,10.0.0.2:7001' })).toEqual([
      { host: 'redis-0.redis', port: 6379 },
      { host: '10.0.0.2', port: 7001 },
      { host: 'fd00::3', port: 7002 },
    ]);
  });

  it.each(['10.0.0.1', '10.0.0.1:0', '10.0.0.1:70000', 'a:1,,b:2', 'redis://10.0.0.1:6379', 'host:port'])(
    'refuses %j naming the variable and the bad entry',
    (value) => {
      const error = (() => {
        try {
          redisClusterSeeds({ REDIS_CLUSTER_NODES: value });
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).variable).toBe('REDIS_CLUSTER_NODES');
      expect((error as Error).message).toMatch(/is not host:port/);
    },
  );

  it('is refused together with REDIS_URL, naming both', () => {
    expect(() => redisClusterSeeds({ REDIS_CLUSTER_NODES: '10.0.0.1:6379', REDIS_URL: 'redis://10.0.0.9:6379' })).toThrow(
      /REDIS_CLUSTER_NODES.*REDIS_URL/,
    );
  });

  it('reaches the config, and with REDIS_URL fails the whole config naming both', () => {
    expect(loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.1:6379,10.0.0.2:6379' }).redisClusterNodes).toEqual([
      { host: '10.0.0.1', port: 6379 },
      { host: '10.0.0.2', port: 6379 },
    ]);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.1:6379', REDIS_URL: 'redis://10.0.0.9:6379' })).toThrow(/REDIS_CLUSTER_NODES.*REDIS_URL/);
  });
});
