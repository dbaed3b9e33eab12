/**
 * Aggregates a V8 CPU profile (`.cpuprofile`: `node --cpu-prof`, or the
 * inspector's Profiler.stop as bench/report-path-instance.ts writes it) into
 * self time per category — HTTP (@whatwg-node, node:http), Yoga/envelop,
 * our plugins, parse / validate, auth, GraphQL execution, domain, Redis,
 * JSON, GC, … — plus the heaviest functions, so a path's CPU can be read as
 * a table. Categories match the frame's script URL (and function name for
 * GC and natives), first rule wins; see {@link CATEGORIES}.
 *
 * CLI: `npx tsx bench/profile-breakdown.ts <file.cpuprofile> [--per <n>] [--skip <seconds>]`
 * (with `--per`, also milliseconds per unit: e.g. reports in the window; with
 * `--skip`, samples of the profile's first seconds, such as start-up, are left out).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/** The parts of a `.cpuprofile` used here (Chrome DevTools Protocol `Profiler.Profile`). */
export interface CpuProfile {
  nodes: { id: number; callFrame: CallFrame; children?: number[] }[];
  /** Microseconds (monotonic clock). */
  startTime: number;
  endTime: number;
  /** Node id per sample, and microseconds since the previous sample. */
  samples: number[];
  timeDeltas: number[];
}

/** A stack frame of a profile node. */
export interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

/** Category rules, first match wins: a name and a test on the frame. */
export const CATEGORIES: [string, (f: CallFrame) => boolean][] = [
  ['idle', (f) => f.functionName === '(idle)'],
  ['GC', (f) => f.functionName === '(garbage collector)'],
  ['(program): native, not attributed', (f) => f.functionName === '(program)'],
  ['JSON (native parse/stringify)', (f) => f.url === '' && /^(parse|stringify|JSON\.\w+)$/.test(f.functionName)],
  ['socket writes (native: HTTP responses, Redis commands)', (f) => f.url === '' && /^(writeUtf8String|writev|writeBuffer|writeLatin1String|writeAsciiString)$/.test(f.functionName)],
  ['promise jobs (native runMicrotasks)', (f) => f.url === '' && f.functionName === 'runMicrotasks'],
  ['HTTP: @whatwg-node (fetch API, server adapter, promise helpers)', (f) => f.url.includes('/@whatwg-node/')],
  ['Yoga + envelop core (request pipeline, routing, request parser, result processor)', (f) => /\/(graphql-yoga|@graphql-yoga|@envelop|urlpattern-polyfill)\//.test(f.url)],
  ['caches (lru-cache: documents, tokens)', (f) => f.url.includes('/lru-cache/')],
  ['plugins: graphql-armor', (f) => f.url.includes('/@escape.tech/')],
  ['plugins: runwatch limits (src/limits)', (f) => f.url.includes('/src/limits/')],
  ['plugins: runwatch observe (src/observe: metrics, logs, tracing)', (f) => f.url.includes('/src/observe/')],
  ['metrics: prom-client', (f) => f.url.includes('/prom-client/') || f.url.includes('/bintrees/') || f.url.includes('/tdigest/')],
  ['logging: pino', (f) => /\/(pino|pino-std-serializers|sonic-boom|fast-redact|quick-format-unescaped|thread-stream|on-exit-leak-free)\//.test(f.url)],
  ['tracing: opentelemetry', (f) => f.url.includes('/@opentelemetry/')],
  ['graphql: parse (language)', (f) => f.url.includes('/graphql/language/')],
  ['graphql: validate', (f) => f.url.includes('/graphql/validation/')],
  ['graphql: execution (graphql-js, @graphql-tools/executor)', (f) => /\/graphql\/(execution|jsutils)\/|\/@graphql-tools\/executor\//.test(f.url)],
  ['graphql: other (types, input coercion, errors, @graphql-tools/utils)', (f) => /\/graphql\/(type|utilities|error)\//.test(f.url) || /\/node_modules\/graphql\/[^/]+$/.test(f.url) || f.url.includes('/@graphql-tools/utils/')],
  ['schema: pothos', (f) => f.url.includes('/@pothos/')],
  ['auth (src/auth, jose)', (f) => f.url.includes('/src/auth/') || f.url.includes('/jose/')],
  ['runwatch schema: resolvers, context, masking (src/schema, src/transport/yoga.ts)', (f) => f.url.includes('/src/schema/') || f.url.endsWith('/src/transport/yoga.ts') || f.url.endsWith('/src/server.ts')],
  ['domain + services (src/domain, src/services)', (f) => f.url.includes('/src/domain/') || f.url.includes('/src/services/')],
  ['redis: runwatch backend (src/backends)', (f) => f.url.includes('/src/backends/')],
  ['redis: ioredis + parser', (f) => /\/(ioredis|@ioredis|redis-parser|redis-errors|denque|cluster-key-slot|standard-as-callback)\//.test(f.url)],
  ['validation: zod', (f) => f.url.includes('/zod/')],
  ['bench counters (bench/)', (f) => f.url.includes('/bench/')],
  ['node: http', (f) => /^node:(_http|http)/.test(f.url)],
  ['node: net, streams, buffers', (f) => /^node:(net|stream|buffer|string_decoder|internal\/(streams|stream_base_commons|buffer|net|dgram))/.test(f.url)],
  ['node: promises, timers, async context', (f) => /^node:internal\/(process\/task_queues|timers|async_hooks|async_local_storage)|^node:(async_hooks|timers)/.test(f.url)],
  ['node: other', (f) => f.url.startsWith('node:')],
  ['tsx loader', (f) => f.url.includes('/tsx/')],
  ['native builtins (RegExp, Map, …)', (f) => f.url === ''],
  ['other', () => true],
];

/** Self time of one row, in milliseconds. */
export interface Row {
  name: string;
  ms: number;
}

/** The breakdown of a profile. */
export interface Breakdown {
  /** Sampled milliseconds, idle excluded. */
  busyMs: number;
  idleMs: number;
  categories: Row[];
  /** Heaviest functions by self time: `name (file:line)`. */
  functions: Row[];
}

const shortUrl = (url: string) => url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, '').replace(/^.*\/(src|bench)\//, '$1/');

/**
 * Self time per category and per function of a profile.
 * @param skipUs microseconds at the start of the profile left out (e.g. start-up); default none.
 */
export function breakdown(profile: CpuProfile, topFunctions = 25, skipUs = 0): Breakdown {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  let elapsedUs = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    elapsedUs += profile.timeDeltas[i] ?? 0;
    if (elapsedUs < skipUs) continue;
    // timeDeltas[i] is the time before sample i; attribute the interval after it (as DevTools does) to sample i.
    const dt = profile.timeDeltas[i + 1] ?? 0;
    selfUs.set(profile.samples[i]!, (selfUs.get(profile.samples[i]!) ?? 0) + Math.max(0, dt));
  }
  const categories = new Map<string, number>();
  const functions = new Map<string, number>();
  let idleUs = 0;
  let busyUs = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    const category = CATEGORIES.find(([, test]) => test(frame))![0];
    if (category === 'idle') {
      idleUs += us;
      continue;
    }
    busyUs += us;
    categories.set(category, (categories.get(category) ?? 0) + us);
    const fn = `${frame.functionName || '(anonymous)'}${frame.url ? ` (${shortUrl(frame.url)}:${frame.lineNumber + 1})` : ''}`;
    functions.set(fn, (functions.get(fn) ?? 0) + us);
  }
  const rows = (m: Map<string, number>) => [...m].map(([name, us]) => ({ name, ms: us / 1000 })).sort((a, b) => b.ms - a.ms);
  return { busyMs: busyUs / 1000, idleMs: idleUs / 1000, categories: rows(categories), functions: rows(functions).slice(0, topFunctions) };
}

/**
 * Markdown tables of a breakdown. With `per` (e.g. reports in the window), a
 * column of milliseconds per unit; with `cpuMsPerUnit` as well (the process's
 * measured CPU per unit), that column is each row's share of the sampled time
 * times the measured CPU, which stays right when the process was preempted
 * (a sampling profiler counts wall time, so a busy machine inflates it).
 */
export function formatBreakdown(b: Breakdown, per?: number, cpuMsPerUnit?: number): string {
  const perUnit = (ms: number) => (cpuMsPerUnit !== undefined ? (ms / b.busyMs) * cpuMsPerUnit : ms / per!);
  const unit = cpuMsPerUnit !== undefined ? 'CPU ms/report (share × measured)' : 'ms/report';
  const head = (first: string) => (per ? `| ${first} | sampled ms | % | ${unit} |\n| --- | --- | --- | --- |` : `| ${first} | sampled ms | % |\n| --- | --- | --- |`);
  const line = (r: Row) => `| ${r.name} | ${r.ms.toFixed(0)} | ${((r.ms / b.busyMs) * 100).toFixed(1)} |${per ? ` ${perUnit(r.ms).toFixed(3)} |` : ''}`;
  const total = `| **total (busy)** | ${b.busyMs.toFixed(0)} | 100 |${per ? ` ${perUnit(b.busyMs).toFixed(3)} |` : ''}`;
  return [head('category (self time)'), ...b.categories.map(line), total, '', head('function (self time)'), ...b.functions.map(line)].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { per: { type: 'string' }, skip: { type: 'string' } } });
  const profile = JSON.parse(readFileSync(positionals[0]!, 'utf8')) as CpuProfile;
  console.log(formatBreakdown(breakdown(profile, 25, Number(values.skip ?? 0) * 1e6), values.per ? Number(values.per) : undefined));
}
