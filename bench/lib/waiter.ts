/**
 * Waiting in a load generator for a condition its message handlers change
 * (connections open, events counted): `until(done, ms)` re-checks `done()`
 * whenever a handler calls `wake()`, and at least every 100 ms, and gives up
 * after `ms` milliseconds. One waiter per process; handlers call `wake()` on
 * every message that may change the condition (cheap when nobody waits).
 */
export class Waiter {
  private waiting: (() => void) | null = null;

  /** Lets a pending `until` re-check its condition now. */
  wake(): void {
    this.waiting?.();
  }

  /** Resolves true once `done()` holds, or false after `timeoutMs` (milliseconds). */
  async until(done: () => boolean, timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    while (!done()) {
      const left = deadline - performance.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 100));
        this.waiting = () => {
          clearTimeout(timer);
          this.waiting = null;
          resolve();
        };
      });
    }
    return true;
  }
}
