/**
 * Memory probe for benchmark peers, loaded with
 * `node --expose-gc --import tsx --import ./bench/lib/mem-probe.ts <peer>`.
 * On SIGUSR2 it runs a full GC (three times, a turn of the event loop apart,
 * so finalizers and weak callbacks run), waits `BENCH_SETTLE_MS` (default
 * 300 ms), and prints one line on stdout:
 * `mem {"rssKiB":…,"heapUsed":…,"external":…,"arrayBuffers":…}` — VmRSS from
 * /proc/self/status in KiB and `process.memoryUsage()` in bytes.
 * A signal rather than an IPC channel: it costs the peer no file descriptor
 * (the connections benchmark needs every one). With `BENCH_HEAP_SNAPSHOTS=<dir>`
 * each probe also writes `<dir>/<pid>-<n>.heapsnapshot` (slow; for analysis).
 * Without --expose-gc it measures without collecting and says so (`gc: false`).
 * With `BENCH_MEM_LOG=<file>` it also appends, every 100 ms, one JSON line of
 * VmRSS (KiB), `process.memoryUsage()` and V8's heap spaces (used/committed
 * bytes by space: new_space, old_space, large_object_space, …), for seeing
 * where a peak of RSS is (no GC forced).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { appendFileSync } from 'node:fs';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';

const gc = (globalThis as { gc?: () => void }).gc;
const settleMs = Number(process.env.BENCH_SETTLE_MS ?? 300);
const snapshots = process.env.BENCH_HEAP_SNAPSHOTS;
let probes = 0;

process.on('SIGUSR2', () => {
  void (async () => {
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    for (let i = 0; i < 3 && gc; i++) {
      gc();
      await turn();
    }
    await new Promise((resolve) => setTimeout(resolve, settleMs));
    if (snapshots) writeHeapSnapshot(join(snapshots, `${process.pid}-${++probes}.heapsnapshot`));
    const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
    const { heapUsed, external, arrayBuffers } = process.memoryUsage();
    process.stdout.write(`mem ${JSON.stringify({ rssKiB, heapUsed, external, arrayBuffers, gc: Boolean(gc) })}\n`);
  })();
});

const memLog = process.env.BENCH_MEM_LOG;
if (memLog) {
  setInterval(() => {
    const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]);
    const spaces = Object.fromEntries(getHeapSpaceStatistics().map((s) => [s.space_name, [s.space_used_size, s.physical_space_size]]));
    appendFileSync(memLog, `${JSON.stringify({ t: Date.now(), rssKiB, ...process.memoryUsage(), spaces })}\n`);
  }, 100).unref();
}
