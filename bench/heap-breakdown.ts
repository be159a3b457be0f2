// What each per-proxy structure of the control plane costs (issue 16, W9): two V8 heap
// snapshots of the control-plane child (node:v8 writeHeapSnapshot), one with K proxies
// connected and one with none, summed per owner and divided by K.
//
// Ownership: a node with exactly one (strong) retainer is dominated by it, so following
// single-retainer chains up gives, for every node, an owner that dominates it (its "top").
// Each node's self size is charged to its top, labelled with the top's constructor and the
// first edge on the way down ("SotwStream.subs", "Map.table" …): every byte counted once,
// without building the dominator tree. A per-proxy object held from two places (a stream in
// the server's map and in its own callbacks) is a top of its own; what only it holds is its.
//
// Alone: npx tsx bench/heap-breakdown.ts IDLE.heapsnapshot LOADED.heapsnapshot K
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { HeapBreakdown, HeapBreakdownEntry } from './types.js';

interface Meta {
  node_fields: string[];
  node_types: [string[], ...unknown[]];
  edge_fields: string[];
  edge_types: [string[], ...unknown[]];
}

interface ParsedSnapshot {
  readonly meta: Meta;
  readonly nodes: Uint32Array;
  readonly edges: Uint32Array;
  readonly strings: string[];
}

/** Reads a whole file into one Buffer (heap snapshots can be larger than a JS string may be). */
function readAll(path: string): Buffer {
  const size = statSync(path).size;
  const buf = Buffer.allocUnsafe(size);
  const fd = openSync(path, 'r');
  try {
    let off = 0;
    while (off < size) off += readSync(fd, buf, off, Math.min(1 << 30, size - off), off);
  } finally {
    closeSync(fd);
  }
  return buf;
}

/** The unsigned integers of a JSON array starting at `start` (just after '['). */
function intArray(buf: Buffer, start: number, count: number): { values: Uint32Array; end: number } {
  const values = new Uint32Array(count);
  let n = 0;
  let cur = 0;
  let inNum = false;
  let i = start;
  for (; ; i++) {
    const c = buf[i]!;
    if (c >= 48 && c <= 57) {
      cur = cur * 10 + (c - 48);
      inNum = true;
    } else {
      if (inNum) {
        values[n++] = cur;
        cur = 0;
        inNum = false;
      }
      if (c === 93) break; // ']'
    }
  }
  if (n !== count) throw new Error(`heap snapshot: expected ${count} numbers, read ${n}`);
  return { values, end: i };
}

/** The strings of the JSON array starting at `start`, each parsed on its own. */
function stringArray(buf: Buffer, start: number): string[] {
  const out: string[] = [];
  let i = start;
  for (;;) {
    while (buf[i] !== 34 && buf[i] !== 93) i++; // '"' or ']'
    if (buf[i] === 93) return out;
    const from = i++;
    while (buf[i] !== 34) i += buf[i] === 92 ? 2 : 1; // skip escapes
    i++;
    out.push(JSON.parse(buf.toString('utf8', from, i)) as string);
  }
}

export function parseHeapSnapshot(path: string): ParsedSnapshot {
  const buf = readAll(path);
  const at = (key: string, from = 0): number => {
    const i = buf.indexOf(key, from, 'latin1');
    if (i < 0) throw new Error(`heap snapshot ${path}: no ${key}`);
    return i + key.length;
  };
  const nodesAt = at('"nodes":[');
  const head = buf.toString('utf8', 0, nodesAt - '"nodes":['.length).replace(/,\s*$/, '');
  const { snapshot } = JSON.parse(`${head}}`) as {
    snapshot: { meta: Meta; node_count: number; edge_count: number };
  };
  const meta = snapshot.meta;
  const nodes = intArray(buf, nodesAt, snapshot.node_count * meta.node_fields.length);
  const edgesAt = at('"edges":[', nodes.end);
  const edges = intArray(buf, edgesAt, snapshot.edge_count * meta.edge_fields.length);
  const strings = stringArray(buf, at('"strings":[', edges.end));
  return { meta, nodes: nodes.values, edges: edges.values, strings };
}

/** Bytes per owner label ("Ctor.edge" or "Ctor (self)"), with object counts of the tops. */
export function ownedSizes(snap: ParsedSnapshot): Map<string, { bytes: number; count: number }> {
  const { meta, nodes, edges, strings } = snap;
  const nf = meta.node_fields.length;
  const ef = meta.edge_fields.length;
  const fType = meta.node_fields.indexOf('type');
  const fName = meta.node_fields.indexOf('name');
  const fSelf = meta.node_fields.indexOf('self_size');
  const fEdges = meta.node_fields.indexOf('edge_count');
  const eType = meta.edge_fields.indexOf('type');
  const eName = meta.edge_fields.indexOf('name_or_index');
  const eTo = meta.edge_fields.indexOf('to_node');
  const nodeTypes = meta.node_types[0];
  const edgeTypes = meta.edge_types[0];
  const weak = edgeTypes.indexOf('weak');
  const shortcut = edgeTypes.indexOf('shortcut');
  const element = edgeTypes.indexOf('element');
  const hidden = edgeTypes.indexOf('hidden');
  const contextVar = edgeTypes.indexOf('context');
  const count = nodes.length / nf;

  // A WeakMap's value is held by its table and by its key, both through edges named "… part
  // of key (…) -> value (…) pair in WeakMap (table @ID)": it is labelled by the table's holder,
  // not by whoever holds the key (a block memoized per snapshot and subscription is the
  // snapshot's, not the first stream's that subscribed).
  const fId = meta.node_fields.indexOf('id');
  const tableIdOf = new Float64Array(strings.length);
  strings.forEach((s, i) => {
    const m = / pair in WeakMap \(table @(\d+)\)$/.exec(s);
    if (m) tableIdOf[i] = Number(m[1]);
  });
  const internal = edgeTypes.indexOf('internal');
  /** An edge from a WeakMap key to its value (not from the table). */
  const keyEdge = (from: number, edge: number) => {
    if (edges[edge + eType] !== internal) return false;
    const table = tableIdOf[edges[edge + eName]!]!;
    return table !== 0 && table !== nodes[from * nf + fId];
  };
  // Single strong retainer of each node (-1: none yet, -2: several); the first one seen.
  const parent = new Int32Array(count).fill(-1);
  const parentEdge = new Int32Array(count);
  const firstParent = new Int32Array(count).fill(-1);
  let e = 0;
  for (let n = 0; n < count; n++) {
    const end = e + nodes[n * nf + fEdges]! * ef;
    for (; e < end; e += ef) {
      const t = edges[e + eType]!;
      if (t === weak || t === shortcut) continue;
      const to = edges[e + eTo]! / nf;
      if (to === n) continue;
      if (parent[to] === -1) {
        parent[to] = n;
        parentEdge[to] = e;
        firstParent[to] = n;
      } else {
        if (parent[to] !== n) parent[to] = -2;
        if (keyEdge(firstParent[to]!, parentEdge[to]!) && !keyEdge(n, e)) {
          firstParent[to] = n;
          parentEdge[to] = e;
        }
      }
    }
  }
  // Top of each node's single-retainer chain, and the node just below the top on it.
  const top = new Int32Array(count).fill(-1);
  const below = new Int32Array(count).fill(-1);
  const chain: number[] = [];
  const onChain = new Uint8Array(count);
  for (let n = 0; n < count; n++) {
    if (top[n] !== -1) continue;
    let x = n;
    // A cycle of single retainers (only garbage can be one) ends the walk where it closes.
    while (top[x] === -1 && parent[x]! >= 0 && !onChain[parent[x]!]) {
      onChain[x] = 1;
      chain.push(x);
      x = parent[x]!;
    }
    for (const c of chain) onChain[c] = 0;
    if (top[x] === -1) {
      top[x] = x;
      below[x] = -1;
    }
    for (let i = chain.length - 1; i >= 0; i--) {
      const c = chain[i]!;
      const p = parent[c]!;
      top[c] = top[p]!;
      below[c] = top[p] === p ? c : below[p]!;
    }
    chain.length = 0;
  }
  const plainLabel = (n: number): string => {
    const type = nodeTypes[nodes[n * nf + fType]!]!;
    const name = strings[nodes[n * nf + fName]!]!;
    // Native (embedder) nodes are named "Node / Http2Session" and the like.
    if (type === 'native') return name.startsWith('Node / ') ? name : name.split(' ')[0]!;
    if (type === 'object') return name.split(' ')[0] || '(object)';
    if (type === 'closure') return `(closure ${name || 'anonymous'})`;
    return `(${type})`;
  };
  // A shared generic object (a Buffer's ArrayBuffer, a Map held from two places) says where
  // it hangs: the first named owner up its chain of first retainers, e.g.
  // "ArrayBuffer<LazyResource.encoded>" or "Map<SotwStream.subs>".
  const GENERIC =
    /^(Map|Set|Array|Object|Buffer|ArrayBuffer|Uint8Array|WeakMap|system|\(.*\)|system \/ .*)$/;
  const label = (n: number): string => {
    const own = plainLabel(n);
    if (!GENERIC.test(own)) return own;
    let child = n;
    for (let depth = 0; depth < 8; depth++) {
      const p = firstParent[child]!;
      if (p < 0) break;
      // A variable of a closure or of a module (whose context a module's body, a
      // "Generator", holds): named by the variable, e.g. "Buffer<var ownBlocks>".
      const edge = parentEdge[child]!;
      if (edges[edge + eType] === contextVar) return `${own}<var ${edgeLabel(edge)}>`;
      const name = plainLabel(p);
      if (!GENERIC.test(name)) return `${own}<${name}.${edgeLabel(edge)}>`;
      child = p;
    }
    const p = firstParent[n]!;
    return p < 0 ? own : `${own}<${plainLabel(p)}.${edgeLabel(parentEdge[n]!)}>`;
  };
  const edgeLabel = (edge: number): string => {
    const t = edges[edge + eType]!;
    if (t === element || t === hidden) return '[]';
    const nameIdx = edges[edge + eName]!;
    return strings[nameIdx] ?? String(nameIdx);
  };
  const out = new Map<string, { bytes: number; count: number }>();
  for (let n = 0; n < count; n++) {
    const t = top[n]!;
    const b = below[n]!;
    const key = b < 0 ? `${label(t)} (self)` : `${label(t)}.${edgeLabel(parentEdge[b]!)}`;
    const entry = out.get(key) ?? { bytes: 0, count: 0 };
    entry.bytes += nodes[n * nf + fSelf]!;
    if (t === n) entry.count++;
    out.set(key, entry);
  }
  return out;
}

/**
 * lucid-mesh's per-stream state (src/xds, src/telemetry): what each connected proxy costs,
 * with the store's watch of each (SnapshotStore.watches).
 */
const STREAMS =
  /\b(SotwStream|DeltaStream|AdsStream|XdsServer|HeldVersions|TokenBucket|RecentActivity|RecentPushes|ConvergenceTracker|ChangeTracer|XdsCounters|Metrics|EventHub|SnapshotStore\.watches|Watch)\b/;
/**
 * lucid-mesh's per-proxy configuration: its own resources (inbound listener, app cluster) and
 * view, the encoder's entries for them (its per-proxy tables: the shared entries are the same
 * with and without proxies), and the module caches keyed by them (proxy-view.ts: a proxy's own
 * block's digest). The store's own-resource cache hangs off SnapshotStore.own (OwnResources,
 * own-resources.ts; SnapshotStore.ownCache before the split of store.ts), and the encoder, held
 * by the store's parts too, is a top of its own: what grows in it (ResourceEncoder.entries:
 * the scopes' route configurations as proxies arrive) is filed here, as SnapshotStore.encoder
 * was.
 */
const PROXY_CONFIG =
  /\b(ProxyView|LazyResource|SmallMap|SnapshotStore\.(own|ownCache|views|watchedKeys|encoder)|OwnResources\.cache|ResourceEncoder\.proxyEntries|Segment)\b|^ResourceEncoder\.(entries|byMessage)\b|<var (ownBlocks|ownBlockDigests|ownDigests|live|gone)>/;
/**
 * Shared by proxies: the snapshot, the per-scope resources, the model (per proxy only by
 * division), and the module caches of those: responses and blocks made once per snapshot,
 * scope and subscription (shared-responses.ts, snapshot.ts), interned name sets.
 */
const SHARED =
  /\b(Snapshot|SnapshotStore|ResourceEncoder|MeshCache|PartCache|TranslationCache|WeakTable)\b|<var (responses|deltaResponses|parts|kindDigests|byNames|interned|table|candidatesOf)>/;
const HTTP2 =
  /\b(Http2|ServerHttp2Stream|ServerHttp2Session|Http2Session|Http2Stream|nghttp2_memory|BaseServerInterceptingCall|ServerInterceptingCall|ServerDuplexStreamImpl|Http2ServerCallStream|Metadata|StreamDecoder|ServerCredentials|GrpcFrameParser|HeaderMetadata|Keepalive)/;
const SOCKETS =
  /\b(Socket|TCP|TCPWrap|WriteWrap|ShutdownWrap|StreamBase|Readable|Writable|Timeout)\b/;

/** Which part of a proxy's cost a label belongs to (by its owner and where it hangs). */
export function categoryOf(label: string): string {
  // Compiled code and its feedback belong to functions, not to proxies: V8 optimizes and
  // deoptimizes between the two snapshots, which at small K swung a part by ±2 KB a proxy.
  if (label.startsWith('(code)')) return 'V8 compiled code';
  if (STREAMS.test(label)) return 'lucid-mesh streams';
  if (PROXY_CONFIG.test(label)) return 'lucid-mesh proxy config';
  if (SHARED.test(label)) return 'lucid-mesh snapshot, scopes and model';
  if (HTTP2.test(label)) return 'grpc-js and HTTP/2';
  if (SOCKETS.test(label)) return 'Node sockets and timers';
  return 'other';
}

/**
 * Per-proxy cost from two snapshots of the same process: (loaded − idle) per label, / K.
 * Labels whose difference is under `minBytesPerProxy` go to "rest".
 */
export function heapBreakdownOf(
  idlePath: string,
  loadedPath: string,
  proxies: number,
  minBytesPerProxy = 16,
): HeapBreakdown {
  const idle = ownedSizes(parseHeapSnapshot(idlePath));
  const loaded = ownedSizes(parseHeapSnapshot(loadedPath));
  const entries: HeapBreakdownEntry[] = [];
  let total = 0;
  let rest = 0;
  for (const key of new Set([...idle.keys(), ...loaded.keys()])) {
    const a = idle.get(key) ?? { bytes: 0, count: 0 };
    const b = loaded.get(key) ?? { bytes: 0, count: 0 };
    const perProxy = (b.bytes - a.bytes) / proxies;
    total += perProxy;
    if (Math.abs(perProxy) < minBytesPerProxy) {
      rest += perProxy;
      continue;
    }
    entries.push({
      label: key,
      category: categoryOf(key),
      bytesPerProxy: Math.round(perProxy),
      objectsPerProxy: Math.round(((b.count - a.count) / proxies) * 100) / 100,
    });
  }
  entries.sort((x, y) => y.bytesPerProxy - x.bytesPerProxy);
  const byCategory: Record<string, number> = {};
  for (const e of entries) byCategory[e.category] = (byCategory[e.category] ?? 0) + e.bytesPerProxy;
  return {
    proxies,
    totalBytesPerProxy: Math.round(total),
    restBytesPerProxy: Math.round(rest),
    byCategory,
    entries,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [idle, loaded, k] = process.argv.slice(2);
  if (!idle || !loaded || !k) {
    process.stderr.write('usage: heap-breakdown.ts IDLE.heapsnapshot LOADED.heapsnapshot K\n');
    process.exit(2);
  }
  const b = heapBreakdownOf(idle, loaded, Number(k));
  process.stdout.write(
    `${b.totalBytesPerProxy} B per proxy (rest ${b.restBytesPerProxy})\n` +
      `${JSON.stringify(b.byCategory)}\n` +
      b.entries
        .slice(0, 60)
        .map(
          (e) =>
            `${String(e.bytesPerProxy).padStart(7)} B  ${e.objectsPerProxy}×  ${e.label}  [${e.category}]`,
        )
        .join('\n') +
      '\n',
  );
}
