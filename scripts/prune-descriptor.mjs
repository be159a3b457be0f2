// Prunes the Envoy descriptor before it is written (scripts/gen-protos.mjs): the control plane
// loads gen/envoy-protos.json into a protobufjs Root at start, and every type and option in it
// costs memory for the life of the process (issue 16, idle RSS). Kept: every message and enum
// defined in an entry file (the resources, typed_config payloads and protocol messages
// lucid-mesh encodes and decodes, and any Any payload it may name) and every type those reach
// through their fields, with the namespaces and parent messages that hold them. Dropped: types
// only the imported files define and nothing kept refers to, and the custom options
// (`(validate.rules)…`, `(udpa.annotations…)`, java/go package names) that protobufjs stores
// but never reads when encoding or decoding.
import protobuf from 'protobufjs';

/**
 * Options something reads: protobufjs (proto2/edition semantics) and scripts/gen-envoy-types.mjs
 * (`deprecated`, for @deprecated in the TypeScript types). Every other option is documentation.
 */
const READ_OPTIONS = new Set([
  'packed',
  'default',
  'proto3_optional',
  'features',
  'map_entry',
  'deprecated',
]);

/**
 * `root` (loaded and resolved) reduced to what `entryFiles` define and reach; returns the
 * descriptor JSON and counts for the log line.
 */
export function prunedDescriptor(root, entryFiles) {
  const entries = new Set(entryFiles);
  const kept = new Set();
  const queue = [];
  const keep = (t) => {
    if (!t || kept.has(t)) return;
    kept.add(t);
    queue.push(t);
  };
  let total = 0;
  const visit = (ns) => {
    for (const child of ns.nestedArray) {
      if (child instanceof protobuf.Type || child instanceof protobuf.Enum) {
        total++;
        if (child.filename && entries.has(relative(child.filename, entryFiles))) keep(child);
      }
      if (child instanceof protobuf.Namespace) visit(child);
    }
  };
  visit(root);
  while (queue.length) {
    const t = queue.pop();
    // A nested type needs its parent message (protobufjs resolves names through it).
    if (t.parent instanceof protobuf.Type) keep(t.parent);
    if (!(t instanceof protobuf.Type)) continue;
    for (const f of t.fieldsArray) keep(f.resolve().resolvedType);
    for (const m of t.fieldsArray) if (m.map) keep(m.resolvedType);
  }
  const json = strip(root.toJSON({ keepComments: false }), [], kept, root);
  return { json, total, kept: kept.size };
}

/** The entry-file path `filename` ends with (protobufjs records the resolved path). */
function relative(filename, entryFiles) {
  return entryFiles.find((e) => filename === e || filename.endsWith(`/${e}`)) ?? filename;
}

function strip(node, path, kept, root) {
  const out = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'options') {
      const options = Object.fromEntries(
        Object.entries(value).filter(([k]) => READ_OPTIONS.has(k.split('.')[0])),
      );
      if (Object.keys(options).length) out.options = options;
    } else if (key === 'fields') {
      out.fields = Object.fromEntries(
        Object.entries(value).map(([name, f]) => [name, strip(f, [], kept, root)]),
      );
    } else if (key === 'nested') {
      const nested = {};
      for (const [name, child] of Object.entries(value)) {
        const childPath = [...path, name];
        if (!holdsKept(root.lookup(childPath.join('.')), kept)) continue;
        nested[name] = strip(child, childPath, kept, root);
      }
      if (Object.keys(nested).length) out.nested = nested;
    } else out[key] = value;
  }
  return out;
}

/** Whether a reflection object is kept or holds something kept. */
function holdsKept(obj, kept) {
  if (!obj) return false;
  if (kept.has(obj)) return true;
  if (obj instanceof protobuf.Namespace && !(obj instanceof protobuf.Type)) {
    return obj.nestedArray.some((c) => holdsKept(c, kept));
  }
  return false;
}
