/**
 * Where memory went between two V8 heap snapshots of one process (e.g. the
 * ones bench/lib/mem-probe.ts writes with BENCH_HEAP_SNAPSHOTS=<dir> during
 * `npm run bench:connections`): the objects in the later snapshot whose ids
 * the earlier one does not have, grouped by node type and constructor (or
 * closure/string name), largest self size first.
 *
 * Usage: tsx bench/heap-diff.ts <before.heapsnapshot> <after.heapsnapshot> [per=1000] [top=30] [--owners]
 * Divides counts and sizes by `per` (e.g. the connections opened in between)
 * and prints "per `per`" figures: objects and bytes. Self sizes only (what the
 * objects themselves take, not what they retain). With `--owners`, internal
 * nodes (property and element arrays, contexts, anonymous closures, plain
 * Objects, strings) are labelled with the nearest retainer that has a name of
 * its own (`array (object properties) ← object Subscription`), up to 4 levels up.
 */
import { readFileSync } from 'node:fs';

interface Snapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[], ...unknown[]]; edge_fields: string[]; edge_types: [string[], ...unknown[]] } };
  nodes: number[];
  edges: number[];
  strings: string[];
}

/** Keys that say nothing about whose memory it is. */
const anonymous = (key: string) =>
  /^(array|hidden|string|concatenated string|sliced string|number|code|object system \/ Context|object Object|object Array|closure $|closure native_bind)/.test(key);

let lastSnapshot: Snapshot | null = null;
let lastKeys: string[] = [];

/** Where each field sits in a snapshot's flat `nodes` and `edges` arrays (V8's heap snapshot format), and the node count. */
function layout(snap: Snapshot) {
  const fields = snap.snapshot.meta.node_fields;
  const edgeFields = snap.snapshot.meta.edge_fields;
  const at = (f: string) => fields.indexOf(f);
  return {
    width: fields.length,
    count: snap.nodes.length / fields.length,
    typeAt: at('type'),
    nameAt: at('name'),
    idAt: at('id'),
    sizeAt: at('self_size'),
    edgeCountAt: at('edge_count'),
    ew: edgeFields.length,
    eTypeAt: edgeFields.indexOf('type'),
    eNameAt: edgeFields.indexOf('name_or_index'),
    eToAt: edgeFields.indexOf('to_node'),
  };
}

/** Nodes of a snapshot: id → [group key, self size]; with `owners`, anonymous keys get their nearest named retainer. */
function load(path: string, owners: boolean): Map<number, [string, number]> {
  const snap = JSON.parse(readFileSync(path, 'utf8')) as Snapshot;
  lastSnapshot = snap;
  const types = snap.snapshot.meta.node_types[0];
  const { width, count, typeAt, nameAt, idAt, sizeAt, edgeCountAt, ew, eTypeAt, eToAt } = layout(snap);
  const keys: string[] = new Array(count);
  for (let n = 0; n < count; n++) {
    const i = n * width;
    const type = types[snap.nodes[i + typeAt]!]!;
    let name = snap.strings[snap.nodes[i + nameAt]!]!;
    if (type === 'string' || type === 'concatenated string' || type === 'sliced string' || type === 'number') name = '';
    keys[n] = `${type} ${name.slice(0, 60)}`;
  }
  // First strong retainer of each node (edges of node n follow those of node n - 1; weak edges skipped).
  const retainer = new Int32Array(count).fill(-1);
  if (owners) {
    const weak = snap.snapshot.meta.edge_types[0].indexOf('weak');
    for (let n = 0, e = 0; n < count; n++) {
      const edges = snap.nodes[n * width + edgeCountAt]!;
      for (let k = 0; k < edges; k++, e += ew) {
        if (snap.edges[e + eTypeAt] === weak) continue;
        const to = snap.edges[e + eToAt]! / width;
        if (retainer[to] === -1) retainer[to] = n;
      }
    }
  }
  lastKeys = keys.slice();
  const out = new Map<number, [string, number]>();
  for (let n = 0; n < count; n++) {
    let key = keys[n]!;
    if (owners && anonymous(key)) {
      let owner = retainer[n]!;
      for (let depth = 0; depth < 4 && owner >= 0 && anonymous(keys[owner]!); depth++) owner = retainer[owner]!;
      if (owner >= 0) key = `${key} ← ${keys[owner]}`;
    }
    out.set(snap.nodes[n * width + idAt]!, [key, snap.nodes[n * width + sizeAt]!]);
  }
  return out;
}

const owners = process.argv.includes('--owners');
const reachArg = process.argv.find((a) => a.startsWith('--reach='));
const [beforePath, afterPath, perArg, topArg] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
if (!beforePath || !afterPath) {
  console.error('usage: tsx bench/heap-diff.ts <before.heapsnapshot> <after.heapsnapshot> [per=1000] [top=30]');
  process.exit(2);
}
const per = Number(perArg ?? 1000);
const top = Number(topArg ?? 30);
const before = load(beforePath, false);
const after = load(afterPath, owners);
const groups = new Map<string, { count: number; bytes: number }>();
let total = 0;
for (const [id, [key, size]] of after) {
  if (before.has(id)) continue;
  const g = groups.get(key) ?? { count: 0, bytes: 0 };
  g.count++;
  g.bytes += size;
  groups.set(key, g);
  total += size;
}
console.log(`new objects: ${(total / 1024).toFixed(0)} KiB in all, ${(total / per).toFixed(0)} bytes per ${per === 1 ? 'one' : 'unit'} (÷ ${per})\n`);
console.log('| type and constructor/name | objects ÷ per | bytes ÷ per | share |');
console.log('| --- | --- | --- | --- |');
for (const [key, g] of [...groups].sort((a, b) => b[1].bytes - a[1].bytes).slice(0, top)) {
  console.log(`| ${key.replace(/\|/g, '\\|')} | ${(g.count / per).toFixed(2)} | ${(g.bytes / per).toFixed(0)} | ${((g.bytes / total) * 100).toFixed(1)} % |`);
}

/**
 * `--reach=ClassA,ClassB`: for each listed constructor, the new objects
 * reachable from its new instances over strong edges without passing through
 * an object the earlier snapshot had or an instance of another listed class —
 * roughly what each layer holds on its own (shared objects count for the first
 * class that reaches them, in the order given).
 */
if (reachArg) {
  const classes = reachArg.slice('--reach='.length).split(',');
  const snap = lastSnapshot!;
  const { width, count, idAt, sizeAt, edgeCountAt, ew, eTypeAt, eToAt } = layout(snap);
  const weak = snap.snapshot.meta.edge_types[0].indexOf('weak');
  const firstEdge = new Uint32Array(count + 1);
  for (let n = 0; n < count; n++) firstEdge[n + 1] = firstEdge[n]! + snap.nodes[n * width + edgeCountAt]! * ew;
  const classOf = (n: number) => {
    const key = lastKeys[n]!;
    return key.startsWith('object ') ? classes.indexOf(key.slice(7)) : -1;
  };
  const isNew = (n: number) => !before.has(snap.nodes[n * width + idAt]!);
  const claimed = new Uint8Array(count);
  console.log(`\n| layer (constructor) | instances ÷ per | new bytes reachable ÷ per |\n| --- | --- | --- |`);
  for (let c = 0; c < classes.length; c++) {
    const stack: number[] = [];
    let instances = 0;
    for (let n = 0; n < count; n++) if (classOf(n) === c && isNew(n) && !claimed[n]) (instances++, stack.push(n), (claimed[n] = 1));
    let bytes = 0;
    while (stack.length) {
      const n = stack.pop()!;
      bytes += snap.nodes[n * width + sizeAt]!;
      for (let e = firstEdge[n]!; e < firstEdge[n + 1]!; e += ew) {
        if (snap.edges[e + eTypeAt] === weak) continue;
        const to = snap.edges[e + eToAt]! / width;
        if (claimed[to] || !isNew(to)) continue;
        const k = classOf(to);
        if (k !== -1 && k !== c) continue;
        claimed[to] = 1;
        stack.push(to);
      }
    }
    console.log(`| ${classes[c]} | ${(instances / per).toFixed(2)} | ${(bytes / per).toFixed(0)} |`);
  }
}

/** `--shapes`: new plain Objects grouped by their first property names (what kind of object they are). */
if (process.argv.includes('--shapes')) {
  const snap = lastSnapshot!;
  const { width, idAt, sizeAt, edgeCountAt, ew, eTypeAt, eNameAt } = layout(snap);
  const property = snap.snapshot.meta.edge_types[0].indexOf('property');
  const shapes = new Map<string, { count: number; bytes: number }>();
  for (let n = 0, e = 0; n * width < snap.nodes.length; n++) {
    const edges = snap.nodes[n * width + edgeCountAt]!;
    const names: string[] = [];
    for (let k = 0; k < edges; k++, e += ew) if (snap.edges[e + eTypeAt] === property && names.length < 8) names.push(snap.strings[snap.edges[e + eNameAt]!]!);
    if (lastKeys[n] !== 'object Object' || before.has(snap.nodes[n * width + idAt]!)) continue;
    const key = names.filter((x) => x !== '__proto__' && x !== 'map').join(',');
    const g = shapes.get(key) ?? { count: 0, bytes: 0 };
    g.count++;
    g.bytes += snap.nodes[n * width + sizeAt]!;
    shapes.set(key, g);
  }
  console.log(`\n| plain Object with properties | objects ÷ per | bytes ÷ per |\n| --- | --- | --- |`);
  for (const [key, g] of [...shapes].sort((a, b) => b[1].count - a[1].count).slice(0, top)) console.log(`| ${key.slice(0, 120)} | ${(g.count / per).toFixed(2)} | ${(g.bytes / per).toFixed(0)} |`);
}
