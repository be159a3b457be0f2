// Policy documents: what is accepted, how it is normalised, and that every rejection names the
// path and the value.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  PolicyDocumentError,
  PolicyValidationError,
  parsePolicy,
  parsePolicyText,
} from '../../src/policy/schema.js';

const examplePath = new URL('../../examples/policy.yaml', import.meta.url);

/** The problems parsePolicy reports for `doc` (fails the test if it is accepted). */
function problems(doc: unknown): readonly string[] {
  try {
    parsePolicy(doc);
  } catch (err) {
    if (err instanceof PolicyValidationError) return err.problems;
    throw err;
  }
  throw new Error(`accepted: ${JSON.stringify(doc)}`);
}

function textProblems(text: string, fileName = 'policy.yaml'): readonly string[] {
  try {
    parsePolicyText(text, fileName);
  } catch (err) {
    if (err instanceof PolicyDocumentError) {
      expect(err.message.startsWith(`${fileName}: `)).toBe(true);
      return err.problems;
    }
    throw err;
  }
  throw new Error(`accepted: ${text}`);
}

const minimal = { defaults: { action: 'deny' } };

describe('policy schema', () => {
  it('fills defaults and normalises (sorted maps and plane services)', () => {
    const policy = parsePolicy({
      planes: {
        wallet: { services: ['b', 'a'], isolation: 'isolated' },
        chain: { services: ['c'] },
      },
      defaults: { action: 'allow' },
      rules: [{ from: ['*'], to: ['plane:chain'], action: 'deny', name: 'closed' }],
      destinations: { z: { default: 'deny' }, a: { default: 'deny' } },
    });
    expect(policy).toEqual({
      trustDomain: 'lucid.internal',
      namespace: 'default',
      planes: {
        chain: { services: ['c'], isolation: 'open' },
        wallet: { services: ['a', 'b'], isolation: 'isolated' },
      },
      defaults: { action: 'allow' },
      rules: [{ from: ['*'], to: ['plane:chain'], action: 'deny', name: 'closed' }],
      destinations: { a: { default: 'deny' }, z: { default: 'deny' } },
    });
    expect(Object.keys(policy.planes)).toEqual(['chain', 'wallet']);
    expect(Object.keys(policy.destinations)).toEqual(['a', 'z']);
    expect(parsePolicy(minimal)).toEqual({
      trustDomain: 'lucid.internal',
      namespace: 'default',
      planes: {},
      defaults: { action: 'deny' },
      rules: [],
      destinations: {},
    });
  });

  it('has no undefined values (rules without a name carry no name key)', () => {
    const policy = parsePolicy({
      ...minimal,
      rules: [{ from: ['a'], to: ['b'], action: 'allow' }],
    });
    expect('name' in (policy.rules[0] ?? {})).toBe(false);
  });

  it('accepts the worked example', () => {
    const policy = parsePolicyText(readFileSync(examplePath, 'utf8'), 'examples/policy.yaml');
    expect(Object.keys(policy.planes)).toEqual(['chain', 'ops', 'wallet']);
    expect(policy.planes.wallet).toEqual({ services: ['tron-payment'], isolation: 'isolated' });
    expect(policy.defaults.action).toBe('deny');
  });

  it.each<[string, unknown, string]>([
    [
      'defaults missing',
      {},
      'defaults: required: { action: allow | deny }, the decision when no rule matches',
    ],
    ['not an object', 'allow', '(root): expected a policy document, got "allow"'],
    [
      'bad default action',
      { defaults: { action: 'permit' } },
      'defaults.action: expected one of allow | deny, got "permit"',
    ],
    [
      'unknown top-level key',
      { ...minimal, rule: [] },
      'rule: unknown key (expected trustDomain, namespace, planes, defaults, rules, destinations)',
    ],
    [
      'bad trust domain',
      { ...minimal, trustDomain: 'Lucid Internal' },
      `trustDomain: expected a trust domain (lowercase letters, digits, '.', '-', '_'), got "Lucid Internal"`,
    ],
    [
      'bad plane service',
      { ...minimal, planes: { ops: { services: ['Grafana'] } } },
      'planes.ops.services[0]: expected a service name (a DNS label: a-z, 0-9, -), got "Grafana"',
    ],
    [
      'empty plane',
      { ...minimal, planes: { ops: { services: [] } } },
      'planes.ops.services: expected at least one service, got []',
    ],
    [
      'plane without services',
      { ...minimal, planes: { ops: {} } },
      'planes.ops.services: expected a list of services, got nothing',
    ],
    [
      'bad isolation',
      { ...minimal, planes: { ops: { services: ['a'], isolation: 'closed' } } },
      'planes.ops.isolation: expected one of open | isolated, got "closed"',
    ],
    [
      'bad plane name',
      { ...minimal, planes: { Ops: { services: ['a'] } } },
      'planes.Ops: expected a plane name (a DNS label: a-z, 0-9, -), got "Ops"',
    ],
    [
      'duplicate service in a plane',
      { ...minimal, planes: { ops: { services: ['a', 'b', 'a'] } } },
      'planes.ops.services[2]: duplicate service "a" (also services[0])',
    ],
    [
      'empty from',
      { ...minimal, rules: [{ from: [], to: ['a'], action: 'allow' }] },
      'rules[0].from: expected at least one caller, got []',
    ],
    [
      'empty to',
      { ...minimal, rules: [{ from: ['a'], to: [], action: 'allow' }] },
      'rules[0].to: expected at least one destination, got []',
    ],
    [
      'from not a list',
      { ...minimal, rules: [{ from: 'a', to: ['b'], action: 'allow' }] },
      'rules[0].from: expected a list of callers, got "a"',
    ],
    [
      'bad selector',
      { ...minimal, rules: [{ from: ['a'], to: ['plane:'], action: 'allow' }] },
      'rules[0].to[0]: expected `*`, `plane:<name>` or a service name (a DNS label: a-z, 0-9, -), got "plane:"',
    ],
    [
      'missing action',
      { ...minimal, rules: [{ from: ['a'], to: ['b'] }] },
      'rules[0].action: expected one of allow | deny, got nothing',
    ],
    [
      'misspelt rule key',
      { ...minimal, rules: [{ from: ['a'], to: ['b'], action: 'allow', acton: 'deny' }] },
      'rules[0].acton: unknown key (expected from, to, action, name)',
    ],
    [
      'bad destination default',
      { ...minimal, destinations: { a: { default: 'maybe' } } },
      'destinations.a.default: expected one of allow | deny, got "maybe"',
    ],
    [
      'bad destination name',
      { ...minimal, destinations: { 'plane:x': { default: 'deny' } } },
      'destinations.plane:x: expected a service name (a DNS label: a-z, 0-9, -), got "plane:x"',
    ],
  ])('rejects: %s', (_what, doc, expected) => {
    expect(problems(doc)).toContain(expected);
  });

  it('rejects references to unknown planes, listing the defined ones', () => {
    expect(
      problems({
        ...minimal,
        planes: { ops: { services: ['a'] }, wallet: { services: ['b'] } },
        rules: [
          { from: ['plane:ops'], to: ['x'], action: 'allow' },
          { from: ['a'], to: ['b', 'plane:walet'], action: 'deny' },
        ],
      }),
    ).toEqual(['rules[1].to[1]: unknown plane "walet" (defined: ops, wallet)']);
    expect(
      problems({ ...minimal, rules: [{ from: ['plane:ops'], to: ['*'], action: 'allow' }] }),
    ).toEqual(['rules[0].from[0]: unknown plane "ops" (no planes are defined)']);
  });

  it('rejects a service in planes with conflicting isolation, but not agreeing ones', () => {
    expect(
      problems({
        ...minimal,
        planes: {
          chain: { services: ['x', 'shared'] },
          wallet: { services: ['shared'], isolation: 'isolated' },
        },
      }),
    ).toEqual([
      'planes.wallet.services[0]: "shared" is also in plane "chain" with isolation open, but plane "wallet" is isolated: a service\'s planes must agree on isolation',
    ]);
    expect(() =>
      parsePolicy({
        ...minimal,
        planes: { a: { services: ['shared'] }, b: { services: ['shared'] } },
      }),
    ).not.toThrow();
  });

  it('rejects default allow for an isolated destination', () => {
    expect(
      problems({
        ...minimal,
        planes: { wallet: { services: ['pay'], isolation: 'isolated' } },
        destinations: { pay: { default: 'allow' } },
      }),
    ).toEqual([
      'destinations.pay.default: "pay" is in isolated plane "wallet", which only admits callers an allow rule names; a default of allow contradicts that (remove it or the isolation)',
    ]);
  });

  it('rejects __proto__ as a plane or destination name instead of dropping it', () => {
    const doc = JSON.parse(
      '{"defaults": {"action": "deny"}, "planes": {"__proto__": {"services": ["a"]}}, "destinations": {"__proto__": {"default": "allow"}}}',
    ) as unknown;
    expect(problems(doc)).toEqual([
      'planes.__proto__: expected a plane name (a DNS label: a-z, 0-9, -), got "__proto__"',
      'destinations.__proto__: expected a service name (a DNS label: a-z, 0-9, -), got "__proto__"',
    ]);
  });

  it('reports every problem at once', () => {
    const found = problems({
      defaults: { action: 'x' },
      planes: { ops: { services: [] } },
      rules: [{ from: [], to: ['*'], action: 'allow' }],
    });
    expect(found).toHaveLength(3);
  });
});

describe('policy text', () => {
  it('reads YAML and JSON', () => {
    const yaml = 'defaults: { action: deny }\nrules:\n  - { from: [a], to: [b], action: allow }\n';
    const json = JSON.stringify({
      defaults: { action: 'deny' },
      rules: [{ from: ['a'], to: ['b'], action: 'allow' }],
    });
    expect(parsePolicyText(yaml, 'p.yaml')).toEqual(parsePolicyText(json, 'p.json'));
  });

  it('names the file and the path of schema problems', () => {
    expect(textProblems('defaults: { action: nope }\n')).toEqual([
      'defaults.action: expected one of allow | deny, got "nope"',
    ]);
  });

  it('rejects an empty document', () => {
    expect(textProblems('  \n')[0]).toMatch(/^the document is empty/);
    expect(textProblems('# only a comment\n')[0]).toMatch(/^the document is empty/);
  });

  it('gives line and column for YAML syntax errors', () => {
    expect(textProblems('defaults:\n  action: [deny\n')[0]).toMatch(/^line \d+, column \d+: /);
  });

  it('gives line and column for JSON syntax errors', () => {
    expect(textProblems('{\n  "defaults": {"action": "deny",}\n}', 'p.json')).toEqual([
      expect.stringMatching(/^line 2, column 33: invalid JSON: /),
    ]);
  });

  it('rejects duplicate plane names, naming the path (YAML)', () => {
    const text = [
      'defaults: { action: deny }',
      'planes:',
      '  ops: { services: [a] }',
      '  wallet: { services: [b] }',
      '  ops: { services: [c] }',
    ].join('\n');
    expect(textProblems(text)).toEqual(['planes.ops: duplicate plane name (also on line 3)']);
  });

  it('rejects duplicate plane names, naming the path (JSON)', () => {
    const text =
      '{"defaults": {"action": "deny"},\n "planes": {"ops": {"services": ["a"]},\n "ops": {"services": ["b"]}}}';
    expect(textProblems(text, 'p.json')).toEqual([
      'planes.ops: duplicate plane name (also on line 2)',
    ]);
  });

  it('rejects other duplicate keys anywhere', () => {
    const text =
      'defaults: { action: deny }\nrules:\n  - { from: [a], to: [b], action: allow, action: deny }\n';
    expect(textProblems(text)).toEqual(['rules[0].action: duplicate key (also on line 3)']);
  });
});
