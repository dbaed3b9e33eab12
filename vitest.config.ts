import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/helpers/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration files start their own servers and one shared redis-server; two cores.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
