/**
 * Item results: what a job produced per item (an evaluation's per-example
 * result with its metrics and latency, a pipeline's extracted field), as a
 * worker reports them with `reportItems`.
 *
 * Pure: validation and the stored form; the job's counters, summaries and the
 * ITEM_RESULTS event are job.ts `applyItems`.
 */
import { badInput } from './errors.js';
import { validateMetrics, type MetricInput } from './metrics.js';

/** One item result as a worker reports it. */
export interface ItemResultInput {
  /** The worker's id of the item (a row id, a file name), 1..200 characters. */
  itemId: string;
  /** True when the item succeeded (counts as completed), false when it failed (counts as failed). */
  ok: boolean;
  /** Seconds the item took; finite, ≥ 0. */
  latencySeconds?: number | null;
  /** The item's metrics (at most 50; finite values). */
  metrics?: readonly MetricInput[] | null;
  /** Why it failed, at most 2000 characters. */
  error?: string | null;
  /** Free-form JSON output of the item, at most 4 KiB serialized. */
  data?: unknown;
}

/** One stored item result: the input, normalised, with its place and time. */
export interface ItemResult {
  /** 1 for the job's first reported item, then +1 per item: the order results were reported in. */
  seq: number;
  itemId: string;
  ok: boolean;
  latencySeconds: number | null;
  metrics: MetricInput[];
  error: string | null;
  data: unknown;
  /** Epoch ms when runwatch received it. */
  timestamp: number;
}

/** Bounds of reportItems (characters unless noted). */
export const ITEM_LIMITS = {
  /** Most items per reportItems call (and so per ITEM_RESULTS event). */
  perCall: 500,
  itemIdLength: 200,
  errorLength: 2000,
  /** Most characters of an item's `data` as JSON (4 KiB). */
  dataJson: 4096,
  /** Most characters of `data` as JSON in one call (256 KiB), which bounds an ITEM_RESULTS event. */
  dataJsonPerCall: 262_144,
} as const;

/**
 * Validates a reportItems batch.
 * @throws DomainError BAD_USER_INPUT naming the field (e.g. `items[3].metrics[0].value`): an empty or
 *   over-long batch, an empty or long itemId, a negative or non-finite latency, bad metrics (see
 *   metrics.ts `validateMetrics`), a long error, `data` over 4 KiB of JSON, or over 256 KiB of it in the call.
 */
export function validateItems(items: readonly ItemResultInput[]): void {
  if (items.length === 0) throw badInput('items', 'items must not be empty');
  if (items.length > ITEM_LIMITS.perCall) throw badInput('items', `at most ${ITEM_LIMITS.perCall} items per call`);
  let dataJson = 0;
  items.forEach((item, i) => {
    const at = `items[${i}]`;
    if (item.itemId.trim().length === 0) throw badInput(`${at}.itemId`, 'itemId must not be empty');
    if (item.itemId.length > ITEM_LIMITS.itemIdLength) throw badInput(`${at}.itemId`, `itemId is at most ${ITEM_LIMITS.itemIdLength} characters`);
    const latency = item.latencySeconds;
    if (latency != null && (!Number.isFinite(latency) || latency < 0))
      throw badInput(`${at}.latencySeconds`, `latencySeconds must be a finite number ≥ 0, got ${latency}`);
    validateMetrics(`${at}.metrics`, item.metrics ?? []);
    if (item.error != null && item.error.length > ITEM_LIMITS.errorLength)
      throw badInput(`${at}.error`, `error is longer than ${ITEM_LIMITS.errorLength} characters`);
    if (item.data !== undefined && item.data !== null) {
      const size = JSON.stringify(item.data).length;
      if (size > ITEM_LIMITS.dataJson) throw badInput(`${at}.data`, `data is larger than ${ITEM_LIMITS.dataJson} characters of JSON`);
      dataJson += size;
      if (dataJson > ITEM_LIMITS.dataJsonPerCall)
        throw badInput('items', `the items' data is larger than ${ITEM_LIMITS.dataJsonPerCall} characters of JSON in all; send fewer items per call`);
    }
  });
}

/** The stored results of a validated batch, numbered from `firstSeq`. */
export function toItemResults(items: readonly ItemResultInput[], firstSeq: number, nowMs: number): ItemResult[] {
  return items.map((item, i) => ({
    seq: firstSeq + i,
    itemId: item.itemId,
    ok: item.ok,
    latencySeconds: item.latencySeconds ?? null,
    metrics: (item.metrics ?? []).map(({ name, value }) => ({ name, value })),
    error: item.error ?? null,
    data: item.data ?? null,
    timestamp: nowMs,
  }));
}
