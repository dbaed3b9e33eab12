/**
 * Waiting on a condition that has no event to listen to (e.g. Redis state),
 * by polling with a deadline. The error names the condition and its last value.
 */
export async function waitUntil<T>(probe: () => Promise<T> | T, ok: (value: T) => boolean, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T;
  for (;;) {
    last = await probe();
    if (ok(last)) return last;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last value ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
