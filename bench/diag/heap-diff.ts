// What grew between two heap snapshots of the same process (a soak's early and late ones):
// object counts and self bytes per constructor, and bytes per owner as heap-breakdown.ts
// attributes them (single-retainer chains up to their top).
//
// npx tsx bench/diag/heap-diff.ts EARLY.heapsnapshot LATE.heapsnapshot [ROWS]
import { parseHeapSnapshot, ownedSizes } from '../heap-breakdown.js';

type Snap = ReturnType<typeof parseHeapSnapshot>;

/** Count and self size per "type:name" (objects by constructor, strings/code/closures by type). */
export function byConstructor(snap: Snap): Map<string, { bytes: number; count: number }> {
  const { meta, nodes, strings } = snap;
  const nf = meta.node_fields.length;
  const fType = meta.node_fields.indexOf('type');
  const fName = meta.node_fields.indexOf('name');
  const fSelf = meta.node_fields.indexOf('self_size');
  const types = meta.node_types[0];
  const out = new Map<string, { bytes: number; count: number }>();
  for (let i = 0; i < nodes.length; i += nf) {
    const type = types[nodes[i + fType]!]!;
    const name = strings[nodes[i + fName]!]!;
    const key =
      type === 'object' || type === 'native' || type === 'hidden'
        ? `${type}:${name.slice(0, 60)}`
        : type === 'closure'
          ? `closure:${name || '(anonymous)'}`
          : `(${type})`;
    const e = out.get(key) ?? { bytes: 0, count: 0 };
    e.bytes += nodes[i + fSelf]!;
    e.count++;
    out.set(key, e);
  }
  return out;
}

function diff(
  a: Map<string, { bytes: number; count: number }>,
  b: Map<string, { bytes: number; count: number }>,
) {
  const rows: { key: string; bytes: number; count: number }[] = [];
  for (const key of new Set([...a.keys(), ...b.keys()])) {
    const x = a.get(key) ?? { bytes: 0, count: 0 };
    const y = b.get(key) ?? { bytes: 0, count: 0 };
    rows.push({ key, bytes: y.bytes - x.bytes, count: y.count - x.count });
  }
  return rows.sort((p, q) => q.bytes - p.bytes);
}

const [early, late, rowsArg] = process.argv.slice(2);
if (!early || !late) {
  process.stderr.write('usage: heap-diff.ts EARLY.heapsnapshot LATE.heapsnapshot [ROWS]\n');
  process.exit(2);
}
const rows = Number(rowsArg ?? 40);
const a = parseHeapSnapshot(early);
const b = parseHeapSnapshot(late);
const line = (r: { key: string; bytes: number; count: number }) =>
  `${String(r.bytes).padStart(10)} B ${String(r.count).padStart(8)}×  ${r.key}`;
const total = diff(byConstructor(a), byConstructor(b));
process.stdout.write(
  `total ${total.reduce((n, r) => n + r.bytes, 0)} B\n\n== by constructor (grew) ==\n` +
    total.slice(0, rows).map(line).join('\n') +
    '\n\n== by constructor (shrank) ==\n' +
    total.slice(-10).map(line).join('\n') +
    '\n\n== by owner (heap-breakdown attribution) ==\n',
);
const owners = diff(ownedSizes(a), ownedSizes(b));
process.stdout.write(owners.slice(0, rows).map(line).join('\n') + '\n');
