/**
 * JSON of values that carry a job's steps (a job event's view, a change record's job, a job-list update's view),
 * with each step's JSON made once per step object instead of once per value: a job has up to 100 steps, a report
 * changes one or two of them, and every report serializes its event and its change, each with all the steps.
 *
 * Step records and timeless step views are never changed once made (domain/steps.ts), so a step object's JSON is
 * cached by identity (weakly: it goes with the object). The value itself is serialized by `JSON.stringify` with its
 * steps array replaced by a marker string, which is then replaced by the steps' cached JSON. The marker holds a
 * random token made at start, so no client-given text can be mistaken for it. The output is JSON.parse-equal to
 * `JSON.stringify(value)` (key order: `steps` stays where it was).
 */
import { randomBytes } from 'node:crypto';

/** A string no client text contains (random per process), and how `JSON.stringify` writes it. */
const MARK = `\u0001steps:${randomBytes(16).toString('hex')}`;
const MARK_JSON = JSON.stringify(MARK);

/** Each step object's JSON, by identity. */
const stepJson = new WeakMap<object, string>();

/** `JSON.stringify(step)` of a step record or view, made once per object (the object must never change after). */
export function stepJsonOf(step: object): string {
  let json = stepJson.get(step);
  if (json === undefined) {
    json = JSON.stringify(step);
    stepJson.set(step, json);
  }
  return json;
}

/** The JSON of an array of step records or views: the cached JSON of each. */
function stepsJson(steps: readonly object[]): string {
  let out = '[';
  for (let i = 0; i < steps.length; i++) out += i === 0 ? stepJsonOf(steps[i]!) : `,${stepJsonOf(steps[i]!)}`;
  return `${out}]`;
}

/** Has `value` a non-empty array `steps`? */
const hasSteps = (value: unknown): value is { steps: object[] } =>
  typeof value === 'object' && value !== null && Array.isArray((value as { steps?: unknown }).steps) && (value as { steps: unknown[] }).steps.length > 0;

/**
 * `JSON.stringify(value)`, with the steps of `value.job` (a job event, a change record, a job-list update) or of
 * `value` itself (a job record or view) serialized from their cached JSON (see the module comment). Any other
 * value is `JSON.stringify`'s.
 */
export function stringifyWithSteps(value: unknown): string {
  const job = (value as { job?: unknown } | null)?.job;
  if (hasSteps(job)) {
    if (!known(job.steps)) return JSON.stringify(value);
    const json = JSON.stringify({ ...(value as object), job: { ...job, steps: MARK } });
    return splice(json, stepsJson(job.steps));
  }
  if (hasSteps(value)) return known(value.steps) ? splice(JSON.stringify({ ...value, steps: MARK }), stepsJson(value.steps)) : JSON.stringify(value);
  return JSON.stringify(value);
}

/**
 * Are these steps worth caching: was their first one serialized before? Steps that come back report after report
 * (a job's records and timeless views) are; steps parsed from a change-log entry are new objects each time, and
 * caching each of them (a WeakMap entry per step, for the GC to trace) would cost more than it saves. The first
 * step is cached either way, so steps seen again take the cached path from then on.
 */
function known(steps: readonly object[]): boolean {
  if (stepJson.has(steps[0]!)) return true;
  stepJsonOf(steps[0]!);
  return false;
}

/** `json` with its one marker replaced by `steps`. */
function splice(json: string, steps: string): string {
  const at = json.indexOf(MARK_JSON);
  return json.slice(0, at) + steps + json.slice(at + MARK_JSON.length);
}
