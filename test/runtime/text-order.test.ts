// compareStrings orders identifiers by UTF-16 code unit: the order Array#sort gives strings by default.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareStrings } from '../../src/text-order.js';

describe('compareStrings', () => {
  it('sorts like Array#sort does by default, case and all', () => {
    expect(['web', 'Web', 'api', 'api-2', 'api'].sort(compareStrings)).toEqual([
      'Web',
      'api',
      'api',
      'api-2',
      'web',
    ]);
    fc.assert(
      fc.property(fc.array(fc.string()), (names) => {
        expect([...names].sort(compareStrings)).toEqual([...names].sort());
      }),
    );
  });
});
