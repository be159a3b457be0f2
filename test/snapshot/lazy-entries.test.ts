// A proxy's own resources make only the entry its protocol needs (lazy-resource.ts): the bytes
// are those encodeResource makes, whichever entry (SotW, delta) or the value is asked first.
import { describe, expect, it } from 'vitest';
import { encodeResource } from '../../src/snapshot/encoded-resource.js';
import { lazyResource } from '../../src/snapshot/lazy-resource.js';
import type { ResourceMessage } from '../../src/translate/types.js';

const cluster = {
  name: 'local_app|web-1',
  type: 'STATIC',
  connectTimeout: { seconds: 5 },
  loadAssignment: {
    clusterName: 'local_app|web-1',
    endpoints: [
      {
        lbEndpoints: [
          { endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: 8080 } } } },
        ],
      },
    ],
  },
} as unknown as ResourceMessage;

describe('own resources, encoded on first use', () => {
  // A long name makes every length a two-byte varint (the value is read back by its lengths).
  for (const name of ['local_app|web-1', '', `local_app|${'w'.repeat(300)}`]) {
    const expected = (version: string) => encodeResource('clusters', name, cluster, version);

    it(`SotW first, then value and delta: the same bytes (name ${JSON.stringify(name)})`, () => {
      const r = lazyResource('clusters', name, cluster);
      const want = expected(r.version);
      expect(Buffer.compare(r.sotwEntry, want.sotwEntry)).toBe(0);
      expect(Buffer.compare(Buffer.from(r.value), Buffer.from(want.value))).toBe(0);
      expect(Buffer.compare(r.deltaEntry, want.deltaEntry)).toBe(0);
    });

    it(`delta first, then value and SotW: the same bytes (name ${JSON.stringify(name)})`, () => {
      const r = lazyResource('clusters', name, cluster);
      const want = expected(r.version);
      expect(Buffer.compare(r.deltaEntry, want.deltaEntry)).toBe(0);
      expect(Buffer.compare(Buffer.from(r.value), Buffer.from(want.value))).toBe(0);
      expect(Buffer.compare(r.sotwEntry, want.sotwEntry)).toBe(0);
    });

    it(`value first, then both entries: the same bytes (name ${JSON.stringify(name.slice(0, 20))})`, () => {
      const r = lazyResource('clusters', name, { ...cluster, name } as ResourceMessage);
      const want = encodeResource('clusters', name, { ...cluster, name }, r.version);
      expect(Buffer.compare(Buffer.from(r.value), Buffer.from(want.value))).toBe(0);
      expect(Buffer.compare(r.sotwEntry, want.sotwEntry)).toBe(0);
      expect(Buffer.compare(r.deltaEntry, want.deltaEntry)).toBe(0);
      expect(Buffer.compare(Buffer.from(r.value), Buffer.from(want.value))).toBe(0);
    });
  }

  it('an entry read again is the same bytes (kept once, handed out as a fresh Buffer)', () => {
    const r = lazyResource('clusters', 'local_app|web-1', cluster);
    const first = r.deltaEntry;
    const again = r.deltaEntry;
    expect(Buffer.compare(again, first)).toBe(0);
    // A caller writing into its Buffer does not change what the resource holds.
    again.fill(0);
    expect(Buffer.compare(r.deltaEntry, first)).toBe(0);
    expect(Buffer.compare(r.sotwEntry, r.sotwEntry)).toBe(0);
  });
});
