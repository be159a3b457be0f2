#!/usr/bin/env node
// Builds gen/envoy-protos.json: a protobufjs JSON descriptor of the Envoy/xDS types lucid-mesh
// encodes and decodes. Source: the .proto files shipped by the pinned npm package
// @grpc/grpc-js-xds (deps/), with a few newer files laid over them (scripts/fetch-envoy-protos.mjs:
// from crates.io, pinned and cached). Runs at `npm ci` (prepare); the output is gitignored.
import { createRequire } from 'node:module';
import { mkdirSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import { envoyProtoOverlay, OVERLAY_SOURCE } from './fetch-envoy-protos.mjs';
import { prunedDescriptor } from './prune-descriptor.mjs';

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));
const pkgDir = dirname(require.resolve('@grpc/grpc-js-xds/package.json'));
const deps = join(pkgDir, 'deps');
let overlay;
try {
  overlay = await envoyProtoOverlay();
} catch (err) {
  console.error(err.message);
  process.exit(1);
}
const includeDirs = [
  // First: its files (and only those) win over grpc-js-xds's.
  overlay,
  ...['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => join(deps, d)),
  // google/protobuf/descriptor.proto (for options) ships with protobufjs itself.
  dirname(require.resolve('protobufjs/package.json')),
];

// Every message type a resource, a typed_config or the protocol refers to must be reachable
// from these files; protobufjs resolves imports transitively.
const entryFiles = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/discovery/v3/discovery.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/fault/v3/fault.proto',
  'envoy/extensions/retry/host/previous_hosts/v3/previous_hosts.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/retry/priority/previous_priorities/v3/previous_priorities_config.proto',
  'envoy/extensions/clusters/aggregate/v3/cluster.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/config/bootstrap/v3/bootstrap.proto',
  // Tracing and access logs (docs/observability.md).
  'envoy/config/trace/v3/opentelemetry.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
  'envoy/extensions/access_loggers/open_telemetry/v3/logs_service.proto',
  // Sidecar DNS (docs/dns.md).
  'envoy/extensions/filters/udp/dns_filter/v3/dns_filter.proto',
  'google/rpc/status.proto',
];

const root = new protobuf.Root();
root.resolvePath = (_origin, target) => {
  if (existsSync(target)) return target;
  for (const dir of includeDirs) {
    const candidate = join(dir, target);
    if (existsSync(candidate)) return candidate;
  }
  // The other google/protobuf/*.proto (any, duration, struct...) are built into protobufjs.
  return target;
};
root.loadSync(entryFiles, { keepCase: false });
root.resolveAll();

const outDir = join(here, '..', 'gen');
mkdirSync(outDir, { recursive: true });
const out = join(outDir, 'envoy-protos.json');
// Only what the entry files define and reach, without documentation-only options (idle RSS).
const pruned = prunedDescriptor(root, entryFiles);
writeFileSync(out, JSON.stringify(pruned.json));
const version = require('@grpc/grpc-js-xds/package.json').version;
writeFileSync(
  join(outDir, 'envoy-protos.source.txt'),
  `@grpc/grpc-js-xds@${version} deps/\n${OVERLAY_SOURCE} (overlay)\n`,
);
console.error(
  `[gen-protos] wrote ${out} (${pruned.kept} of ${pruned.total} types) from @grpc/grpc-js-xds@${version} + ${OVERLAY_SOURCE}`,
);
