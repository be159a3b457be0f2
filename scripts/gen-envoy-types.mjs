#!/usr/bin/env node
// Builds gen/envoy-types.d.ts: TypeScript types, in Envoy's JSON shape, for the Envoy messages
// lucid-mesh emits and every message and enum they reach. Source: gen/envoy-protos.json (written
// by scripts/gen-protos.mjs just before this runs). Runs at `npm ci` (prepare) and `npm run
// build`; the output is gitignored. src/protos/envoy-types.ts re-exports it with short names.
//
// A declaration file rather than a .ts one: tsconfig.build.json compiles src/ only (rootDir
// src), and a .d.ts may live outside rootDir; the types are erased, so nothing of gen/ is
// imported at run time.
//
// The JSON shape, as protobufjs `fromObject` (src/protos/envoy.ts) accepts it:
//   field names camelCase, every field optional, repeated → readonly arrays, map → string-keyed
//   objects, enums → unions of the value names, oneof members → plain optional fields,
//   int64 kinds → number | string, bytes → base64 string | Uint8Array,
//   google.protobuf.Any → { '@type': string; ... }, Duration → { seconds, nanos } (see
//   src/translate/clusters.ts duration()), Struct → a plain object (src/protos/wrappers.ts),
//   wrappers (BoolValue, UInt32Value, ...) → { value: ... }.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

const here = dirname(fileURLToPath(import.meta.url));
const genDir = join(here, '..', 'gen');
const descriptorPath = join(genDir, 'envoy-protos.json');
const out = join(genDir, 'envoy-types.d.ts');

// The resources lucid-mesh serves and the typed_config payloads it writes into them.
const ROOTS = [
  'envoy.config.cluster.v3.Cluster',
  'envoy.config.endpoint.v3.ClusterLoadAssignment',
  'envoy.config.listener.v3.Listener',
  'envoy.config.route.v3.RouteConfiguration',
  'envoy.extensions.transport_sockets.tls.v3.Secret',
  'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
  'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
  'envoy.extensions.filters.http.router.v3.Router',
  'envoy.extensions.filters.http.rbac.v3.RBAC',
  'envoy.extensions.filters.network.rbac.v3.RBAC',
  'envoy.extensions.filters.http.fault.v3.HTTPFault',
  'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
  'envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
  'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
  'envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate',
  'envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector',
  'envoy.extensions.retry.priority.previous_priorities.v3.PreviousPrioritiesConfig',
  'envoy.extensions.clusters.aggregate.v3.ClusterConfig',
  'envoy.extensions.filters.udp.dns_filter.v3.DnsFilterConfig',
  'envoy.config.trace.v3.OpenTelemetryConfig',
  'envoy.extensions.access_loggers.file.v3.FileAccessLog',
  'envoy.extensions.access_loggers.stream.v3.StdoutAccessLog',
  'envoy.extensions.access_loggers.stream.v3.StderrAccessLog',
  'envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig',
];

// Well-known types whose JSON shape is not their message shape.
const SPECIAL = {
  'google.protobuf.Any': "{ '@type': string; [key: string]: unknown }",
  'google.protobuf.Duration': '{ seconds?: number; nanos?: number }',
  'google.protobuf.Struct': '{ [key: string]: unknown }',
};
// Wrappers: `value` is the point of them (presence), so it is required.
const WRAPPERS = new Set(
  [
    'DoubleValue',
    'FloatValue',
    'Int64Value',
    'UInt64Value',
    'Int32Value',
    'UInt32Value',
    'BoolValue',
    'StringValue',
    'BytesValue',
  ].map((n) => `google.protobuf.${n}`),
);

const SCALARS = {
  double: 'number',
  float: 'number',
  int32: 'number',
  uint32: 'number',
  sint32: 'number',
  fixed32: 'number',
  sfixed32: 'number',
  int64: 'number | string',
  uint64: 'number | string',
  sint64: 'number | string',
  fixed64: 'number | string',
  sfixed64: 'number | string',
  bool: 'boolean',
  string: 'string',
  bytes: 'string | Uint8Array',
};

const root = protobuf.Root.fromJSON(JSON.parse(readFileSync(descriptorPath, 'utf8')));
root.resolveAll();

const fullName = (reflection) => reflection.fullName.replace(/^\./, '');

/** Every reached message and enum, by full name. */
const reached = new Map();
const missing = [];

function visit(reflection) {
  const name = fullName(reflection);
  if (reached.has(name)) return;
  reached.set(name, reflection);
  if (!(reflection instanceof protobuf.Type) || name in SPECIAL) return;
  for (const field of reflection.fieldsArray) {
    field.resolve();
    if (field.resolvedType) visit(field.resolvedType);
  }
}

for (const name of ROOTS) {
  const reflection = root.lookup(name);
  if (reflection instanceof protobuf.Type) visit(reflection);
  else missing.push(name);
}

// Namespace tree: a message's nested types go in a namespace of the same name (declaration
// merging), so the types read as their proto names: envoy.config.cluster.v3.Cluster.LbPolicy.
const tree = { children: new Map() };
for (const name of [...reached.keys()].sort()) {
  let node = tree;
  for (const part of name.split('.')) {
    if (!node.children.has(part)) node.children.set(part, { children: new Map() });
    node = node.children.get(part);
  }
  node.reflection = reached.get(name);
}

// References are written from the top (envoy.config.core.v3.Address) and TypeScript resolves a
// qualified name's first part through the enclosing namespaces, so no inner name may shadow a
// top-level one.
const topLevel = new Set(tree.children.keys());
(function checkShadowing(node, depth, path) {
  for (const [part, child] of node.children) {
    if (depth > 0 && topLevel.has(part)) {
      throw new Error(`[gen-envoy-types] ${path}.${part} would shadow the top-level ${part}`);
    }
    checkShadowing(child, depth + 1, depth ? `${path}.${part}` : part);
  }
})(tree, 0, '');

const IDENT = /^[A-Za-z_$][\w$]*$/;
const key = (name) => (IDENT.test(name) ? name : JSON.stringify(name));
const arrayOf = (t) =>
  t.includes('|') || t.startsWith('{') ? `readonly (${t})[]` : `readonly ${t}[]`;

function fieldType(field) {
  const element = field.resolvedType ? fullName(field.resolvedType) : SCALARS[field.type];
  if (!element) throw new Error(`[gen-envoy-types] ${field.fullName}: unknown type ${field.type}`);
  if (field.map) return `{ [key: string]: ${element} }`;
  if (field.repeated) return arrayOf(element);
  return element;
}

function docComment(lines, indent) {
  if (lines.length === 0) return [];
  if (lines.length === 1) return [`${indent}/** ${lines[0]} */`];
  return [`${indent}/**`, ...lines.map((l) => `${indent} * ${l}`), `${indent} */`];
}

function declaration(reflection, name, indent) {
  const full = fullName(reflection);
  if (full in SPECIAL) return [`${indent}type ${name} = ${SPECIAL[full]};`];
  if (reflection instanceof protobuf.Enum) {
    const values = Object.keys(reflection.values).map((v) => `'${v}'`);
    return [`${indent}type ${name} = ${values.join(' | ')};`];
  }
  const lines = [`${indent}interface ${name} {`];
  for (const field of reflection.fieldsArray) {
    const notes = [];
    if (field.partOf) notes.push(`oneof ${field.partOf.name}`);
    if (field.options?.deprecated) notes.push('@deprecated');
    lines.push(...docComment(notes, `${indent}  `));
    const optional = WRAPPERS.has(full) && field.name === 'value' ? '' : '?';
    lines.push(`${indent}  ${key(field.name)}${optional}: ${fieldType(field)};`);
  }
  lines.push(`${indent}}`);
  return lines;
}

function emit(node, indent) {
  const lines = [];
  for (const [part, child] of node.children) {
    if (child.reflection) lines.push(...declaration(child.reflection, part, indent));
    if (child.children.size > 0) {
      lines.push(`${indent}namespace ${part} {`, ...emit(child, `${indent}  `), `${indent}}`);
    }
  }
  return lines;
}

const messages = [...reached.entries()]
  .filter(([, r]) => r instanceof protobuf.Type)
  .map(([name]) => name)
  .sort();

const source = [
  '// Generated by scripts/gen-envoy-types.mjs from gen/envoy-protos.json. Do not edit.',
  '// Envoy messages in the JSON shape src/protos/envoy.ts encodes; see the script for the mapping.',
  `// Roots: ${ROOTS.filter((r) => !missing.includes(r)).join(', ')}.`,
  ...(missing.length
    ? [
        `// Not in the descriptor (add their .proto to scripts/gen-protos.mjs): ${missing.join(', ')}.`,
      ]
    : []),
  '',
  ...[...tree.children.entries()].flatMap(([part, child]) => [
    `export declare namespace ${part} {`,
    ...emit(child, '  '),
    '}',
  ]),
  '',
  '/** Every generated message type, by full proto name. */',
  'export interface EnvoyMessages {',
  ...messages.map((name) => `  '${name}': ${name};`),
  '}',
  '',
].join('\n');

writeFileSync(out, source);
const enums = reached.size - messages.length;
console.error(
  `[gen-envoy-types] wrote ${out}: ${messages.length} messages, ${enums} enums, ${source.length} bytes`,
);
for (const name of missing) {
  console.error(`[gen-envoy-types] warning: ${name} is not in ${descriptorPath}; skipped`);
}
