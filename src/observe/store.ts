/**
 * A {@link Backend} whose store counts what passes through it, without the
 * backend knowing: events published (once per committed event), PROGRESS
 * conflated at the publisher (a report whose PROGRESS was deferred by
 * RUNWATCH_PROGRESS_HZ), and Redis command failures per store operation.
 * The wrapped store behaves exactly like the original.
 */
import type { Backend, JobStore } from '../backends/types.js';
import { DomainError } from '../domain/errors.js';
import type { Metrics } from './metrics.js';

/** Is this a failure of Redis itself (not a domain answer like NOT_FOUND)? */
function isBackendFailure(error: unknown): boolean {
  return !(error instanceof DomainError) || error.code === 'SERVICE_UNAVAILABLE';
}

/**
 * Wraps `backend.store` with metrics. Redis errors are counted only for the
 * Redis backends (kind `command`).
 * @returns a backend with the same bus and close, and the instrumented store.
 */
export function instrumentBackend(backend: Backend, metrics: Metrics): Backend {
  const inner = backend.store;
  const counted = <T>(promise: Promise<T>): Promise<T> =>
    backend.kind !== 'memory'
      ? promise.catch((error: unknown) => {
          if (isBackendFailure(error)) metrics.redisErrors.inc({ kind: 'command' });
          throw error;
        })
      : promise;
  const store: JobStore = {
    create: (job, idem) => counted(inner.create(job, idem)),
    get: (id) => counted(inner.get(id)),
    list: (tenant, filter, first, after) => counted(inner.list(tenant, filter, first, after)),
    update: (id, change) =>
      counted(
        inner.update(id, change).then((result) => {
          if (result) {
            metrics.published(result.events);
            if (result.flushAtMs !== null && !result.events.some((e) => e.type === 'PROGRESS')) metrics.eventsConflated.inc({ reason: 'publish_rate' });
          }
          return result;
        }),
      ),
    restore: (job) => counted(inner.restore(job)),
    history: (id, afterOffset) => counted(inner.history(id, afterOffset)),
    ping: () => inner.ping(),
    close: () => inner.close(),
  };
  return { ...backend, store };
}
