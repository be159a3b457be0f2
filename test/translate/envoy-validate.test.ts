// Proves a real Envoy accepts what the translator generates: for every golden case and every
// proxy, the sidecar's full configuration (shared ∪ proxy) is put in a bootstrap and checked
// with `envoy --mode validate`. Static config cannot use ADS, so EDS clusters become STATIC
// with their ClusterLoadAssignment inline, and RDS becomes the inline route configuration
// (which also makes Envoy check that every route names an existing cluster).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseCatalog } from '../../src/catalog/schema.js';
import {
  buildMesh,
  DEFAULT_MESH_SETTINGS,
  meshProxy,
  proxyLocality,
} from '../../src/mesh/index.js';
import { EMPTY_TRAFFIC } from '../../src/traffic/types.js';
import {
  RESOURCE_KINDS,
  TYPE_URLS,
  decodeMessage,
  encodeMessage,
  type ResourceKind,
} from '../../src/protos/envoy.js';
import { CertificateAuthority, MemoryCaStore } from '../../src/ca/index.js';
import {
  TranslationCache,
  scopeResourceSet,
  translateLocality,
  translateProxy,
  translateShared,
} from '../../src/translate/index.js';
import { identitySecret, trustBundleSecret } from '../../src/translate/tls.js';
import type { ResourceSet } from '../../src/translate/types.js';
import { envoyPath } from '../support/tools.js';
import { caseNames, loadCase } from './cases.js';

type Json = Record<string, unknown>;
type Wire = Record<ResourceKind, Map<string, Json>>;

const HCM =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const workDir = mkdtempSync(join(tmpdir(), 'lucid-envoy-validate-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

/** Resources as Envoy receives them: encoded to protobuf and decoded back. */
function onTheWire(...sets: ResourceSet[]): Wire {
  const wire = {} as Wire;
  for (const kind of RESOURCE_KINDS) {
    wire[kind] = new Map();
    for (const set of sets) {
      for (const [name, resource] of set[kind]) {
        const bytes = encodeMessage(TYPE_URLS[kind], resource, name);
        wire[kind].set(name, decodeMessage(TYPE_URLS[kind], bytes));
      }
    }
  }
  return wire;
}

function staticCluster(cluster: Json, wire: Wire): Json {
  if (cluster.type !== 'EDS') return cluster;
  const { edsClusterConfig, ...rest } = cluster as { edsClusterConfig: { serviceName: string } };
  const assignment = wire.endpoints.get(edsClusterConfig.serviceName);
  if (!assignment) throw new Error(`cluster ${String(cluster.name)} has no ClusterLoadAssignment`);
  return { ...rest, type: 'STATIC', loadAssignment: assignment };
}

function inlineRoutes(listener: Json, wire: Wire): Json {
  const copy = structuredClone(listener) as { filterChains?: { filters?: Json[] }[] };
  for (const chain of copy.filterChains ?? []) {
    for (const filter of chain.filters ?? []) {
      const hcm = filter.typedConfig as Json & { rds?: { routeConfigName: string } };
      if (hcm['@type'] !== HCM || !hcm.rds) continue;
      const routeConfig = wire.routes.get(hcm.rds.routeConfigName);
      if (!routeConfig) throw new Error(`route configuration ${hcm.rds.routeConfigName} missing`);
      delete hcm.rds;
      hcm.routeConfig = routeConfig;
    }
  }
  return copy as Json;
}

// Validate mode cannot follow SDS-over-ADS references (Envoy 1.40 crashes on them), so the
// references become static secrets of the same names, made by the translator from a real leaf
// of our CA. That also makes Envoy parse the certificate and key we send.
let staticSecrets: Json[] | undefined;
async function secrets(): Promise<Json[]> {
  if (!staticSecrets) {
    const ca = await CertificateAuthority.open({ store: new MemoryCaStore() });
    const leaf = await ca.issueLeaf('web');
    staticSecrets = [identitySecret(leaf), trustBundleSecret(ca.trustBundlePem())].map((secret) =>
      decodeMessage(TYPE_URLS.secrets, encodeMessage(TYPE_URLS.secrets, secret)),
    );
  }
  return staticSecrets;
}

function withoutSdsSources(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutSdsSources);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([k]) => k !== 'sdsConfig')
      .map(([k, v]) => [k, withoutSdsSources(v)]),
  );
}

async function bootstrap(nodeId: string, service: string, wire: Wire): Promise<Json> {
  return withoutSdsSources({
    node: { id: nodeId, cluster: service || 'unknown' },
    staticResources: {
      listeners: [...wire.listeners.values()].map((l) => inlineRoutes(l, wire)),
      clusters: [...wire.clusters.values()].map((c) => staticCluster(c, wire)),
      secrets: await secrets(),
    },
  }) as Json;
}

/**
 * protobufjs keeps an underscore before a digit in field names (`consecutive_5xx`), proto3
 * JSON drops it (`consecutive5xx`): Envoy's JSON parser wants the latter. (On the wire only
 * field numbers count, so this is about this test's JSON only.)
 */
function protoJsonNames(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(protoJsonNames);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([k, v]) => [
      k.startsWith('@') || k.includes('.') ? k : k.replace(/_(\d)/g, '$1'),
      protoJsonNames(v),
    ]),
  );
}

function validate(name: string, config: Json): { status: number | null; output: string } {
  const file = join(workDir, `${name.replace(/[^A-Za-z0-9._-]/g, '_')}.json`);
  writeFileSync(file, JSON.stringify(protoJsonNames(config), null, 2));
  const run = spawnSync(
    envoyPath(),
    ['--mode', 'validate', '-c', file, '--disable-hot-restart', '-l', 'warning'],
    { encoding: 'utf8', timeout: 30_000 },
  );
  return { status: run.status, output: `${run.stdout}${run.stderr}${run.error ?? ''}` };
}

function expectAccepted(name: string, config: Json): void {
  const { status, output } = validate(name, config);
  expect(status, `envoy rejected ${name}:\n${output}`).toBe(0);
  // Deprecated or ignored fields show up as warnings: we want none.
  expect(output, `envoy warned about ${name}:\n${output}`).not.toMatch(/\[warning\]/);
}

describe('envoy --mode validate', () => {
  it.each(caseNames())('accepts every sidecar config of %s', async (caseName) => {
    const { mesh, proxies } = loadCase(caseName);
    const cache = new TranslationCache();
    const shared = translateShared(mesh, cache);
    if (proxies.length === 0) {
      expectAccepted(caseName, await bootstrap('none', '', onTheWire(shared)));
    }
    for (const proxy of proxies) {
      const view = meshProxy(mesh, proxy);
      const own = translateProxy(mesh, view);
      // Failover backends' endpoints as this proxy's locality gets them.
      for (const [name, cla] of translateLocality(mesh, proxyLocality(mesh, proxy))) {
        own.endpoints.set(name, cla);
      }
      // Scoped proxies: only their scope's part, so a route to a cluster left out fails.
      const wire = onTheWire(scopeResourceSet(shared, view, cache), own);
      expectAccepted(
        `${caseName}.${proxy.nodeId}`,
        await bootstrap(proxy.nodeId, proxy.service, wire),
      );
    }
  });

  it('rejects a broken config (the check is not a no-op)', async () => {
    const catalog = parseCatalog({ services: [] });
    const mesh = buildMesh({ catalog, traffic: EMPTY_TRAFFIC, settings: DEFAULT_MESH_SETTINGS });
    const proxy = { nodeId: 'n', service: '', outboundPort: 15001 };
    const wire = onTheWire(translateShared(mesh), translateProxy(mesh, meshProxy(mesh, proxy)));
    wire.routes.set('outbound', {
      name: 'outbound',
      virtualHosts: [
        {
          name: 'x',
          domains: ['x'],
          routes: [{ match: { prefix: '/' }, route: { cluster: 'x' } }],
        },
      ],
    });
    const { status, output } = validate('broken', await bootstrap('n', '', wire));
    expect(status).not.toBe(0);
    expect(output).toMatch(/unknown cluster 'x'/);
  });
});
