/**
 * Starts one shared redis-server for the whole run (tests that stop or
 * restart Redis start their own) and provides its URL as `redisUrl`.
 */
import type { TestProject } from 'vitest/node';
import { startRedis, type TestRedis } from './redis.js';

let redis: TestRedis | undefined;

export async function setup(project: TestProject): Promise<void> {
  redis = await startRedis();
  project.provide('redisUrl', redis.url);
}

export async function teardown(): Promise<void> {
  await redis?.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}
