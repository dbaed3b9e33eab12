/**
 * OpenTelemetry: a traced operation produces a span per GraphQL operation and
 * child spans for the Redis commands it issued, into an in-memory exporter;
 * the operation's error log line carries the same trace id; a shared
 * channel's subscription is one span, open while any member is.
 */
import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { traceLogMixin } from '../../src/observe/trace-context.js';
import type { RunningServer } from '../../src/server.js';
import { errorCode, gql, gqlHttp, subscribeWs, wsClient } from '../helpers/clients.js';
import { sharedChannelStats } from '../../src/transport/shared-channel.js';
import { waitUntil } from '../helpers/wait.js';
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

  it('makes one span per shared channel, ended when its last member leaves', async () => {
    const tok = await token({ inst: freshInstitute() });
    const run = (await gql(server.url, tok, 'mutation { createBatchJob(input: { name: "traced", total: 5 }) { id } }')).createBatchJob.id as string;
    const WATCH = 'subscription Watch($runId: ID!) { runProgress(runId: $runId) { cursor type } }';
    const ended = () => exporter.getFinishedSpans().filter((s) => s.name === 'subscription.Watch').length;
    const before = ended();
    // The first subscription of a document text goes through Yoga (validated and cached): a span of its own.
    const prime = subscribeWs(wsClient(server.url, tok), WATCH, { runId: run }, 'runProgress');
    await prime.waitForCount(1);
    prime.dispose();
    await waitUntil(ended, (n) => n === before + 1, 'the priming subscription span to end');
    const opened = sharedChannelStats.opened;
    const a = subscribeWs(wsClient(server.url, tok), WATCH, { runId: run }, 'runProgress');
    const b = subscribeWs(wsClient(server.url, tok), WATCH, { runId: run }, 'runProgress');
    await Promise.all([a.waitForCount(1), b.waitForCount(1)]);
    expect(sharedChannelStats.opened).toBe(opened + 1);
    a.dispose();
    await gql(server.url, tok, 'mutation($id: ID!) { reportProgress(input: { jobId: $id, completedDelta: 1 }) { id } }', { id: run });
    await b.waitForCount(2);
    expect(ended()).toBe(before + 1); // one member left: the channel (and its span) goes on
    b.dispose();
    await waitUntil(ended, (n) => n === before + 2, 'the channel span to end with its last member');
  });
});
