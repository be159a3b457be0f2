// Interned subscriptions: one set per distinct set of names, whatever the order or repeats it
// is listed with, and never a set with other names.
import { describe, expect, it } from 'vitest';
import { internNames } from '../../src/xds/name-set.js';

describe('internNames', () => {
  it('gives the same set for the same names in any order, with or without repeats', () => {
    const names = Array.from({ length: 1000 }, (_, i) => `svc-${i}`);
    const a = internNames(names);
    expect(a.sorted).toEqual([...names].sort());
    expect(internNames([...names].reverse())).toBe(a);
    expect(internNames(new Set(names))).toBe(a);
    expect(internNames([...names, 'svc-7', 'svc-7'])).toBe(a);
  });

  it('never hands out a set whose names differ', () => {
    const a = internNames(['x', 'y']);
    for (const other of [['x'], ['x', 'z'], ['x', 'y', 'z'], ['x', 'x']]) {
      const set = internNames(other);
      expect(set).not.toBe(a);
      expect(set.sorted).toEqual([...new Set(other)].sort());
      expect(other.every((n) => set.has(n))).toBe(true);
    }
    expect(internNames(['y', 'x']).has('z')).toBe(false);
  });
});
