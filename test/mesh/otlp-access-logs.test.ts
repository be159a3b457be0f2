// AccessLogs Type otlp (a lucid-mesh extension) sends to the tracing collector: with a collector
// from proxy-defaults Tracing or the serve flags its sidecars log over OTLP; without one the
// entry does not apply and a problem names the entry and the field.
import { describe, expect, it } from 'vitest';
import { parseCatalog } from '../../src/catalog/schema.js';
import { buildMesh, DEFAULT_MESH_SETTINGS, meshProxy } from '../../src/mesh/index.js';
import type { Mesh, MeshSettings } from '../../src/mesh/types.js';
import { parseTrafficDocument } from '../../src/traffic/schema.js';
import { TRACING_CLUSTER_NAME } from '../../src/translate/observability.js';
import { translateProxy, translateShared } from '../../src/translate/index.js';

const catalog = parseCatalog({
  services: ['web', 'api'].map((name, i) => ({
    name,
    protocol: 'http',
    instances: [{ id: `${name}-1`, address: `10.0.0.${i + 1}`, port: 80, sidecarPort: 15006 }],
  })),
});

function meshOf(entries: unknown[], settings: MeshSettings = DEFAULT_MESH_SETTINGS): Mesh {
  return buildMesh({ catalog, traffic: parseTrafficDocument(entries), settings });
}

const logOf = (mesh: Mesh, service: string) =>
  meshProxy(mesh, { nodeId: `${service}-1`, service, outboundPort: 15001 }).accessLog;

describe('AccessLogs Type otlp', () => {
  it('without a collector: a problem per entry naming AccessLogs.Type, and no OTLP log', () => {
    const mesh = meshOf([
      { Kind: 'proxy-defaults', Name: 'global', AccessLogs: { Enabled: true, Type: 'otlp' } },
      { Kind: 'service-defaults', Name: 'api', AccessLogs: { Enabled: true, Type: 'otlp' } },
    ]);
    expect(mesh.problems).toEqual([
      {
        kind: 'proxy-defaults',
        name: 'global',
        message: expect.stringMatching(
          /^AccessLogs\.Type: otlp sends log records to the tracing collector, but none is configured \(proxy-defaults Tracing\.Collector or Config\.lucid_tracing_collector, or serve --tracing-otlp\)/,
        ),
      },
      {
        kind: 'service-defaults',
        name: 'api',
        message: expect.stringContaining('the sidecars of "api" get no access log from this entry'),
      },
    ]);
    expect(logOf(mesh, 'web')).toBeUndefined();
    expect(logOf(mesh, 'api')).toBeUndefined();
  });

  it("a service's otlp entry that cannot apply leaves it proxy-defaults' log", () => {
    const mesh = meshOf([
      { Kind: 'proxy-defaults', Name: 'global', AccessLogs: { Enabled: true } },
      { Kind: 'service-defaults', Name: 'api', AccessLogs: { Enabled: true, Type: 'otlp' } },
    ]);
    expect(mesh.problems.map((p) => `${p.kind}/${p.name}`)).toEqual(['service-defaults/api']);
    expect(logOf(mesh, 'api')).toEqual({ type: 'stdout' });
  });

  it('with the collector from the serve flags: no problem, every HCM logs to its cluster', () => {
    const mesh = meshOf(
      [{ Kind: 'proxy-defaults', Name: 'global', AccessLogs: { Enabled: true, Type: 'otlp' } }],
      {
        ...DEFAULT_MESH_SETTINGS,
        tracing: { collector: { host: '127.0.0.1', port: 4317 }, samplingPercent: 0 },
      },
    );
    expect(mesh.problems).toEqual([]);
    const proxy = meshProxy(mesh, { nodeId: 'web-1', service: 'web', outboundPort: 15001 });
    expect(proxy.accessLog).toEqual({ type: 'otlp' });
    expect([...translateShared(mesh).clusters.keys()]).toContain(TRACING_CLUSTER_NAME);
    const listeners = [...translateProxy(mesh, proxy).listeners.values()];
    const hcms = JSON.stringify(listeners).match(/envoy\.access_loggers\.open_telemetry/g) ?? [];
    // Inbound and outbound connection managers.
    expect(hcms.length).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(listeners)).toContain(
      `"grpcService":{"envoyGrpc":{"clusterName":"${TRACING_CLUSTER_NAME}"}}`,
    );
    expect(JSON.stringify(listeners)).not.toContain('commonConfig');
  });
});
