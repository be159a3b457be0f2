// How a sidecar's DNS listener is asked for (node.metadata.dns_port) and kept: rebuilt when
// the set of services changes, untouched (not even re-translated) when only endpoints do.
import { describe, expect, it } from 'vitest';
import { parseCatalog } from '../../src/catalog/schema.js';
import { buildMesh, DEFAULT_MESH_SETTINGS, meshProxy } from '../../src/mesh/index.js';
import { EMPTY_TRAFFIC } from '../../src/traffic/types.js';
import { decodeMessage, TYPE_URLS } from '../../src/protos/envoy.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { translateProxy } from '../../src/translate/index.js';
import { InvalidNodeError, proxyIdentityOf } from '../../src/xds/node.js';
import { twoServices, twoServicesWithWorld2 } from '../support/control-plane.js';

const node = (metadata: Record<string, unknown>) => ({
  id: 'hello-1',
  cluster: 'hello',
  metadata: { service: 'hello', ...metadata },
});

describe('node.metadata.dns_port', () => {
  it('absent: the default 15053; 0: no DNS listener; a number or numeric string: that port', () => {
    expect(proxyIdentityOf(node({})).dnsPort).toBe(15053);
    expect(proxyIdentityOf(node({ dns_port: 5353 })).dnsPort).toBe(5353);
    expect(proxyIdentityOf(node({ dns_port: '5353' })).dnsPort).toBe(5353);
    for (const off of [0, '0']) {
      expect(Object.keys(proxyIdentityOf(node({ dns_port: off })))).not.toContain('dnsPort');
    }
  });

  it.each([[-1], [65536], [1.5], ['53a'], [true], [{}]])('refuses %j, naming the field', (bad) => {
    expect(() => proxyIdentityOf(node({ dns_port: bad }))).toThrow(InvalidNodeError);
    expect(() => proxyIdentityOf(node({ dns_port: bad }))).toThrow(
      /^node\.metadata\.dns_port: expected integer 0-65535 \(0: no DNS listener\), got /,
    );
  });
});

describe("a sidecar's DNS listener", () => {
  it('answers the names of serve --dns-domain', () => {
    const mesh = buildMesh({
      catalog: parseCatalog(twoServices()),
      traffic: EMPTY_TRAFFIC,
      settings: { ...DEFAULT_MESH_SETTINGS, domainSuffix: 'mesh.example' },
    });
    const own = translateProxy(
      mesh,
      meshProxy(mesh, { nodeId: 'x', service: 'hello', outboundPort: 15001, dnsPort: 5353 }),
    );
    const listener = own.listeners.get('dns|5353') as unknown as {
      address: { socketAddress: unknown };
      listenerFilters: Array<{
        typedConfig: {
          serverConfig: { inlineDnsTable: { virtualDomains: Array<{ name: string }> } };
        };
      }>;
    };
    expect(listener.address.socketAddress).toEqual({
      protocol: 'UDP',
      address: '127.0.0.1',
      portValue: 5353,
    });
    const table = listener.listenerFilters[0]!.typedConfig.serverConfig.inlineDnsTable;
    expect(table.virtualDomains.map((d) => d.name)).toEqual([
      'hello.mesh.example',
      'world.mesh.example',
    ]);
  });
});

describe("a sidecar's DNS listener in the snapshot store", () => {
  it('changes with the set of services only', () => {
    let translations = 0;
    const store = new SnapshotStore({
      logger: silentLogger,
      debounceMs: 5,
      maxDebounceMs: 10,
      translateProxy: (mesh, proxy) => {
        translations++;
        return translateProxy(mesh, proxy);
      },
    });
    try {
      const apply = (doc: unknown) => {
        store.setCatalog(parseCatalog(doc));
        store.flush();
      };
      const names = (encoded: { value: Uint8Array } | undefined): string[] => {
        const listener = decodeMessage(TYPE_URLS.listeners, encoded!.value) as {
          listenerFilters: Array<{
            typedConfig: {
              serverConfig: { inlineDnsTable: { virtualDomains: Array<{ name: string }> } };
            };
          }>;
        };
        const table = listener.listenerFilters[0]!.typedConfig.serverConfig.inlineDnsTable;
        return table.virtualDomains.map((d) => d.name);
      };
      const proxy = { nodeId: 'hello-1', service: 'hello', outboundPort: 15001, dnsPort: 15053 };

      apply(twoServices());
      const first = store.viewFor(proxy).get('listeners', 'dns|15053');
      expect(names(first)).toEqual(['hello.lucid.internal', 'world.lucid.internal']);
      const translatedFirst = translations;

      // Only world's endpoints change: the proxy's own resources are not even translated.
      apply(twoServicesWithWorld2());
      expect(store.viewFor(proxy).get('listeners', 'dns|15053')).toBe(first);
      expect(translations).toBe(translatedFirst);

      apply(
        twoServices({
          more: [{ name: 'extra', instances: [{ id: 'e-1', address: '127.0.0.2', port: 80 }] }],
        }),
      );
      const added = store.viewFor(proxy).get('listeners', 'dns|15053');
      expect(added!.version).not.toBe(first!.version);
      expect(names(added)).toEqual([
        'extra.lucid.internal',
        'hello.lucid.internal',
        'world.lucid.internal',
      ]);

      // A proxy without dnsPort (bootstrap --dns-port 0) has none.
      const quiet = store.viewFor({ nodeId: 'hello-1', service: 'hello', outboundPort: 15001 });
      expect([...quiet.all('listeners')].map((l) => l.name)).not.toContain('dns|15053');
    } finally {
      store.close();
    }
  });
});
