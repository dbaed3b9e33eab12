/**
 * Scrapes `/metrics` and reads the Prometheus text format: enough of it for
 * tests (samples with labels; comments skipped).
 */

/** One sample line: `name{label="value",...} value`. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the text exposition format into samples. */
export function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!match) throw new Error(`unparseable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const m of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[m[1]!] = m[2]!.replace(/\\(.)/g, '$1');
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** A scrape: the raw text and its samples, with a lookup that sums samples matching the labels given. */
export interface Scrape {
  text: string;
  samples: Sample[];
  /** Sum of `name` samples whose labels include `labels` (0 when none). */
  value(name: string, labels?: Record<string, string>): number;
}

/** GETs `<origin>/metrics` (optionally with a bearer token); throws unless HTTP 200. */
export async function scrape(graphqlUrl: string, bearer?: string): Promise<Scrape> {
  const res = await fetch(new URL('/metrics', graphqlUrl), { headers: bearer ? { authorization: `Bearer ${bearer}` } : {} });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}: ${text.slice(0, 200)}`);
  const samples = parsePrometheus(text);
  return {
    text,
    samples,
    value: (name, labels = {}) =>
      samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((sum, s) => sum + s.value, 0),
  };
}
