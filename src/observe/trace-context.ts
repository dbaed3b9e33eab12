/**
 * The active trace, for logs. Depends only on @opentelemetry/api, which is a
 * no-op until a tracer provider is registered, so the logger can always use it.
 */
import { context, trace, type Context as OtelContext } from '@opentelemetry/api';

/** `{ trace_id, span_id }` of the span in `ctx` (default: the active one); empty when there is none. */
export function traceFields(ctx: OtelContext = context.active()): { trace_id?: string; span_id?: string } {
  const span = trace.getSpan(ctx);
  if (!span) return {};
  const { traceId, spanId, traceFlags } = span.spanContext();
  // traceFlags bit 0: sampled. An unsampled or invalid context has nothing to link to.
  if (!(traceFlags & 1) || /^0+$/.test(traceId)) return {};
  return { trace_id: traceId, span_id: spanId };
}

/** pino `mixin`: adds the active trace and span ids to every log line written inside a traced operation. */
export const traceLogMixin = (): Record<string, string> => traceFields() as Record<string, string>;
