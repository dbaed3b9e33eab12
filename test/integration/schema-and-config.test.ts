/**
 * The committed schema.graphql matches the code, and the server refuses bad
 * configuration with exit code 2 and a message naming the variable.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { printSortedSchema } from '../../src/schema/index.js';

describe('schema.graphql', () => {
  it('is what the Pothos schema prints (run `npm run schema:print` when this fails)', () => {
    expect(readFileSync(new URL('../../schema.graphql', import.meta.url), 'utf8')).toBe(printSortedSchema());
  });
});

describe('configuration', () => {
  it('applies the documented defaults', () => {
    expect(loadConfig({})).toEqual({
      port: 4000,
      host: '127.0.0.1',
      redisUrl: undefined,
      jwtSecret: undefined,
      progressHz: 10,
      historySize: 1000,
      changePartitions: undefined, // the backend's default: 4 on one Redis, 16 on a cluster
      changeClaimMs: 5000,
      subscriberQueue: 1000,
      logLevel: 'info',
    });
  });

  it.each([
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['REDIS_URL', 'http://localhost'],
    ['RUNWATCH_JWT_SECRET', 'short'],
    ['RUNWATCH_PROGRESS_HZ', '0'],
    ['RUNWATCH_HISTORY', '-5'],
    ['LOG_LEVEL', 'loud'],
  ])('refuses %s=%s naming the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadConfig({ [name]: value })).toThrow(name);
  });

  it('makes `npm start` exit with code 2 and name the variable', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: { ...process.env, PORT: 'not-a-port' },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('PORT');
  });
});
