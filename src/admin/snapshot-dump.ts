// GET /v1/snapshot?node=ID[&type=T]: the resources a node is being served, as Envoy JSON.
import { DEFAULT_DNS_PORT, DEFAULT_OUTBOUND_PORT, type ProxyIdentity } from '../catalog/model.js';
import { MESH_GATEWAY_SERVICE, findMeshInstance, proxyScope } from '../mesh/index.js';
import { RESOURCE_KINDS, type ResourceKind } from '../protos/envoy.js';
import type { SnapshotStore } from '../snapshot/store.js';
import type { StreamInfo } from '../xds/type-status.js';
import { resourceJson } from './resource-json.js';

export interface SnapshotDump {
  node: string;
  /** false: the node is not connected; this is what it would get with default settings. */
  connected: boolean;
  snapshotVersion: string;
  /** The services it receives (docs/scoping.md): `all`, or what decided and which. */
  scope: { from: string; services?: readonly string[] };
  resources: Partial<
    Record<ResourceKind, Array<{ name: string; version: string; resource: unknown }>>
  >;
}

export class DumpError extends Error {
  override readonly name: string = 'DumpError';
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function parseKind(value: string | null): ResourceKind | undefined {
  if (value === null || value === '') return undefined;
  if (!(RESOURCE_KINDS as readonly string[]).includes(value)) {
    throw new DumpError(
      400,
      `type: expected one of ${RESOURCE_KINDS.join(' | ')}, got ${JSON.stringify(value)}`,
    );
  }
  return value as ResourceKind;
}

/** How a node that is not connected is previewed: as bootstrapped with `--mode`. */
export type PreviewMode = 'sotw' | 'delta';

export function parsePreviewMode(value: string | null): PreviewMode {
  if (value === null || value === '' || value === 'sotw') return 'sotw';
  if (value === 'delta') return 'delta';
  throw new DumpError(400, `mode: expected sotw | delta, got ${JSON.stringify(value)}`);
}

export function snapshotDump(
  store: SnapshotStore,
  streams: Iterable<StreamInfo>,
  node: string | null,
  kind: ResourceKind | undefined,
  mode: PreviewMode = 'sotw',
): SnapshotDump {
  if (!node) throw new DumpError(400, 'node: required, e.g. /v1/snapshot?node=hello-1');
  const snapshot = store.snapshot;
  if (!snapshot)
    throw new DumpError(503, 'no snapshot yet: waiting for the first complete catalog');
  let proxy: ProxyIdentity | undefined;
  for (const s of streams) if (s.proxy?.nodeId === node) proxy = s.proxy;
  const connected = proxy !== undefined;
  proxy ??= {
    nodeId: node,
    // A catalog gateway's id: as `bootstrap --gateway mesh` would start it (else the preview
    // was a sidecar's outbound listeners).
    service: snapshot.mesh.gateways.some((g) => g.id === node)
      ? MESH_GATEWAY_SERVICE
      : (findMeshInstance(snapshot.mesh, node)?.service.name ?? ''),
    outboundPort: DEFAULT_OUTBOUND_PORT,
    // As a sidecar bootstrapped with `lucid-mesh bootstrap`'s defaults.
    dnsPort: DEFAULT_DNS_PORT,
    exclusivePorts: true,
    // `bootstrap --mode delta` also asks for the outbound virtual hosts over VHDS.
    ...(mode === 'delta' ? { vhds: true as const } : {}),
  };
  // A node that is not connected gets a preview: computed for this answer and not kept, so
  // asking about any number of made-up names leaves nothing behind.
  let view;
  try {
    view = connected ? store.viewFor(proxy) : store.previewFor(proxy);
  } catch (err) {
    throw new DumpError(
      500,
      `cannot build the resources of node ${JSON.stringify(node)}: ${(err as Error).message}`,
    );
  }
  const resources: SnapshotDump['resources'] = {};
  for (const k of kind ? [kind] : RESOURCE_KINDS) {
    resources[k] = [...view.all(k)].map((r) => ({
      name: r.name,
      version: r.version,
      resource: resourceJson(r),
    }));
  }
  const scope = proxyScope(snapshot.mesh, proxy.service);
  return {
    node,
    connected,
    snapshotVersion: snapshot.version,
    scope: { from: scope.from, ...(scope.services ? { services: scope.services } : {}) },
    resources,
  };
}
