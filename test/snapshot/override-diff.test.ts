// A proxy's own resource that shadowed a shared one (an upstream override from its service's
// service-defaults) and goes away must be sent again as the shared one — not vanish from the
// diff (Envoy would keep the override's limits for good) and not be removed.
import { describe, expect, it } from 'vitest';
import { parseCatalog } from '../../src/catalog/schema.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { parseTrafficDocument } from '../../src/traffic/schema.js';

const catalog = parseCatalog({
  services: [
    {
      name: 'web',
      instances: [{ id: 'web-1', address: '10.0.0.1', port: 80, sidecarPort: 15006 }],
    },
    {
      name: 'api',
      instances: [{ id: 'api-1', address: '10.0.0.2', port: 80, sidecarPort: 15006 }],
    },
  ],
});
const withOverride = parseTrafficDocument([
  {
    Kind: 'service-defaults',
    Name: 'web',
    UpstreamConfig: { Overrides: [{ Name: 'api', Limits: { MaxConnections: 7 } }] },
  },
]);
const proxy = { nodeId: 'web-1', service: 'web', outboundPort: 15001 };

describe('own resources that shadow shared ones', () => {
  it('adding and removing an upstream override is a change of that cluster both ways', () => {
    const store = new SnapshotStore({ logger: silentLogger, debounceMs: 0, maxDebounceMs: 0 });
    store.setCatalog(catalog);
    store.flush();
    const plain = store.viewFor(proxy);

    store.setTraffic(withOverride);
    store.flush();
    const overridden = store.viewFor(proxy);
    expect([...overridden.diffFrom(plain, 'clusters').changed]).toEqual(['api']);
    expect(overridden.get('clusters', 'api')!.version).not.toBe(
      plain.get('clusters', 'api')!.version,
    );

    store.setTraffic(parseTrafficDocument([]));
    store.flush();
    const back = store.viewFor(proxy);
    const diff = back.diffFrom(overridden, 'clusters');
    expect([...diff.changed]).toEqual(['api']);
    expect([...diff.removed]).toEqual([]);
    expect(back.get('clusters', 'api')!.version).toBe(plain.get('clusters', 'api')!.version);
    store.close();
  });
});
