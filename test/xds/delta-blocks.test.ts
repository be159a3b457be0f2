// delta-blocks.ts: a new delta stream's first responses carry the snapshot's shared entries as
// one block joined per snapshot, then the proxy's own. The bytes must hold exactly the entries
// the response lists (each resource once), and the block is made once for every proxy.
import { describe, expect, it } from 'vitest';
import { builtStore, watchSidecars } from '../support/sidecar-views.js';
import { parseCatalog } from '../../src/catalog/schema.js';
import type { EncodedResource } from '../../src/snapshot/encoded-resource.js';
import type { ProxyView } from '../../src/snapshot/proxy-view.js';
import { namedParts, wildcardParts } from '../../src/xds/delta-blocks.js';
import { internNames } from '../../src/xds/name-set.js';

function catalog(services: number) {
  const list = [];
  for (let s = services - 1; s >= 0; s--) {
    list.push({
      name: `svc-${s}`,
      instances: [{ id: `svc-${s}-0`, address: `10.0.3.${s + 1}`, port: 80 }],
    });
  }
  return parseCatalog({ services: list });
}

function views(services: number, proxies: number[]): ProxyView[] {
  return watchSidecars(builtStore(catalog(services)), proxies);
}

/** Each entry's bytes as a hex string, as a sorted multiset. */
const entrySet = (entries: Buffer[]) => entries.map((e) => e.toString('hex')).sort();

/** Splits joined delta entries (Resource messages, each a length-delimited field 2). */
function splitEntries(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  while (at < bytes.length) {
    const start = at;
    at++; // tag
    let length = 0;
    for (let shift = 0; ; shift += 7) {
      const b = bytes[at++]!;
      length += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) break;
    }
    at += length;
    out.push(bytes.subarray(start, at));
  }
  return out;
}

describe('delta blocks', () => {
  it("a wildcard kind's parts hold every upsert's entry once: shared block, then own", () => {
    const [a, b] = views(40, [3, 17]);
    for (const view of [a!, b!]) {
      for (const kind of ['clusters', 'listeners'] as const) {
        const upserts = view.allSorted(kind);
        const parts = wildcardParts(view, kind, upserts)!;
        expect(parts).toBeDefined();
        const entries = splitEntries(Buffer.concat(parts));
        expect(entrySet(entries)).toEqual(entrySet(upserts.map((r) => r.deltaEntry)));
      }
    }
    // The shared block is one object for both proxies (made once per snapshot).
    const blockA = wildcardParts(a!, 'clusters', a!.allSorted('clusters'))![0];
    const blockB = wildcardParts(b!, 'clusters', b!.allSorted('clusters'))![0];
    expect(blockA).toBe(blockB);
  });

  it('a named subscription gets one block when every name is a shared resource, else none', () => {
    const [a, b] = views(40, [3, 17]);
    const clusterNames = [...a!.snapshot.shared.endpoints.keys()].slice(0, 25);
    const names = internNames(clusterNames);
    const lookup = (view: ProxyView, list: readonly string[]) =>
      list.map((n) => view.lookup('endpoints', n)).filter((r): r is EncodedResource => !!r);
    const upsertsA = lookup(a!, names.sorted);
    const partsA = namedParts(a!, 'endpoints', names, upsertsA)!;
    expect(partsA).toHaveLength(1);
    expect(Buffer.concat(partsA)).toEqual(Buffer.concat(upsertsA.map((r) => r.deltaEntry)));
    expect(namedParts(b!, 'endpoints', names, lookup(b!, names.sorted))![0]).toBe(partsA[0]);
    // A name with no resource (a placeholder answers it): entry by entry.
    const withUnknown = internNames([...clusterNames, 'no-such-cluster']);
    expect(namedParts(a!, 'endpoints', withUnknown, lookup(a!, withUnknown.sorted))).toBe(
      undefined,
    );
  });
});
