// Sidecars of one-instance services `svc-N` (node `svc-N-0`) watching a snapshot store, as the
// view-level tests of src/snapshot and src/xds set them up: the views they were handed.
import type { Catalog } from '../../src/catalog/model.js';
import type { ProxyIdentity } from '../../src/catalog/model.js';
import type { ProxyView } from '../../src/snapshot/proxy-view.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { silentLogger } from '../../src/telemetry/logger.js';

/** A store with no debounce, built once over `catalog`. */
export function builtStore(catalog: Catalog): SnapshotStore {
  const store = new SnapshotStore({ logger: silentLogger, debounceMs: 0, maxDebounceMs: 0 });
  store.setCatalog(catalog);
  store.flush();
  return store;
}

/** Watches the sidecars of services `svc-<s>` for each s; returns the views handed to them. */
export function watchSidecars(store: SnapshotStore, services: Iterable<number>): ProxyView[] {
  const views: ProxyView[] = [];
  for (const s of services) {
    const proxy = {
      nodeId: `svc-${s}-0`,
      service: `svc-${s}`,
      outboundPort: 15001,
      dnsPort: 15053,
    };
    store.watch(proxy, (view) => views.push(view));
  }
  return views;
}

/**
 * The sidecars the fan-out tests watch: two of each service `s0`…`s<n-1>` (nodes `sN-1`,
 * `sN-2`) and `stray-1`, a node of `s6` that is no instance of it (visited on every change).
 */
export function twoSidecarsEachAndAStray(services = 8): ProxyIdentity[] {
  const proxies: ProxyIdentity[] = [];
  for (let i = 0; i < services; i++) {
    for (const k of [1, 2])
      proxies.push({ nodeId: `s${i}-${k}`, service: `s${i}`, outboundPort: 15001 });
  }
  proxies.push({ nodeId: 'stray-1', service: 's6', outboundPort: 15001 });
  return proxies;
}
