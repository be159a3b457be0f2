// byText orders identifiers by UTF-16 code unit: the order Array#sort gives strings by default.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { byText } from '../../src/text-order.js';

describe('byText', () => {
  it('sorts like Array#sort does by default, case and all', () => {
    expect(['web', 'Web', 'api', 'api-2', 'api'].sort(byText)).toEqual([
      'Web',
      'api',
      'api',
      'api-2',
      'web',
    ]);
    fc.assert(
      fc.property(fc.array(fc.string()), (names) => {
        expect([...names].sort(byText)).toEqual([...names].sort());
      }),
    );
  });
});
