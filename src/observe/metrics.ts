/**
 * Prometheus metrics of one server instance (prom-client), served at `/metrics`.
 *
 * Each server owns its own {@link Registry} (tests run several servers in one
 * process), with the default process metrics plus runwatch's own. Every label
 * set is bounded: transports, root field names from the schema, event types,
 * error codes and fixed reasons — never a job id, user id or client-chosen name.
 *
 * Hot path: per event and instance, one counter increment when it is
 * published; per event and subscriber, one histogram observation when it is
 * delivered (`runwatch_events_delivered_total` is read from that histogram's
 * counts at scrape time, so delivery costs a single observation).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { PROGRESS_EVENT_TYPES, type JobEvent } from '../domain/job.js';

/** Transports a client can hold open. */
export type Transport = 'ws' | 'sse';

/** Why events were conflated (replaced by a newer PROGRESS before going out). */
export type ConflationReason = 'publish_rate' | 'slow_consumer';

/** Why events were dropped (never delivered to some subscriber). */
export type DropReason = 'slow_consumer' | 'malformed';

/** Error codes a GraphQL outcome label may take; anything else counts as INTERNAL_SERVER_ERROR. */
export const OUTCOME_CODES = new Set([
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'NOT_FOUND',
  'BAD_USER_INPUT',
  'CONFLICT',
  'RATE_LIMITED',
  'SERVICE_UNAVAILABLE',
  'SLOW_CONSUMER',
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'INTERNAL_SERVER_ERROR',
]);

/** Delivery latency buckets, seconds: 1 ms … 10 s. */
export const LATENCY_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * A histogram labelled by event type, built for the per-subscriber delivery
 * path: `observe` is a map lookup and a short bucket scan (tens of
 * nanoseconds; prom-client's labelled `observe` costs about a microsecond).
 * It registers with a prom-client registry like any metric (`get()`/`reset()`).
 */
export class TypeHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<string, { counts: Float64Array; sum: number; count: number }>();

  constructor(
    readonly name: string,
    readonly help: string,
    /** Upper bounds, ascending, in the observed unit. */
    readonly buckets: readonly number[],
  ) {}

  /** Records one value for `type`. */
  observe(type: string, value: number): void {
    let s = this.series.get(type);
    if (!s) this.series.set(type, (s = { counts: new Float64Array(this.buckets.length), sum: 0, count: 0 }));
    const bounds = this.buckets;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        s.counts[i]!++;
        break;
      }
    }
    s.sum += value;
    s.count++;
  }

  /** Observations per type so far. */
  counts(): Map<string, number> {
    return new Map([...this.series].map(([type, s]) => [type, s.count]));
  }

  /** prom-client's metric shape: cumulative `_bucket` samples, `_sum` and `_count` per type. */
  async get() {
    const values: { value: number; labels: Record<string, string | number>; metricName: string }[] = [];
    for (const [type, s] of this.series) {
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += s.counts[i]!;
        values.push({ value: cumulative, labels: { le, type }, metricName: `${this.name}_bucket` });
      });
      values.push({ value: s.count, labels: { le: '+Inf', type }, metricName: `${this.name}_bucket` });
      values.push({ value: s.sum, labels: { type }, metricName: `${this.name}_sum` });
      values.push({ value: s.count, labels: { type }, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.series.clear();
  }
}

/** The instruments of one server; see the module doc for names and labels. */
export class Metrics {
  /** The registry `/metrics` serves. */
  readonly registry = new Registry();

  /** `runwatch_connections_open{transport}`: open WebSockets and SSE streams. */
  readonly connectionsOpen = new Gauge({
    name: 'runwatch_connections_open',
    help: 'Open client connections by transport (ws: WebSockets, sse: SSE subscription streams).',
    labelNames: ['transport'] as const,
    registers: [this.registry],
  });

  /** `runwatch_connections_total{transport}`: connections ever opened. */
  readonly connectionsTotal = new Counter({
    name: 'runwatch_connections_total',
    help: 'Client connections opened, by transport.',
    labelNames: ['transport'] as const,
    registers: [this.registry],
  });

  /** `runwatch_connections_refused_total{transport,reason}`: connections refused (origin, per-user cap, token). */
  readonly connectionsRefused = new Counter({
    name: 'runwatch_connections_refused_total',
    help: 'Connections refused, by transport and reason (origin, too_many_connections, unauthorized, expired).',
    labelNames: ['transport', 'reason'] as const,
    registers: [this.registry],
  });

  /** `runwatch_subscriptions_active{field,transport}`: running subscriptions by root field. */
  readonly subscriptionsActive = new Gauge({
    name: 'runwatch_subscriptions_active',
    help: 'Active GraphQL subscriptions by root field and transport.',
    labelNames: ['field', 'transport'] as const,
    registers: [this.registry],
  });

  /** `runwatch_events_published_total{type}`: events this instance committed and published. */
  readonly eventsPublished = new Counter({
    name: 'runwatch_events_published_total',
    help: 'Job events committed and published by this instance, by event type (once per event, not per subscriber).',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });

  /** `runwatch_event_delivery_latency_seconds{type}`: event timestamp → handed to the socket, per subscriber. */
  readonly deliveryLatency = new TypeHistogram(
    'runwatch_event_delivery_latency_seconds',
    'Seconds from an event being published (its timestamp) to its delivery to a subscriber socket, by event type. SNAPSHOT and replayed events count from their own timestamp.',
    LATENCY_BUCKETS_SECONDS,
  );

  /** `runwatch_events_conflated_total{reason}`. */
  readonly eventsConflated = new Counter({
    name: 'runwatch_events_conflated_total',
    help: 'PROGRESS events conflated (a newer state replaced them), by reason: publish_rate (RUNWATCH_PROGRESS_HZ at the publisher), slow_consumer (a lagging subscriber queue).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  /** `runwatch_events_dropped_total{reason}`. */
  readonly eventsDropped = new Counter({
    name: 'runwatch_events_dropped_total',
    help: 'Events not delivered, by reason: slow_consumer (queued events of a subscriber dropped for lagging; it resumes from its cursor), malformed (undecodable pub/sub messages).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  /** `runwatch_events_replayed_total`. */
  readonly eventsReplayed = new Counter({
    name: 'runwatch_events_replayed_total',
    help: 'Events replayed from history to subscriptions resuming with `after`.',
    registers: [this.registry],
  });

  /** `runwatch_redis_errors_total{kind}`. */
  readonly redisErrors = new Counter({
    name: 'runwatch_redis_errors_total',
    help: 'Redis errors by kind: command (a store operation failed in Redis), connection (client error events), pubsub (subscribe or message errors).',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  /**
   * `runwatch_process_errors_total{kind}`: errors no code path handled, caught by the
   * process net (src/observe/process-net.ts): kind `unhandled_rejection` or `uncaught_exception`.
   * Anything above 0 is a bug to report; see docs/operations.md for which end the process.
   */
  readonly processErrors = new Counter({
    name: 'runwatch_process_errors_total',
    help: 'Errors no code path handled, by kind: unhandled_rejection (logged, process keeps running), uncaught_exception (logged, process shuts down gracefully and exits 1).',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  /** `runwatch_redis_reconnects_total`. */
  readonly redisReconnects = new Counter({
    name: 'runwatch_redis_reconnects_total',
    help: 'Times the Redis command connection came back after being down.',
    registers: [this.registry],
  });

  /** `runwatch_redis_up`: 1 while the Redis command and subscriber connections are ready (removed on the memory backend). */
  readonly redisUp = new Gauge({
    name: 'runwatch_redis_up',
    help: '1 while the Redis connections (commands and pub/sub subscriber) are ready, 0 during an outage.',
    registers: [this.registry],
  });

  /** `runwatch_graphql_operations_total{type,field,outcome}`. */
  readonly operations = new Counter({
    name: 'runwatch_graphql_operations_total',
    help: 'GraphQL operations by type, root field (the first one of the document) and outcome (ok, or the error code).',
    labelNames: ['type', 'field', 'outcome'] as const,
    registers: [this.registry],
  });

  /** `runwatch_graphql_operation_duration_seconds{type,field}`: queries and mutations (subscriptions: until the stream opened). */
  readonly operationDuration = new Histogram({
    name: 'runwatch_graphql_operation_duration_seconds',
    help: 'Seconds to execute a query or mutation, or to open a subscription stream, by type and root field.',
    labelNames: ['type', 'field'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });

  /** `runwatch_rate_limited_total{limit}`. */
  readonly rateLimited = new Counter({
    name: 'runwatch_rate_limited_total',
    help: 'Requests refused with RATE_LIMITED, by limit: mutations (token bucket), subscriptions_per_connection, connections_per_user.',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });

  /** `runwatch_token_expiry_closes_total{transport}`. */
  readonly expiryCloses = new Counter({
    name: 'runwatch_token_expiry_closes_total',
    help: 'Connections (ws, closed with 4403) and SSE streams ended because their token expired.',
    labelNames: ['transport'] as const,
    registers: [this.registry],
  });

  private readonly publishedByType = new Map<string, { inc(value?: number): void }>();

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
    for (const type of PROGRESS_EVENT_TYPES) this.publishedByType.set(type, this.eventsPublished.labels(type));
    this.registry.registerMetric(this.deliveryLatency as unknown as Parameters<Registry['registerMetric']>[0]);
    const latency = this.deliveryLatency;
    new Counter({
      name: 'runwatch_events_delivered_total',
      help: 'Job events delivered to subscribers, by event type (once per event per subscriber; read from the delivery latency histogram).',
      labelNames: ['type'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [type, count] of latency.counts()) this.inc({ type }, count);
      },
    });
  }

  /** One event delivered to one subscriber, at `nowMs` (epoch ms). Hot path: one observation. */
  delivered(event: { type: string; timestamp: number }, nowMs = Date.now()): void {
    this.deliveryLatency.observe(event.type, Math.max(0, (nowMs - event.timestamp) / 1000));
  }

  /** Events committed and published by this instance (once per event). */
  published(events: readonly JobEvent[]): void {
    for (const event of events) (this.publishedByType.get(event.type) ?? this.eventsPublished.labels(event.type)).inc();
  }

  /** The Prometheus text exposition of every metric. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/** Maps an error code to a bounded outcome label. */
export const outcomeLabel = (code: string | undefined): string => (code && OUTCOME_CODES.has(code) ? code : 'INTERNAL_SERVER_ERROR');
