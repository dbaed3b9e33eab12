import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';
import LongestFirstSequencer from './test/helpers/sequencer.js';

const require = createRequire(import.meta.url);

export default defineConfig({
  resolve: {
    // Resolve `graphql` in our sources to the file Node itself loads (package "main"), the one
    // externalized dependencies such as graphql-ws get; otherwise vite picks the "module" build and
    // two GraphQLError classes exist side by side, which breaks graphql-ws's instanceof checks.
    alias: [{ find: /^graphql$/, replacement: require.resolve('graphql') }],
  },
  test: {
    // Fails a test file during which a rejection went unhandled (a bug the run would otherwise only print).
    setupFiles: ['test/helpers/fail-on-unhandled.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Integration files start their own servers and share one redis-server; two cores.
    fileParallelism: true,
    maxWorkers: 2,
    // Longest files first, also without vitest's cache of durations (a fresh clone): test/helpers/sequencer.ts.
    sequence: { sequencer: LongestFirstSequencer },
    projects: [
      // Pure logic, no server, no Redis: `npm run test:unit` runs in seconds.
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'], isolate: false } },
      // Real servers, a real redis-server (started once by the global setup), the CLI, the package, the browser.
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: ['test/unit/**'],
          globalSetup: ['test/helpers/global-setup.ts'],
          setupFiles: ['test/helpers/per-file-cleanup.ts'],
          isolate: false,
        },
      },
    ],
  },
});
