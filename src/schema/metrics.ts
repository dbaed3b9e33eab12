/**
 * Metric types shared by jobs and results: the MetricInput workers send
 * (gauges on reportProgress, item metrics on reportItems), the summaries on
 * BatchJob, and the points of metricSeries.
 */
import type { MetricPoint } from '../domain/metric-history.js';
import { METRIC_LIMITS, type MetricInput as MetricInputShape, type MetricSummaryView } from '../domain/metrics.js';
import { builder } from './builder.js';

export const MetricInput = builder.inputType('MetricInput', {
  description: `A named value: a gauge (tokens per second, cost so far), an item's metric or a validation metric (accuracy); names unique within one list. Name: 1..${METRIC_LIMITS.nameLength} characters; value: a finite number (NaN and ±Infinity are refused).`,
  fields: (t) => ({
    name: t.string({ required: true, description: `1..${METRIC_LIMITS.nameLength} characters.` }),
    value: t.float({ required: true, description: 'Finite.' }),
  }),
});

export const NamedMetricRef = builder.objectRef<MetricInputShape>('NamedMetric').implement({
  description: "A named value, as reported: an item's or a validation metric.",
  fields: (t) => ({ name: t.exposeString('name', { description: 'e.g. accuracy, perplexity, fid.' }), value: t.exposeFloat('value') }),
});

export const MetricSummaryRef = builder.objectRef<MetricSummaryView>('MetricSummary').implement({
  description: `Every value reported under one name for a job (gauges and item metrics; item latencies as \`latencySeconds\`), summarized. At most ${METRIC_LIMITS.namesPerJob} names per job.`,
  fields: (t) => ({
    name: t.exposeString('name'),
    last: t.exposeFloat('last', { description: 'The newest value.' }),
    count: t.exposeInt('count', { description: 'Values reported.' }),
    mean: t.exposeFloat('mean', { description: 'Sum of the values (in the order they arrived) / count.' }),
    min: t.exposeFloat('min'),
    max: t.exposeFloat('max'),
    updatedAt: t.expose('updatedAt', { type: 'DateTime', description: 'When the newest value arrived.' }),
  }),
});

export const MetricPointRef = builder.objectRef<MetricPoint>('MetricPoint').implement({
  description: 'One point of a metric series (metricSeries).',
  fields: (t) => ({
    step: t.exposeInt('step', {
      description: "The point's x: the training step (loss, learningRate; validation results at their step), the item's `seq` (item metrics, latencySeconds), or the n-th value of a gauge.",
    }),
    value: t.exposeFloat('value'),
    timestamp: t.expose('timestamp', { type: 'DateTime', description: 'When the value was reported.' }),
  }),
});
