/**
 * OpenTelemetry tracing. Off unless configured with the standard OTEL_*
 * variables (see config.ts `tracing`), or unless an embedder or test passes a
 * tracer provider.
 *
 * - A span per GraphQL operation, from @envelop/opentelemetry (span name
 *   `<type>.<operationName>`, e.g. `mutation.Report`; for subscriptions it
 *   lasts as long as the stream).
 * - A client span per Redis command (`redis <COMMAND>`, e.g. `redis evalsha`)
 *   issued while an operation is being served, from ioredis' own
 *   `diagnostics_channel` tracing channels (`ioredis:command`,
 *   `ioredis:batch`); arguments are not recorded.
 * - Log lines written inside an operation carry `trace_id` and `span_id`
 *   (see trace-context.ts).
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { useOpenTelemetry } from '@envelop/opentelemetry';
import { context, SpanKind, SpanStatusCode, trace, type Span, type Tracer, type TracerProvider } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, ConsoleSpanExporter } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { Plugin } from 'graphql-yoga';
import type { TracingConfig } from '../config.js';

/** The instrumentation scope name of runwatch's spans. */
export const TRACER_NAME = 'runwatch';

let processProvider: NodeTracerProvider | null = null;

/**
 * Starts the process-wide tracer provider from OTEL_* settings (once per
 * process; later calls return the same provider) and registers it globally
 * with an AsyncLocalStorage context manager, so spans nest across awaits.
 * The OTLP exporter reads its own OTEL_EXPORTER_OTLP_* variables (endpoint, headers, timeout).
 */
export function startProcessTracing(config: TracingConfig): NodeTracerProvider {
  if (processProvider) return processProvider;
  const exporter = config.exporter === 'console' ? new ConsoleSpanExporter() : new OTLPTraceExporter();
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': config.serviceName }),
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  provider.register();
  processProvider = provider;
  return provider;
}

/** Flushes and stops the process-wide provider, if one was started (call at process exit). */
export async function stopProcessTracing(): Promise<void> {
  const provider = processProvider;
  processProvider = null;
  await provider?.shutdown();
}

/**
 * The Yoga/envelop plugin that opens a span per GraphQL operation. Variables
 * and results are never recorded; the document is, unless it has inline
 * arguments (which might hold secrets).
 */
export function useOperationTracing(provider: TracerProvider): Plugin {
  return useOpenTelemetry({ resolvers: false, variables: false, result: false, document: true }, provider, SpanKind.SERVER, {}, TRACER_NAME) as Plugin;
}

type ChannelContext = { command?: string; batchMode?: string; batchSize?: number; serverAddress?: string; serverPort?: number; error?: unknown };
const SPAN = Symbol('runwatch.redisSpan');
type Traced = ChannelContext & { [SPAN]?: Span };

let redisTracer: Tracer | null = null;
let redisSubscribers = 0;

function startSpan(ctx: Traced): void {
  const tracer = redisTracer;
  const parent = context.active();
  if (!tracer || !trace.getSpan(parent)) return;
  const operation = ctx.command ? ctx.command.toUpperCase() : (ctx.batchMode ?? 'BATCH');
  ctx[SPAN] = tracer.startSpan(
    `redis ${ctx.command ?? 'batch'}`,
    {
      kind: SpanKind.CLIENT,
      attributes: {
        'db.system.name': 'redis',
        'db.operation.name': operation,
        ...(ctx.batchSize !== undefined ? { 'db.operation.batch.size': ctx.batchSize } : {}),
        ...(ctx.serverAddress ? { 'server.address': ctx.serverAddress } : {}),
        ...(ctx.serverPort ? { 'server.port': ctx.serverPort } : {}),
      },
    },
    parent,
  );
}

function endSpan(ctx: Traced): void {
  const span = ctx[SPAN];
  if (!span) return;
  delete ctx[SPAN];
  if (ctx.error !== undefined) {
    const message = ctx.error instanceof Error ? ctx.error.message : String(ctx.error);
    span.recordException(ctx.error instanceof Error ? ctx.error : message);
    span.setStatus({ code: SpanStatusCode.ERROR, message });
  }
  span.end();
}

const handlers = {
  start: (message: unknown) => startSpan(message as Traced),
  // A synchronous throw publishes `error` then `end`; a promise publishes `end` first and settles later.
  end: (message: unknown) => {
    if ((message as Traced).error !== undefined) endSpan(message as Traced);
  },
  asyncStart: () => {},
  asyncEnd: (message: unknown) => endSpan(message as Traced),
  error: () => {},
};

/**
 * Starts making a span for every Redis command issued inside a traced
 * operation, with `tracer`. ioredis' channels are process-wide: the most
 * recent tracer wins (tracing is process-wide too).
 * @returns a function that stops it (once every caller has stopped).
 */
export function traceRedisCommands(tracer: Tracer): () => void {
  redisTracer = tracer;
  if (redisSubscribers++ === 0) {
    for (const name of ['ioredis:command', 'ioredis:batch']) diagnosticsChannel.tracingChannel(name).subscribe(handlers);
  }
  let stopped = false;
  return () => {
    if (stopped) return;
    stopped = true;
    if (--redisSubscribers === 0) {
      for (const name of ['ioredis:command', 'ioredis:batch']) diagnosticsChannel.tracingChannel(name).unsubscribe(handlers);
      redisTracer = null;
    }
  };
}
