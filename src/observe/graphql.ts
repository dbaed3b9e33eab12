/**
 * The envelop plugin that observes GraphQL operations on both transports
 * (HTTP/SSE through Yoga, and graphql-ws, which executes through the same envelop):
 *
 * - `runwatch_graphql_operations_total{type,field,outcome}` and the duration
 *   histogram. `field` is the first root field of the operation (bounded by
 *   the schema); the client's operation name is free text and so is not a label.
 * - one log line per operation that ended with errors (`operation_error`, with
 *   the code, root field, transport and trace id);
 * - `runwatch_subscriptions_active{field,transport}` while a subscription runs;
 * - SSE streams as connections: `runwatch_connections_open{transport="sse"}`
 *   and one log line when a stream opens and when it closes (with how it ended and its duration).
 *
 * Parse and validation failures count with `type="unknown"`, `field="unknown"`.
 */
import { getCurrentOtelContext } from '@envelop/opentelemetry';
import { getOperationAST, Kind, type DocumentNode, type ExecutionResult, type GraphQLError } from 'graphql';
import { isAsyncIterable, type Plugin } from 'graphql-yoga';
import type { Logger } from 'pino';
import { AuthError } from '../auth/tokens.js';
import { watchIterator, type EndReason } from '../delivery/watched-iterator.js';
import type { MemberObserver, StreamTransport } from '../delivery/live-stream.js';
import { DomainError } from '../domain/errors.js';
import { isHttpContext, type ViewerContext } from '../request-context.js';
import { outcomeLabel, type Metrics, type Transport } from './metrics.js';
import { traceFields } from './trace-context.js';

/** The `extensions.code` of an error, looking through wrapped originals; INTERNAL_SERVER_ERROR when it has none. */
export function errorCodeOf(error: unknown): string {
  let current = error as (Error & { extensions?: { code?: unknown }; originalError?: unknown }) | undefined;
  for (let depth = 0; current && depth < 10; depth++) {
    const code = current.extensions?.code;
    if (typeof code === 'string') return code;
    if (current instanceof DomainError) return current.code;
    if (current instanceof AuthError) return 'UNAUTHENTICATED';
    current = current.originalError as typeof current;
  }
  return 'INTERNAL_SERVER_ERROR';
}

/** Operation type and first root field of a document (both bounded by the schema once it validated). */
function describe(document: DocumentNode, operationName: string | null | undefined): { type: string; field: string } {
  const operation = getOperationAST(document, operationName);
  if (!operation) return { type: 'unknown', field: 'unknown' };
  const first = operation.selectionSet.selections[0];
  return { type: operation.operation, field: first?.kind === Kind.FIELD ? first.name.value : 'fragment' };
}

const transportOf = (context: unknown): Transport => (isHttpContext(context) ? 'sse' : 'ws');

/** Builds the plugin; see the module doc. */
export function useOperationObservability(deps: { metrics: Metrics; log: Logger; now?: () => number }): Plugin<ViewerContext> {
  const { metrics } = deps;
  const log = deps.log.child({ component: 'graphql' });
  const now = deps.now ?? Date.now;

  const logErrors = (context: ViewerContext, what: { type: string; field: string }, errors: readonly GraphQLError[], otelContext: ReturnType<typeof getCurrentOtelContext> | undefined) => {
    const code = errorCodeOf(errors[0]);
    const fields = {
      event: 'operation_error',
      transport: transportOf(context),
      operation: what.type,
      field: what.field,
      code,
      errors: errors.length,
      message: code === 'INTERNAL_SERVER_ERROR' ? undefined : errors[0]?.message,
      sub: context.viewer?.userId,
      ...(otelContext ? traceFields(otelContext) : {}),
    };
    if (code === 'INTERNAL_SERVER_ERROR') log.warn(fields, 'operation failed');
    else log.info(fields, 'operation error');
  };

  return {
    onParse: () => ({ result }) => {
      if (result instanceof Error) metrics.operations.inc({ type: 'unknown', field: 'unknown', outcome: 'GRAPHQL_PARSE_FAILED' });
    },
    onValidate: () => ({ result }) => {
      if (result.length > 0) metrics.operations.inc({ type: 'unknown', field: 'unknown', outcome: 'GRAPHQL_VALIDATION_FAILED' });
    },
    onExecute: ({ args }) => {
      const started = now();
      const what = describe(args.document, args.operationName);
      // Method syntax, not an arrow: tsx (esbuild keepNames) would name every per-request arrow with defineProperty.
      return {
        onExecuteDone({ result }) {
          if (isAsyncIterable(result)) return; // incremental delivery: not used by runwatch's schema
          const errors = (result as ExecutionResult).errors;
          const outcome = errors?.length ? outcomeLabel(errorCodeOf(errors[0])) : 'ok';
          metrics.operations.inc({ ...what, outcome });
          metrics.operationDuration.observe(what, (now() - started) / 1000);
          if (errors?.length) logErrors(args.contextValue, what, errors, safeOtelContext(args.contextValue));
        },
      };
    },
    onSubscribe: ({ args }) => {
      const started = now();
      const what = describe(args.document, args.operationName);
      const transport = transportOf(args.contextValue);
      // Method syntax, not arrows: tsx names arrows in object literals with defineProperty (a dictionary per closure per subscription).
      return {
        onSubscribeResult({ result, setResult }) {
          metrics.operationDuration.observe(what, (now() - started) / 1000);
          if (!isAsyncIterable(result)) {
            const errors = result.errors ?? [];
            metrics.operations.inc({ ...what, outcome: errors.length ? outcomeLabel(errorCodeOf(errors[0])) : 'ok' });
            if (errors.length) logErrors(args.contextValue, what, errors, safeOtelContext(args.contextValue));
            return;
          }
          const members = (args.contextValue as { transport?: StreamTransport }).transport?.members;
          if (members) {
            // A shared channel's subscription (src/transport/shared-channel.ts): each member counts as a subscription, the channel not.
            members.push(new MemberCount(metrics, what.field, transport));
            return;
          }
          metrics.operations.inc({ ...what, outcome: 'ok' });
          // The end hook is an object of its own: a closure here would keep `args` (and the GraphQL context) alive as long as the subscription.
          setResult(watchIterator(result, new SubscriptionEnd(metrics, log, now, what.field, transport, args.contextValue.viewer?.userId)));
        },
      };
    },
  };
}

/**
 * What a running subscription needs to report its end (the watchIterator
 * options of {@link useOperationObservability}): the gauge back down, and
 * for SSE the connection gauge and the close log line. Counts up on construction.
 */
class SubscriptionEnd {
  private readonly active: { field: string; transport: Transport };
  private readonly opened: number;

  constructor(
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly clock: () => number,
    private readonly field: string,
    transport: Transport,
    private readonly sub: string | undefined,
  ) {
    // Labels as a plain object, not `.labels()`: that builds a child with five closures per subscription.
    this.active = { field, transport };
    metrics.subscriptionsActive.inc(this.active);
    this.opened = clock();
    if (transport === 'sse') {
      metrics.connectionsOpen.inc({ transport: 'sse' });
      metrics.connectionsTotal.inc({ transport: 'sse' });
      log.debug({ event: 'connection_open', transport: 'sse', field, sub }, 'sse stream open');
    }
  }

  /** The subscription ended (watchIterator's `onEnd`). */
  onEnd(reason: EndReason): void {
    this.metrics.subscriptionsActive.dec(this.active);
    if (this.active.transport !== 'sse') return;
    this.metrics.connectionsOpen.dec({ transport: 'sse' });
    this.log.debug(
      { event: 'connection_close', transport: 'sse', field: this.field, reason, durationMs: this.clock() - this.opened, sub: this.sub },
      'sse stream closed',
    );
  }
}

/**
 * Counts the members of one shared channel as subscriptions: each joiner is
 * one successful subscription operation and one `runwatch_subscriptions_active`
 * while it stays (WebSocket only: SSE subscriptions never share a channel).
 */
class MemberCount implements MemberObserver {
  private readonly active: { field: string; transport: Transport };
  private readonly operation: { type: string; field: string; outcome: string };

  constructor(
    private readonly metrics: Metrics,
    field: string,
    transport: Transport,
  ) {
    this.active = { field, transport };
    this.operation = { type: 'subscription', field, outcome: 'ok' };
  }

  joined(): void {
    this.metrics.operations.inc(this.operation);
    this.metrics.subscriptionsActive.inc(this.active);
  }

  left(): void {
    this.metrics.subscriptionsActive.dec(this.active);
  }
}

/** The OpenTelemetry context of an operation, when the tracing plugin made one. */
function safeOtelContext(context: object) {
  try {
    return getCurrentOtelContext(context);
  } catch {
    return undefined;
  }
}
