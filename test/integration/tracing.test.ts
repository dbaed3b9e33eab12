/**
 * OpenTelemetry: a traced operation produces a span per GraphQL operation and
 * child spans for the Redis commands it issued, into an in-memory exporter;
 * the operation's error log line carries the same trace id.
 */
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { traceLogMixin } from '../../src/observe/trace-context.js';
import type { RunningServer } from '../../src/server.js';
import { errorCode, gql, gqlHttp } from '../helpers/clients.js';
import { freshInstitute, startTestServer, token } from '../helpers/servers.js';

describe('tracing', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const logs: Record<string, unknown>[] = [];
  let server: RunningServer;

  beforeAll(async () => {
    provider.register(); // global context manager, so Redis spans nest under the operation's
    const logger = pino({ level: 'info', mixin: traceLogMixin }, { write: (line: string) => void logs.push(JSON.parse(line)) });
    server = await startTestServer({ backend: 'redis', tracerProvider: provider, logger });
  });
  afterAll(async () => {
    await server.close(1000);
    await provider.shutdown();
    // register() set process-wide globals; the worker runs other files next (isolate: false).
    trace.disable();
    context.disable();
    propagation.disable();
  });

  const spansOf = (traceId: string) => exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);

  it('makes a span per operation with Redis command spans under it', async () => {
    const tok = await token({ inst: freshInstitute() });
    exporter.reset();
    const { createBatchJob } = await gql(server.url, tok, `mutation CreateTraced($input: CreateBatchJobInput!) { createBatchJob(input: $input) { id } }`, {
      input: { name: 'traced', total: 3 },
    });
    expect(createBatchJob.id).toBeTruthy();

    const operation = exporter.getFinishedSpans().find((s) => s.name === 'mutation.CreateTraced');
    expect(operation, `spans: ${exporter.getFinishedSpans().map((s) => s.name).join(', ')}`).toBeDefined();
    expect(operation!.kind).toBe(SpanKind.SERVER);
    expect(operation!.attributes['graphql.execute.operationName']).toBe('CreateTraced');
    expect(operation!.attributes['graphql.execute.operationType']).toBe('mutation');
    expect(operation!.status.code).not.toBe(SpanStatusCode.ERROR);

    const redis = spansOf(operation!.spanContext().traceId).filter((s: ReadableSpan) => s.name.startsWith('redis '));
    expect(redis.length).toBeGreaterThanOrEqual(1);
    for (const span of redis) {
      expect(span.kind).toBe(SpanKind.CLIENT);
      expect(span.attributes['db.system.name']).toBe('redis');
      expect(span.parentSpanContext?.spanId).toBe(operation!.spanContext().spanId);
    }
  });

  it('marks a failed operation and logs its error with the trace id', async () => {
    const tok = await token({ inst: freshInstitute() });
    exporter.reset();
    const { body } = await gqlHttp(server.url, tok, `mutation ReportMissing { reportProgress(input: { jobId: "j_missing", completedDelta: 1 }) { status } }`);
    expect(errorCode(body)).toBe('NOT_FOUND');
    const operation = exporter.getFinishedSpans().find((s) => s.name === 'mutation.ReportMissing');
    expect(operation).toBeDefined();
    expect(operation!.status.code).toBe(SpanStatusCode.ERROR);
    const line = logs.find((l) => l.event === 'operation_error' && l.code === 'NOT_FOUND' && l.field === 'reportProgress');
    expect(line, JSON.stringify(logs.slice(-5))).toBeDefined();
    expect(line!.trace_id).toBe(operation!.spanContext().traceId);
    // No token or secret in any log line.
    expect(JSON.stringify(logs)).not.toContain(tok);
  });
});
