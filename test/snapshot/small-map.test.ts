// compactMap (small-map.ts): a proxy's few own resources of a kind in the object's fields,
// read exactly as the Map they came from; more than four stay that Map.
import { describe, expect, it } from 'vitest';
import { compactMap } from '../../src/snapshot/small-map.js';

describe('compactMap', () => {
  for (const size of [1, 2, 3, 4]) {
    it(`${size} entries read as the Map did, in its order`, () => {
      const map = new Map(Array.from({ length: size }, (_, i) => [`k${size - i}`, i] as const));
      const small = compactMap(map);
      expect(small).not.toBe(map);
      expect(small.size).toBe(size);
      expect([...small]).toEqual([...map]);
      expect([...small.entries()]).toEqual([...map.entries()]);
      expect([...small.keys()]).toEqual([...map.keys()]);
      expect([...small.values()]).toEqual([...map.values()]);
      for (const [k, v] of map) {
        expect(small.get(k)).toBe(v);
        expect(small.has(k)).toBe(true);
      }
      expect(small.get('k0')).toBeUndefined();
      expect(small.has('k0')).toBe(false);
      expect(small.has(undefined as unknown as string)).toBe(false);
      const seen: [string, number][] = [];
      small.forEach((v, k, m) => {
        expect(m).toBe(small);
        seen.push([k, v]);
      });
      expect(seen).toEqual([...map]);
    });
  }

  it('a map of five stays the Map', () => {
    const map = new Map(Array.from({ length: 5 }, (_, i) => [`k${i}`, i] as const));
    expect(compactMap(map)).toBe(map);
  });
});
