// Where the sidecar → app idle timeout is set (docs/local-app.md): a catalog service (file or
// etcd), proxy-defaults' Config key; bad values name the field and the value. What Envoy gets
// is in the local-app-idle-timeout golden; that it shuts the keep-alive race is
// test/e2e/local-app-keepalive-race.test.ts.
import { describe, expect, it } from 'vitest';
import { reuseUnchanged } from '../../src/catalog/model.js';
import { parseCatalog } from '../../src/catalog/schema.js';
import { buildMesh, DEFAULT_MESH_SETTINGS, meshProxy } from '../../src/mesh/index.js';
import { decodeServiceSettings } from '../../src/sources/etcd/layout.js';
import { parseTrafficDocument } from '../../src/traffic/schema.js';
import { EMPTY_TRAFFIC } from '../../src/traffic/types.js';

const service = (extra: Record<string, unknown>) => ({
  name: 'api',
  ...extra,
  instances: [{ id: 'api-1', address: '10.0.0.1', port: 8080, sidecarPort: 15006 }],
});

const proxyDefaults = (config: Record<string, unknown>) =>
  parseTrafficDocument([{ Kind: 'proxy-defaults', Name: 'global', Config: config }]);

function inboundTimeout(extra: Record<string, unknown>, traffic = EMPTY_TRAFFIC) {
  const catalog = parseCatalog({ services: [service(extra)] });
  const mesh = buildMesh({ catalog, traffic, settings: DEFAULT_MESH_SETTINGS });
  const proxy = meshProxy(mesh, { nodeId: 'api-1', service: 'api', outboundPort: 15001 });
  return proxy.inbound?.localAppIdleTimeoutMs;
}

describe('local app idle timeout: where it is set', () => {
  it('is absent (the translator default) unless configured', () => {
    expect(inboundTimeout({})).toBeUndefined();
  });

  it('the catalog service wins over proxy-defaults; proxy-defaults reads a string too', () => {
    const traffic = proxyDefaults({ lucid_local_app_idle_timeout_ms: '2500' });
    expect(inboundTimeout({}, traffic)).toBe(2500);
    expect(inboundTimeout({ localAppIdleTimeoutMs: 30000 }, traffic)).toBe(30000);
    expect(inboundTimeout({ localAppIdleTimeoutMs: 0 }, traffic)).toBe(0);
  });

  it('tcp services have no HTTP connections to time out', () => {
    const tcp = { protocol: 'tcp', outboundPort: 25432, localAppIdleTimeoutMs: 1000 };
    expect(inboundTimeout(tcp)).toBeUndefined();
  });

  it("Consul's local_idle_timeout_ms (a route's stream timeout) is not taken for it", () => {
    const traffic = proxyDefaults({ local_idle_timeout_ms: 3000 });
    expect(traffic.unsupported.map((u) => u.field)).toEqual(['Config.local_idle_timeout_ms']);
    expect(inboundTimeout({}, traffic)).toBeUndefined();
  });

  it('a changed value is a changed service (so its sidecars get the new cluster)', () => {
    const before = parseCatalog({ services: [service({ localAppIdleTimeoutMs: 1000 })] });
    const after = parseCatalog({ services: [service({ localAppIdleTimeoutMs: 2000 })] });
    expect(reuseUnchanged(before, after).services[0]).not.toBe(before.services[0]);
  });
});

describe('local app idle timeout: bad values name the field and the value', () => {
  it('catalog file', () => {
    for (const bad of [-1, 1.5, '4000', 90_000_000]) {
      expect(() => parseCatalog({ services: [service({ localAppIdleTimeoutMs: bad })] })).toThrow(
        `services[0].localAppIdleTimeoutMs: expected integer 0-86400000 (ms), got ${JSON.stringify(bad)}`,
      );
    }
  });

  it('etcd service settings', () => {
    expect(decodeServiceSettings('api', '{"localAppIdleTimeoutMs": "4s"}')).toEqual({
      ok: false,
      problem: 'localAppIdleTimeoutMs: expected integer 0-86400000 (ms), got "4s"',
    });
    expect(decodeServiceSettings('api', '{"localAppIdleTimeoutMs": 4000}')).toEqual({
      ok: true,
      value: { protocol: 'http', localAppIdleTimeoutMs: 4000 },
    });
  });

  it('proxy-defaults Config', () => {
    expect(() => proxyDefaults({ lucid_local_app_idle_timeout_ms: 'soon' })).toThrow(
      'proxy-defaults/global: Config.lucid_local_app_idle_timeout_ms: expected integer 0-86400000, got "soon"',
    );
  });
});
