// The DNS listener is one of a sidecar's own resources but the very same object for every
// sidecar (its table lists every service): proxies arriving at a replica (a failover) must not
// each pay for stringifying and hashing it, and each gets the same resource.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseCatalog } from '../../src/catalog/schema.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { dnsListenerName } from '../../src/translate/dns.js';
import type { ProxyView } from '../../src/snapshot/proxy-view.js';
import { decodeMessage, TYPE_URLS } from '../../src/protos/envoy.js';

function catalog(services = 50, port = 80) {
  const list = [];
  for (let s = 0; s < services; s++) {
    list.push({
      name: `svc-${s}`,
      instances: [{ id: `svc-${s}-0`, address: `10.0.0.${s + 1}`, port, sidecarPort: 15006 }],
    });
  }
  return parseCatalog({ services: list });
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('an own resource every proxy shares', () => {
  it('50 sidecars with DNS: the DNS listener is stringified once and is one resource', () => {
    const store = new SnapshotStore({ logger: silentLogger, debounceMs: 0, maxDebounceMs: 0 });
    store.setCatalog(catalog());
    store.flush();
    const name = dnsListenerName(15053);
    const stringify = vi.spyOn(JSON, 'stringify');
    const views: ProxyView[] = [];
    for (let s = 0; s < 50; s++) {
      const proxy = {
        nodeId: `svc-${s}-0`,
        service: `svc-${s}`,
        outboundPort: 15001,
        dnsPort: 15053,
      };
      store.watch(proxy, (view) => views.push(view));
    }
    expect(views).toHaveLength(50);
    const dns = views[0]!.get('listeners', name)!;
    expect(dns).toBeDefined();
    for (const v of views) expect(v.get('listeners', name)).toBe(dns);
    // JSON.stringify is handed the listener itself at most once (the first proxy).
    const dnsMessage = stringify.mock.calls
      .map((c) => c[0] as { name?: string })
      .filter((m) => m?.name === name);
    expect(dnsMessage.length).toBeLessThanOrEqual(1);
  });

  it('a new service changes every DNS listener; an endpoint change elsewhere keeps it', () => {
    const store = new SnapshotStore({ logger: silentLogger, debounceMs: 0, maxDebounceMs: 0 });
    store.setCatalog(catalog());
    store.flush();
    const name = dnsListenerName(15053);
    const latest = new Map<string, ProxyView>();
    for (let s = 0; s < 10; s++) {
      const proxy = {
        nodeId: `svc-${s}-0`,
        service: `svc-${s}`,
        outboundPort: 15001,
        dnsPort: 15053,
      };
      store.watch(proxy, (view) => latest.set(proxy.nodeId, view));
    }
    const before = latest.get('svc-0-0')!.get('listeners', name)!;
    store.setCatalog(catalog(50, 81)); // every instance's port: endpoints only
    store.flush();
    expect(latest.get('svc-0-0')!.get('listeners', name)).toBe(before);
    store.setCatalog(catalog(51, 81)); // svc-50 is new: every DNS table lists it
    store.flush();
    const after = latest.get('svc-0-0')!.get('listeners', name)!;
    expect(after.version).not.toBe(before.version);
    for (const v of latest.values()) expect(v.get('listeners', name)).toBe(after);
    const listener = decodeMessage(TYPE_URLS.listeners, after.value);
    expect(JSON.stringify(listener)).toContain('svc-50');
  });
});
