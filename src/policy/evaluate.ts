// The reference semantics of a policy: may service `from` call service `to`?
//
// 1. Rules are tried in order; the first rule whose `from` matches the caller and whose `to`
//    matches the destination decides (its action).
//    A selector matches: `*` anything; `plane:p` a member of plane p; a name that service.
// 2. If the destination is in an isolated plane, an allow rule only counts when it names the
//    caller (by service or plane) *and* the destination (by service or plane): a match that
//    relies on `*` on either side is skipped and evaluation continues with the next rule. Deny
//    rules always count. When no rule decides, an isolated destination is denied.
// 3. Otherwise, with no matching rule: `destinations.<to>.default`, else `defaults.action`.
//
// Callers the policy never names (not in a plane, a rule or `destinations`) all get the same
// answer for a given destination: only `*` selectors match them. allowedSources() relies on this
// to describe the callers of a destination as a finite list plus a decision for "everyone else",
// which rbac.ts compiles to Envoy RBAC.
import { parseSelector, type Action, type Policy, type Rule } from './schema.js';

export type Decision = Action;

/** What decided a call. */
export type DecidedBy =
  /** policy.rules[index] matched. */
  | { readonly kind: 'rule'; readonly index: number }
  /** No rule matched and the destination is in these isolated planes: deny. */
  | { readonly kind: 'isolation'; readonly planes: readonly string[] }
  /** No rule matched: destinations.<to>.default. */
  | { readonly kind: 'destination-default' }
  /** No rule matched: defaults.action. */
  | { readonly kind: 'default' };

export interface Explanation {
  readonly decision: Decision;
  readonly by: DecidedBy;
  /**
   * Indexes of allow rules that matched only through `*` and were skipped because the
   * destination is isolated (in order).
   */
  readonly skipped: readonly number[];
}

/** A caller: a named service, or "someone the policy does not name" (matches only `*`). */
type Caller = { readonly service: string } | { readonly other: true };

interface Index {
  /** Service → planes it belongs to (sorted). */
  readonly planesOf: ReadonlyMap<string, readonly string[]>;
  /** Isolated plane names. */
  readonly isolated: ReadonlySet<string>;
  /** Every service name the policy mentions, sorted. */
  readonly named: readonly string[];
}

const indexes = new WeakMap<Policy, Index>();

function indexOf(policy: Policy): Index {
  let index = indexes.get(policy);
  if (index) return index;
  const planesOf = new Map<string, string[]>();
  const isolated = new Set<string>();
  const named = new Set<string>();
  for (const [plane, def] of Object.entries(policy.planes)) {
    if (def.isolation === 'isolated') isolated.add(plane);
    for (const service of def.services) {
      named.add(service);
      const list = planesOf.get(service) ?? [];
      list.push(plane);
      planesOf.set(service, list);
    }
  }
  for (const rule of policy.rules) {
    for (const sel of [...rule.from, ...rule.to]) {
      const parsed = parseSelector(sel);
      if (parsed.kind === 'service') named.add(parsed.service);
    }
  }
  for (const service of Object.keys(policy.destinations)) named.add(service);
  for (const list of planesOf.values()) list.sort();
  index = { planesOf, isolated, named: [...named].sort() };
  indexes.set(policy, index);
  return index;
}

/** 'named': a selector names the subject (service or plane); 'wildcard': only `*` matches. */
type Match = 'named' | 'wildcard' | undefined;

function match(selectors: readonly string[], subject: Caller, index: Index): Match {
  let result: Match;
  for (const text of selectors) {
    const sel = parseSelector(text);
    if (sel.kind === 'any') result = 'wildcard';
    else if ('service' in subject) {
      if (sel.kind === 'service' && sel.service === subject.service) return 'named';
      if (sel.kind === 'plane' && index.planesOf.get(subject.service)?.includes(sel.plane)) {
        return 'named';
      }
    }
  }
  return result;
}

function evaluate(policy: Policy, from: Caller, to: string): Explanation {
  const index = indexOf(policy);
  const isolatedPlanes = (index.planesOf.get(to) ?? []).filter((p) => index.isolated.has(p));
  const isolated = isolatedPlanes.length > 0;
  const skipped: number[] = [];
  const dest: Caller = { service: to };
  for (let i = 0; i < policy.rules.length; i++) {
    const rule = policy.rules[i] as Rule;
    const fromMatch = match(rule.from, from, index);
    if (!fromMatch) continue;
    const toMatch = match(rule.to, dest, index);
    if (!toMatch) continue;
    if (
      isolated &&
      rule.action === 'allow' &&
      (fromMatch === 'wildcard' || toMatch === 'wildcard')
    ) {
      skipped.push(i);
      continue;
    }
    return { decision: rule.action, by: { kind: 'rule', index: i }, skipped };
  }
  if (isolated)
    return { decision: 'deny', by: { kind: 'isolation', planes: isolatedPlanes }, skipped };
  const own = Object.hasOwn(policy.destinations, to) ? policy.destinations[to] : undefined;
  if (own) return { decision: own.default, by: { kind: 'destination-default' }, skipped };
  return { decision: policy.defaults.action, by: { kind: 'default' }, skipped };
}

/** May service `from` call service `to`? The reference semantics the RBAC compiler must equal. */
export function decide(policy: Policy, from: string, to: string): Decision {
  return evaluate(policy, { service: from }, to).decision;
}

/** decide() with the reason: which rule (or default) decided, and which rules isolation skipped. */
export function explain(policy: Policy, from: string, to: string): Explanation {
  return evaluate(policy, { service: from }, to);
}

/** The decision for a caller the policy does not name at all (only `*` selectors match it). */
export function decideForOthers(policy: Policy, to: string): Decision {
  return evaluate(policy, { other: true }, to).decision;
}

/** Every service name the policy mentions (planes, rules, destinations), sorted. */
export function namedServices(policy: Policy): readonly string[] {
  return indexOf(policy).named;
}

/** Isolated planes `service` belongs to (sorted; empty when it is not isolated). */
export function isolatedPlanesOf(policy: Policy, service: string): readonly string[] {
  const index = indexOf(policy);
  return (index.planesOf.get(service) ?? []).filter((p) => index.isolated.has(p));
}

/** Who may call one destination, as the RBAC compiler needs it. */
export interface AllowedSources {
  readonly destination: string;
  /**
   * The decision for every caller not listed below: services neither named by the policy nor
   * in `allServices`, and listed services that get this decision anyway are left out.
   */
  readonly others: Decision;
  /** Named callers allowed although others are denied (sorted; empty when others = allow). */
  readonly allowed: readonly string[];
  /** Named callers denied although others are allowed (sorted; empty when others = deny). */
  readonly denied: readonly string[];
}

/**
 * Partitions the callers of `destination`. For any service s:
 *   decide(policy, s, destination) === (allowed.includes(s) ? 'allow' : denied.includes(s) ? 'deny' : others)
 * `allServices` (typically the catalog's services) are evaluated individually along with every
 * service the policy names; any other caller gets `others`.
 */
export function allowedSources(
  policy: Policy,
  destination: string,
  allServices: Iterable<string> = [],
): AllowedSources {
  const others = decideForOthers(policy, destination);
  const candidates = new Set<string>([...namedServices(policy), ...allServices, destination]);
  const exceptions: string[] = [];
  for (const service of [...candidates].sort()) {
    if (decide(policy, service, destination) !== others) exceptions.push(service);
  }
  return {
    destination,
    others,
    allowed: others === 'deny' ? exceptions : [],
    denied: others === 'allow' ? exceptions : [],
  };
}

/** A rule as one line, e.g. `from [api-gateway] to [plane:wallet]: allow`. */
export function formatRule(rule: Rule): string {
  const label = rule.name === undefined ? '' : ` (${rule.name})`;
  return `from [${rule.from.join(', ')}] to [${rule.to.join(', ')}]: ${rule.action}${label}`;
}

/** A human explanation of a decision, one line per fact, first line `allow` or `deny`. */
export function describeExplanation(
  policy: Policy,
  from: string,
  to: string,
  e: Explanation,
): string[] {
  const lines = [`${e.decision}: ${from} → ${to}`];
  switch (e.by.kind) {
    case 'rule':
      lines.push(
        `decided by rules[${e.by.index}]: ${formatRule(policy.rules[e.by.index] as Rule)}`,
      );
      break;
    case 'isolation':
      lines.push(
        `decided by isolation: ${to} is in isolated plane${e.by.planes.length > 1 ? 's' : ''} ` +
          `${e.by.planes.join(', ')} and no allow rule names both ${from} and ${to}`,
      );
      break;
    case 'destination-default':
      lines.push(`decided by destinations.${to}.default: no rule matched`);
      break;
    case 'default':
      lines.push('decided by defaults.action: no rule matched');
      break;
  }
  for (const i of e.skipped) {
    lines.push(
      `skipped rules[${i}] (${formatRule(policy.rules[i] as Rule)}): it matches only through "*", ` +
        `which never opens an isolated plane`,
    );
  }
  return lines;
}

/**
 * Things that are valid but probably not meant, one line each naming the path:
 * - an allow rule that names an isolated destination but only `*` as callers (it can never let
 *   a call into that destination);
 * - with `knownServices` (e.g. the catalog's), service names the policy uses that are not
 *   known: often a typo, which silently matches nobody.
 */
export function policyWarnings(policy: Policy, knownServices?: Iterable<string>): string[] {
  const warnings: string[] = [];
  const index = indexOf(policy);
  policy.rules.forEach((rule, ri) => {
    if (rule.action !== 'allow') return;
    if (rule.from.some((s) => parseSelector(s).kind !== 'any')) return;
    const isolatedTargets = new Set<string>();
    for (const text of rule.to) {
      const sel = parseSelector(text);
      if (sel.kind === 'plane' && index.isolated.has(sel.plane)) isolatedTargets.add(text);
      if (sel.kind === 'service' && isolatedPlanesOf(policy, sel.service).length > 0) {
        isolatedTargets.add(text);
      }
    }
    if (isolatedTargets.size > 0) {
      warnings.push(
        `rules[${ri}]: allows callers only through "*", which never opens isolated ` +
          `${[...isolatedTargets].join(', ')}; name the callers (services or planes)`,
      );
    }
  });
  if (knownServices !== undefined) {
    const known = new Set(knownServices);
    const unknown = (where: string, service: string) => {
      if (!known.has(service))
        warnings.push(`${where}: service "${service}" is not in the catalog`);
    };
    for (const [plane, def] of Object.entries(policy.planes)) {
      def.services.forEach((s) => unknown(`planes.${plane}.services`, s));
    }
    policy.rules.forEach((rule, ri) => {
      for (const side of ['from', 'to'] as const) {
        rule[side].forEach((text, si) => {
          const sel = parseSelector(text);
          if (sel.kind === 'service') unknown(`rules[${ri}].${side}[${si}]`, sel.service);
        });
      }
    });
    for (const service of Object.keys(policy.destinations)) {
      unknown(`destinations.${service}`, service);
    }
  }
  return warnings;
}
