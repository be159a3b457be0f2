// Consul filter expressions over Service.Tags / Service.Meta: a table of expressions × instances,
// and syntax errors that name the position and the token.
import { describe, expect, it } from 'vitest';
import {
  FilterSyntaxError,
  compileFilter,
  type FilterInstance,
} from '../../src/traffic/filter-expression.js';

const v1: FilterInstance = { tags: ['v1', 'primary'], meta: { version: 'v1', team: 'a b' } };
const v2: FilterInstance = { tags: ['v2'], meta: { version: 'v2', 'team-id': '7' } };
const canary: FilterInstance = { tags: ['v2', 'canary'], meta: { version: 'v2-rc1' } };
const bare: FilterInstance = { tags: [], meta: {} };
const instances = { v1, v2, canary, bare };

/** Which of the instances (by name) the expression selects. */
function selected(expression: string): string[] {
  const predicate = compileFilter(expression);
  return Object.entries(instances)
    .filter(([, instance]) => predicate(instance))
    .map(([name]) => name);
}

describe('compileFilter', () => {
  it.each([
    ['', ['v1', 'v2', 'canary', 'bare']],
    ['   ', ['v1', 'v2', 'canary', 'bare']],
    ['Service.Meta.version == v2', ['v2']],
    ['Service.Meta.version == "v2"', ['v2']],
    ['Service.Meta.version == `v2`', ['v2']],
    ['Service.Meta["version"] == v1', ['v1']],
    ['Service.Meta.version != v1', ['v2', 'canary', 'bare']],
    ['"v2" in Service.Tags', ['v2', 'canary']],
    ['v2 in Service.Tags', ['v2', 'canary']],
    ['"v2" not in Service.Tags', ['v1', 'bare']],
    ['Service.Tags contains canary', ['canary']],
    ['Service.Tags not contains canary', ['v1', 'v2', 'bare']],
    ['"team-id" in Service.Meta', ['v2']],
    ['Service.Meta contains version', ['v1', 'v2', 'canary']],
    ['"rc" in Service.Meta.version', ['canary']],
    ['Service.Meta.version contains "rc"', ['canary']],
    ['Service.Tags is empty', ['bare']],
    ['Service.Tags is not empty', ['v1', 'v2', 'canary']],
    ['Service.Meta is empty', ['bare']],
    ['Service.Meta.team is empty', ['v2', 'canary', 'bare']],
    ['Service.Meta.team is not empty', ['v1']],
    ['Service.Meta.team == "a b"', ['v1']],
    ['Service.Meta.version != v1 and not ("canary" in Service.Tags)', ['v2', 'bare']],
    ['Service.Meta.version == v1 or Service.Tags contains canary', ['v1', 'canary']],
    // and binds tighter than or
    [
      'Service.Meta.version == v1 or "v2" in Service.Tags and "canary" in Service.Tags',
      ['v1', 'canary'],
    ],
    [
      '(Service.Meta.version == v1 or "v2" in Service.Tags) and "canary" not in Service.Tags',
      ['v1', 'v2'],
    ],
    ['not not "v1" in Service.Tags', ['v1']],
    ['Service.Meta["team-id"] == "7"', ['v2']],
    ['Service.Meta.missing == ""', []],
    ['Service.Meta.missing != x', ['v1', 'v2', 'canary', 'bare']],
    ['Service.Meta.constructor is empty', ['v1', 'v2', 'canary', 'bare']],
    ['Service.Meta.toString contains "f"', []],
  ])('%s', (expression, expected) => {
    expect(selected(expression)).toEqual(expected);
  });

  it.each([
    [
      'Service.Meta.version ==',
      'expected a value after "==" at position 24, got end of expression',
    ],
    ['Service.Meta.version = v2', 'unexpected character "=" at position 22'],
    [
      'Service.Meta.version == v2 and',
      'expected a selector (Service.Tags or Service.Meta) at position 31, got end of expression',
    ],
    [
      'Service.Meta.version == v2 v3',
      'expected "and", "or" or the end of the expression at position 28, got "v3"',
    ],
    ['(Service.Tags is empty', 'expected ")" at position 23, got end of expression'],
    [
      'Service.Tags == v1',
      '"==" at position 14 compares one value, but Service.Tags is a collection (use contains, in or is empty)',
    ],
    [
      'Node.Meta.rack == r1',
      'unknown selector "Node.Meta.rack" at position 1 (lucid-mesh filters on Service.Tags, Service.Meta and Service.Meta.<key>)',
    ],
    [
      'Service.Meta.version like v2',
      'expected ==, !=, contains, not contains, is empty or is not empty after Service.Meta["version"] at position 22, got "like"',
    ],
    ['Service.Tags is full', 'expected "empty" or "not empty" at position 17, got "full"'],
    ['"v2" Service.Tags', 'expected "in" or "not in" at position 6, got "Service.Tags"'],
    ['Service.Meta.version == "v2', 'unterminated string at position 25'],
    ['Service.Meta.version == `v2', 'unterminated string at position 25'],
    [
      'Service.Meta[version] == v2',
      'expected a quoted key after "Service.Meta[" at position 14, got "version"',
    ],
    ['Service.Meta["version" == v2', 'expected "]" at position 24, got "=="'],
    ['and', 'expected a selector (Service.Tags or Service.Meta) at position 1, got "and"'],
  ])('rejects %j', (expression, message) => {
    let error: unknown;
    try {
      compileFilter(expression);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(FilterSyntaxError);
    expect((error as Error).message).toBe(message);
    expect((error as FilterSyntaxError).position).toBe(Number(/position (\d+)/.exec(message)?.[1]));
  });
});
