// The reference semantics: decide() tables (rules in order, planes, isolation, defaults),
// explain(), allowedSources() and warnings.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  allowedSources,
  decide,
  decideForOthers,
  describeExplanation,
  explain,
  namedServices,
  policyWarnings,
} from '../../src/policy/evaluate.js';
import { parsePolicy, parsePolicyText, type Policy } from '../../src/policy/schema.js';

const example = parsePolicyText(
  readFileSync(new URL('../../examples/policy.yaml', import.meta.url), 'utf8'),
  'examples/policy.yaml',
);

type Row = [from: string, to: string, expected: 'allow' | 'deny'];

function expectTable(policy: Policy, rows: Row[]): void {
  const actual = rows.map(([from, to]) => [from, to, decide(policy, from, to)]);
  expect(actual).toEqual(rows);
}

describe('decide', () => {
  it('applies defaults.action when nothing matches', () => {
    expectTable(parsePolicy({ defaults: { action: 'allow' } }), [['a', 'b', 'allow']]);
    expectTable(parsePolicy({ defaults: { action: 'deny' } }), [['a', 'b', 'deny']]);
  });

  it('first matching rule wins, in document order', () => {
    const policy = parsePolicy({
      defaults: { action: 'allow' },
      rules: [
        { from: ['a'], to: ['b'], action: 'allow' },
        { from: ['*'], to: ['b'], action: 'deny' },
        { from: ['*'], to: ['*'], action: 'allow' },
      ],
    });
    expectTable(policy, [
      ['a', 'b', 'allow'],
      ['c', 'b', 'deny'],
      ['b', 'b', 'deny'],
      ['c', 'a', 'allow'],
    ]);
    const reversed = parsePolicy({
      defaults: { action: 'allow' },
      rules: [
        { from: ['*'], to: ['b'], action: 'deny' },
        { from: ['a'], to: ['b'], action: 'allow' },
      ],
    });
    expectTable(reversed, [['a', 'b', 'deny']]);
  });

  it('a rule needs both sides to match; lists are alternatives', () => {
    const policy = parsePolicy({
      defaults: { action: 'deny' },
      rules: [{ from: ['a', 'b'], to: ['c', 'd'], action: 'allow' }],
    });
    expectTable(policy, [
      ['a', 'c', 'allow'],
      ['b', 'd', 'allow'],
      ['a', 'a', 'deny'],
      ['c', 'd', 'deny'],
    ]);
  });

  it('destination defaults override defaults.action, rules override both', () => {
    const policy = parsePolicy({
      defaults: { action: 'deny' },
      rules: [{ from: ['x'], to: ['open'], action: 'deny' }],
      destinations: { open: { default: 'allow' }, closed: { default: 'deny' } },
    });
    expectTable(policy, [
      ['a', 'open', 'allow'],
      ['x', 'open', 'deny'],
      ['a', 'closed', 'deny'],
      ['a', 'other', 'deny'],
    ]);
  });

  it('plane selectors match members on either side', () => {
    const policy = parsePolicy({
      planes: { ops: { services: ['prom', 'graf'] }, chain: { services: ['blocks'] } },
      defaults: { action: 'deny' },
      rules: [
        { from: ['plane:ops'], to: ['plane:chain'], action: 'allow' },
        { from: ['blocks'], to: ['plane:ops'], action: 'allow' },
      ],
    });
    expectTable(policy, [
      ['prom', 'blocks', 'allow'],
      ['graf', 'blocks', 'allow'],
      ['web', 'blocks', 'deny'],
      ['blocks', 'prom', 'allow'],
      ['blocks', 'graf', 'allow'],
      ['prom', 'graf', 'deny'],
    ]);
  });

  it('service and plane names that are Object.prototype keys are just names', () => {
    const policy = parsePolicy({
      defaults: { action: 'allow' },
      destinations: { x: { default: 'deny' } },
    });
    expectTable(policy, [
      ['a', 'constructor', 'allow'],
      ['constructor', 'x', 'deny'],
    ]);
    expect(() =>
      parsePolicy({
        defaults: { action: 'allow' },
        rules: [{ from: ['plane:constructor'], to: ['*'], action: 'deny' }],
      }),
    ).toThrow(/unknown plane "constructor"/);
  });

  it('open planes follow rules and defaults as written', () => {
    const policy = parsePolicy({
      planes: { chain: { services: ['blocks'], isolation: 'open' } },
      defaults: { action: 'allow' },
      rules: [{ from: ['*'], to: ['*'], action: 'allow' }],
    });
    expectTable(policy, [['anyone', 'blocks', 'allow']]);
  });

  describe('isolated planes', () => {
    const policy = parsePolicy({
      planes: {
        ops: { services: ['prom'] },
        wallet: { services: ['pay', 'ledger'], isolation: 'isolated' },
      },
      defaults: { action: 'allow' },
      rules: [
        { from: ['*'], to: ['plane:wallet'], action: 'allow' }, // * caller: skipped
        { from: ['plane:ops'], to: ['*'], action: 'allow' }, // * destination: skipped
        { from: ['gw'], to: ['pay'], action: 'allow' }, // names both: counts
        { from: ['plane:ops'], to: ['plane:wallet'], action: 'deny' },
        { from: ['plane:wallet'], to: ['plane:wallet'], action: 'allow' },
        { from: ['*'], to: ['ledger'], action: 'deny' },
        { from: ['auditor'], to: ['ledger'], action: 'allow' },
      ],
    });

    it('admits only callers an allow rule names, never through "*"', () => {
      expectTable(policy, [
        ['gw', 'pay', 'allow'],
        ['gw', 'ledger', 'deny'],
        ['web', 'pay', 'deny'],
        ['prom', 'pay', 'deny'],
        ['pay', 'ledger', 'allow'],
        ['ledger', 'pay', 'allow'],
        ['pay', 'pay', 'allow'],
      ]);
    });

    it('deny rules with "*" still count (first match wins)', () => {
      // rules[5] denies everyone before rules[6] would allow auditor.
      expectTable(policy, [['auditor', 'ledger', 'deny']]);
    });

    it('ignores defaults.action (allow here) for isolated destinations', () => {
      expect(policy.defaults.action).toBe('allow');
      expectTable(policy, [['nobody', 'pay', 'deny']]);
      expect(decideForOthers(policy, 'pay')).toBe('deny');
    });

    it('does not restrict what isolated services call', () => {
      expectTable(policy, [
        ['pay', 'web', 'allow'],
        ['pay', 'prom', 'allow'],
      ]);
    });

    it('explains skipped rules and the isolation decision', () => {
      const e = explain(policy, 'web', 'pay');
      expect(e).toEqual({
        decision: 'deny',
        by: { kind: 'isolation', planes: ['wallet'] },
        skipped: [0],
      });
      const p = explain(policy, 'prom', 'pay');
      expect(p).toEqual({ decision: 'deny', by: { kind: 'rule', index: 3 }, skipped: [0, 1] });
    });
  });

  it('the worked example (examples/policy.yaml)', () => {
    expectTable(example, [
      // The wallet plane: only the gateway (payments) and prometheus (metrics).
      ['api-gateway', 'tron-payment', 'allow'],
      ['prometheus', 'tron-payment', 'allow'],
      ['grafana', 'tron-payment', 'deny'],
      ['lucid-blocks', 'tron-payment', 'deny'],
      ['web', 'tron-payment', 'deny'],
      // The chain plane.
      ['tron-payment', 'lucid-blocks', 'allow'],
      ['api-gateway', 'lucid-blocks', 'allow'],
      ['prometheus', 'lucid-blocks', 'allow'],
      ['grafana', 'lucid-blocks', 'deny'],
      ['web', 'lucid-blocks', 'deny'],
      // Ops may call the open services; others may not call ops.
      ['grafana', 'prometheus', 'allow'],
      ['prometheus', 'web', 'allow'],
      ['web', 'grafana', 'deny'],
      // The front door.
      ['web', 'api-gateway', 'allow'],
      ['tron-payment', 'api-gateway', 'allow'],
    ]);
  });
});

describe('explain', () => {
  it('names the deciding rule, or the default', () => {
    expect(explain(example, 'grafana', 'lucid-blocks')).toEqual({
      decision: 'deny',
      by: { kind: 'rule', index: 2 },
      skipped: [],
    });
    expect(explain(example, 'web', 'api-gateway').by).toEqual({ kind: 'destination-default' });
    expect(explain(example, 'web', 'grafana').by).toEqual({ kind: 'default' });
  });

  it('describes decisions in words', () => {
    expect(
      describeExplanation(
        example,
        'grafana',
        'lucid-blocks',
        explain(example, 'grafana', 'lucid-blocks'),
      ),
    ).toEqual([
      'deny: grafana → lucid-blocks',
      'decided by rules[2]: from [grafana] to [plane:chain]: deny (dashboards-off-chain)',
    ]);
    expect(
      describeExplanation(
        example,
        'grafana',
        'tron-payment',
        explain(example, 'grafana', 'tron-payment'),
      ),
    ).toEqual([
      'deny: grafana → tron-payment',
      'decided by isolation: tron-payment is in isolated plane wallet and no allow rule names both grafana and tron-payment',
      'skipped rules[3] (from [plane:ops] to [*]: allow (ops-observes)): it matches only through "*", which never opens an isolated plane',
    ]);
  });
});

describe('allowedSources', () => {
  it('lists the allowed exceptions when others are denied', () => {
    expect(allowedSources(example, 'tron-payment', ['web'])).toEqual({
      destination: 'tron-payment',
      others: 'deny',
      allowed: ['api-gateway', 'prometheus'],
      denied: [],
    });
  });

  it('lists the denied exceptions when others are allowed', () => {
    const policy = parsePolicy({
      defaults: { action: 'allow' },
      rules: [{ from: ['a', 'b'], to: ['t'], action: 'deny' }],
    });
    expect(allowedSources(policy, 't', ['c'])).toEqual({
      destination: 't',
      others: 'allow',
      allowed: [],
      denied: ['a', 'b'],
    });
  });

  it('partitions every service consistently with decide', () => {
    const services = [...namedServices(example), 'web', 'unknown-1'];
    for (const to of services) {
      const s = allowedSources(example, to, ['web']);
      for (const from of services) {
        const expected = s.allowed.includes(from)
          ? 'allow'
          : s.denied.includes(from)
            ? 'deny'
            : s.others;
        expect(decide(example, from, to), `${from} → ${to}`).toBe(expected);
      }
    }
  });
});

describe('policyWarnings', () => {
  it('warns about "*"-only allow rules aimed at isolated destinations', () => {
    const policy = parsePolicy({
      planes: { wallet: { services: ['pay'], isolation: 'isolated' } },
      defaults: { action: 'deny' },
      rules: [
        { from: ['*'], to: ['plane:wallet', 'web'], action: 'allow' },
        { from: ['*'], to: ['pay'], action: 'allow' },
        { from: ['gw', '*'], to: ['pay'], action: 'allow' },
        { from: ['*'], to: ['pay'], action: 'deny' },
      ],
    });
    expect(policyWarnings(policy)).toEqual([
      'rules[0]: allows callers only through "*", which never opens isolated plane:wallet; name the callers (services or planes)',
      'rules[1]: allows callers only through "*", which never opens isolated pay; name the callers (services or planes)',
    ]);
  });

  it('with known services, warns about names the catalog lacks', () => {
    expect(
      policyWarnings(example, ['api-gateway', 'lucid-blocks', 'tron-payment', 'prometheus']),
    ).toEqual([
      'planes.ops.services: service "grafana" is not in the catalog',
      'rules[2].from[0]: service "grafana" is not in the catalog',
    ]);
    expect(policyWarnings(example)).toEqual([]);
  });
});
