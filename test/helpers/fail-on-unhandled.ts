/**
 * Setup file (vitest `setupFiles`): a test file during which a promise
 * rejection went unhandled, or an exception went uncaught, fails — naming
 * the error — instead of passing green while vitest only prints "Unhandled
 * Rejection" and exits 1 at the end of the run. Such an error in the server
 * is a bug (see src/observe/process-net.ts); in a test, a missing await.
 *
 * A rejection during a test fails that test (afterEach); one after the last
 * test, during teardown, fails the file (afterAll, which runs after every
 * other file-level afterAll since this file's hooks are registered first).
 */
import { afterAll, afterEach } from 'vitest';

const seen: { kind: string; error: unknown }[] = [];
const onRejection = (error: unknown) => seen.push({ kind: 'unhandled rejection', error });
const onException = (error: unknown) => seen.push({ kind: 'uncaught exception', error });
process.on('unhandledRejection', onRejection);
process.on('uncaughtException', onException);

const describe = (e: { kind: string; error: unknown }) =>
  `${e.kind}: ${e.error instanceof Error ? (e.error.stack ?? e.error.message) : String(e.error)}`;

function check(when: string): void {
  if (seen.length === 0) return;
  const errors = seen.splice(0);
  throw new Error(`${errors.length} error(s) nobody handled ${when}:\n${errors.map(describe).join('\n')}`);
}

afterEach(async () => {
  // A rejection is reported after the microtask queue drains: let it surface before checking.
  await new Promise((resolve) => setImmediate(resolve));
  check('during this test');
});

afterAll(async () => {
  await new Promise((resolve) => setImmediate(resolve));
  check('in this file, after its last test (teardown)');
  process.off('unhandledRejection', onRejection);
  process.off('uncaughtException', onException);
});
