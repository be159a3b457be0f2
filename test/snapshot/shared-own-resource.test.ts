// The DNS listener is one of a sidecar's own resources but the very same object for every
// sidecar (its table lists every service): proxies arriving at a replica (a failover) must not
// each pay for stringifying and hashing it, and each gets the same resource.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { builtStore, watchSidecars } from '../support/sidecar-views.js';
import { parseCatalog } from '../../src/catalog/schema.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { dnsListenerName } from '../../src/translate/dns.js';
import { outboundHttpListenerName } from '../../src/translate/names.js';
import { DEFAULT_MESH_SETTINGS } from '../../src/mesh/types.js';
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
    const store = builtStore(catalog());
    const name = dnsListenerName(15053);
    const stringify = vi.spyOn(JSON, 'stringify');
    const views = watchSidecars(
      store,
      Array.from({ length: 50 }, (_, s) => s),
    );
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

  it('scoped sidecars of 4 scopes arriving interleaved: one DNS listener per scope, one outbound', () => {
    // Every service declares the next two: a scope (and a DNS table) of its own. Proxies arrive
    // as a storm brings them, one of each service in turn, so consecutive proxies never share
    // a scope: each scope's DNS listener must still be stringified and made once, not once
    // per proxy (the W9 storm made 10,000 of them for 1,000 scopes).
    const services = 4;
    const instances = 3;
    const list = [];
    for (let s = 0; s < services; s++) {
      list.push({
        name: `svc-${s}`,
        upstreams: [`svc-${(s + 1) % services}`, `svc-${(s + 2) % services}`],
        instances: Array.from({ length: instances }, (_, i) => ({
          id: `svc-${s}-${i}`,
          address: `10.0.${s}.${i + 1}`,
          port: 80,
          sidecarPort: 15006,
        })),
      });
    }
    const store = new SnapshotStore({
      logger: silentLogger,
      debounceMs: 0,
      maxDebounceMs: 0,
      settings: { ...DEFAULT_MESH_SETTINGS, scope: 'declared' },
    });
    store.setCatalog(parseCatalog({ services: list }));
    store.flush();
    const dnsName = dnsListenerName(15053);
    const outboundName = outboundHttpListenerName(15001);
    const stringify = vi.spyOn(JSON, 'stringify');
    const views = new Map<string, ProxyView>();
    for (let i = 0; i < instances; i++) {
      for (let s = 0; s < services; s++) {
        const proxy = {
          nodeId: `svc-${s}-${i}`,
          service: `svc-${s}`,
          outboundPort: 15001,
          dnsPort: 15053,
        };
        store.watch(proxy, (view) => views.set(proxy.nodeId, view));
      }
    }
    expect(views.size).toBe(services * instances);
    const stringified = (name: string) =>
      stringify.mock.calls.filter((c) => (c[0] as { name?: string } | null)?.name === name).length;
    expect(stringified(dnsName)).toBe(services);
    expect(stringified(outboundName)).toBe(1);
    const outbound = views.get('svc-0-0')!.get('listeners', outboundName)!;
    const dnsOf = (s: number) => views.get(`svc-${s}-0`)!.get('listeners', dnsName)!;
    for (let s = 0; s < services; s++) {
      for (let i = 0; i < instances; i++) {
        const view = views.get(`svc-${s}-${i}`)!;
        expect(view.get('listeners', dnsName)).toBe(dnsOf(s));
        expect(view.get('listeners', outboundName)).toBe(outbound);
      }
      // Each scope's table: its two upstreams, not the others.
      const table = JSON.stringify(decodeMessage(TYPE_URLS.listeners, dnsOf(s).value));
      for (const u of [s + 1, s + 2]) expect(table).toContain(`"svc-${u % services}.`);
      for (const u of [s, s + 3]) expect(table).not.toContain(`"svc-${u % services}.`);
    }
    expect(new Set(Array.from({ length: services }, (_, s) => dnsOf(s).version)).size).toBe(
      services,
    );
  });
});
