// ProxyView.allSorted: a delta stream's first wildcard response lists every resource of a kind
// sorted by name. The shared part is sorted once per snapshot and the proxy's own merged in; it
// must list exactly what all() does, in the order a plain sort gives.
import { describe, expect, it } from 'vitest';
import { builtStore, watchSidecars } from '../support/sidecar-views.js';
import { parseCatalog } from '../../src/catalog/schema.js';
import { RESOURCE_KINDS } from '../../src/protos/envoy.js';
import type { EncodedResource } from '../../src/snapshot/encoded-resource.js';
import type { ProxyView } from '../../src/snapshot/proxy-view.js';

function catalog(services: number) {
  const list = [];
  // Names out of order, so the snapshot's insertion order is not already sorted.
  for (let s = services - 1; s >= 0; s--) {
    list.push({
      name: `svc-${(s * 7) % services}`,
      instances: [{ id: `svc-${(s * 7) % services}-0`, address: `10.0.1.${s + 1}`, port: 80 }],
    });
  }
  return parseCatalog({ services: list });
}

const names = (rs: readonly EncodedResource[]) => rs.map((r) => r.name);
const plainSort = (view: ProxyView, kind: (typeof RESOURCE_KINDS)[number]) =>
  [...view.all(kind)].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

describe('ProxyView.allSorted', () => {
  it('lists what all() lists, sorted, for every kind, with the proxy own resources merged in', () => {
    const views = watchSidecars(builtStore(catalog(30)), [0, 13, 29]);
    expect(views).toHaveLength(3);
    let ownSeen = 0;
    for (const view of views) {
      for (const kind of RESOURCE_KINDS) {
        const expected = plainSort(view, kind);
        const got = view.allSorted(kind);
        expect(names(got)).toEqual(names(expected));
        // The same resources (objects), not copies.
        got.forEach((r, i) => expect(r).toBe(expected[i]));
        if (got.some((r) => !view.snapshot.shared[kind].has(r.name))) ownSeen++;
      }
      // A fresh array each time: the caller may keep it.
      expect(view.allSorted('clusters')).not.toBe(view.allSorted('clusters'));
    }
    expect(ownSeen).toBeGreaterThan(0); // the own resources were merged, not only shared ones
  });
});
