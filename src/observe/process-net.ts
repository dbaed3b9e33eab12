/**
 * The process-level net: what happens to an error no code path handled.
 *
 * - `unhandledRejection`: logged at error level with the reason and its
 *   stack, counted in `runwatch_process_errors_total{kind="unhandled_rejection"}`,
 *   and the process keeps running. A rejection nobody awaited has already
 *   lost its caller; nothing else is left half-done by it, and ending the
 *   process would drop every client of the instance for one stray promise
 *   (Node's default since v15 is to crash).
 * - `uncaughtException`: logged at fatal level, counted
 *   (`kind="uncaught_exception"`), then the server shuts down gracefully
 *   (clients are told to reconnect elsewhere and resume from their cursors)
 *   and the process exits with code 1 for the supervisor to restart it. After
 *   a synchronous throw escaped, state may be half-updated: Node documents
 *   resuming as unsafe. A second one during that shutdown exits at once.
 *
 * Both are bugs to report: the metric should stay 0. docs/operations.md
 * states the same for operators.
 */
import type { Logger } from 'pino';
import type { Metrics } from './metrics.js';

/** What {@link installProcessNet} needs. */
export interface ProcessNetDeps {
  log: Logger;
  /** The metrics to count in; null before the server has started (then only logged). */
  metrics: () => Metrics | null;
  /** Called once, on the first uncaught exception: shut down and exit (code 1). */
  onFatal: (error: unknown) => void;
  /** Where the events come from (default: `process`; tests pass an EventEmitter). */
  target?: NodeJS.EventEmitter;
}

/**
 * Installs the `unhandledRejection` and `uncaughtException` handlers.
 * @returns a function that removes them.
 */
export function installProcessNet(deps: ProcessNetDeps): () => void {
  const target = deps.target ?? process;
  const log = deps.log.child({ component: 'process' });
  let fatal = false;
  const onRejection = (reason: unknown, promise?: Promise<unknown>) => {
    deps.metrics()?.processErrors.inc({ kind: 'unhandled_rejection' });
    log.error(
      { event: 'unhandled_rejection', err: reason, promise: promise ? String(promise) : undefined },
      'unhandled promise rejection (a bug: please report it); the process keeps running',
    );
  };
  const onException = (error: unknown, origin?: string) => {
    deps.metrics()?.processErrors.inc({ kind: 'uncaught_exception' });
    log.fatal({ event: 'uncaught_exception', err: error, origin }, 'uncaught exception (a bug: please report it); shutting down');
    if (fatal) {
      process.exit(1);
    }
    fatal = true;
    deps.onFatal(error);
  };
  target.on('unhandledRejection', onRejection);
  target.on('uncaughtException', onException);
  return () => {
    target.off('unhandledRejection', onRejection);
    target.off('uncaughtException', onException);
  };
}
