// The authorization policy document (YAML or JSON): who may call whom, as allow/deny rules between
// services and "planes" (named groups of services). Validated with zod; every problem names the
// path and the offending value, e.g.
//   rules[1].to[0]: unknown plane "walet" (defined: chain, ops, wallet)
//   planes.ops.services: expected at least one service, got []
//
//   trustDomain: lucid.internal      # optional; callers are identified by their SPIFFE ID
//   namespace: default               # optional; spiffe://<trustDomain>/ns/<namespace>/svc/<service>
//   planes:                          # optional; named groups of services
//     ops:    { services: [prometheus, grafana] }
//     chain:  { services: [lucid-blocks], isolation: open }
//     wallet: { services: [tron-payment], isolation: isolated }
//   defaults: { action: deny }       # required: the decision when no rule matches
//   rules:                           # optional; first match wins, in order
//     - { from: [api-gateway], to: [plane:wallet], action: allow }
//   destinations:                    # optional; per destination, overrides defaults.action
//     lucid-blocks: { default: allow }
//
// The semantics (first match, isolation) live in evaluate.ts; docs/policy.md is the user guide.
import { LineCounter, isMap, isPair, isScalar, isSeq, parseDocument, type Node } from 'yaml';
import { z } from 'zod';
import {
  nestingProblem,
  DocumentError,
  findJsonErrorOffset,
  isJsonFile,
} from '../catalog/load-document.js';
import { formatPath, show } from '../catalog/schema.js';

export const ACTIONS = ['allow', 'deny'] as const;
export type Action = (typeof ACTIONS)[number];

export const ISOLATIONS = ['open', 'isolated'] as const;
/**
 * open: the rules and defaults apply as written. isolated: only an allow rule that names both the
 * caller (service or plane) and the destination (service or plane) lets a call in; `*` never
 * does, and without such a rule the call is denied whatever the defaults say.
 */
export type Isolation = (typeof ISOLATIONS)[number];

export interface Plane {
  /** Sorted, unique, at least one. */
  readonly services: readonly string[];
  readonly isolation: Isolation;
}

export interface Rule {
  /** Callers: `*`, `plane:<name>` or a service name. At least one. */
  readonly from: readonly string[];
  /** Destinations: `*`, `plane:<name>` or a service name. At least one. */
  readonly to: readonly string[];
  readonly action: Action;
  /** Optional label, shown by `lucid-mesh policy explain`. */
  readonly name?: string;
}

export interface DestinationPolicy {
  /** The decision for this destination when no rule matches (instead of defaults.action). */
  readonly default: Action;
}

/** A validated policy. Maps are keyed in sorted order so equal policies stringify equally. */
export interface Policy {
  readonly trustDomain: string;
  readonly namespace: string;
  readonly planes: Readonly<Record<string, Plane>>;
  readonly defaults: { readonly action: Action };
  /** In document order: the first rule that matches decides. */
  readonly rules: readonly Rule[];
  readonly destinations: Readonly<Record<string, DestinationPolicy>>;
}

export const DEFAULT_TRUST_DOMAIN = 'lucid.internal';
export const DEFAULT_NAMESPACE = 'default';

/** A service or plane name: a DNS label, like catalog service names. */
const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** SPIFFE trust domain characters (lowercase letters, digits, `.`, `-`, `_`). */
const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;
export const PLANE_PREFIX = 'plane:';
const NAME_HINT = 'a DNS label: a-z, 0-9, -';

export type Selector =
  | { readonly kind: 'any' }
  | { readonly kind: 'plane'; readonly plane: string }
  | { readonly kind: 'service'; readonly service: string };

/** `*` → any, `plane:x` → plane x, anything else → service. Call on validated selectors. */
export function parseSelector(text: string): Selector {
  if (text === '*') return { kind: 'any' };
  if (text.startsWith(PLANE_PREFIX))
    return { kind: 'plane', plane: text.slice(PLANE_PREFIX.length) };
  return { kind: 'service', service: text };
}

export function isServiceName(text: string): boolean {
  return NAME.test(text);
}

/**
 * The policy document schema, built on first use: zod schemas are objects built when their
 * module runs, and a control plane without a policy never parses one (issue 16, idle RSS).
 */
function buildPolicySchema() {
  const str = (what: string) =>
    z.string({ error: (i) => `expected ${what}, got ${show(i.input)}` });

  const serviceName = str(`a service name (${NAME_HINT})`).regex(NAME, {
    error: (i) => `expected a service name (${NAME_HINT}), got ${show(i.input)}`,
  });

  function oneOf<T extends readonly [string, ...string[]]>(values: T) {
    return z.enum(values, {
      error: (i) => `expected one of ${values.join(' | ')}, got ${show(i.input)}`,
    });
  }

  /** A strict object whose unknown keys are reported one by one (see formatPolicyIssues). */
  function strictObject<T extends z.core.$ZodLooseShape>(shape: T, what: string) {
    return z.strictObject(shape, {
      error: (i) =>
        i.code === 'unrecognized_keys'
          ? `unknown key (expected ${Object.keys(shape).join(', ')})`
          : `expected ${what}, got ${show(i.input)}`,
    });
  }

  function nonEmptyList<T extends z.ZodType>(item: T, what: string) {
    return z
      .array(item, { error: (i) => `expected a list of ${what}, got ${show(i.input)}` })
      .min(1, {
        error: (i) => `expected at least one ${what.replace(/s$/, '')}, got ${show(i.input)}`,
      });
  }

  const selector = str('`*`, `plane:<name>` or a service name').refine(
    (s) =>
      s === '*' ||
      (s.startsWith(PLANE_PREFIX) ? NAME.test(s.slice(PLANE_PREFIX.length)) : NAME.test(s)),
    {
      error: (i) =>
        `expected \`*\`, \`plane:<name>\` or a service name (${NAME_HINT}), got ${show(i.input)}`,
    },
  );

  const action = oneOf(ACTIONS);

  const planeSchema = strictObject(
    {
      services: nonEmptyList(serviceName, 'services'),
      isolation: oneOf(ISOLATIONS).default('open'),
    },
    'a plane ({ services: [...], isolation: open | isolated })',
  );

  const ruleSchema = strictObject(
    {
      from: nonEmptyList(selector, 'callers'),
      to: nonEmptyList(selector, 'destinations'),
      action,
      name: str('a string').optional(),
    },
    'a rule ({ from: [...], to: [...], action: allow | deny })',
  );

  const destinationSchema = strictObject(
    { default: action },
    'a destination policy ({ default: allow | deny })',
  );

  function record<T extends z.ZodType>(value: T, what: string) {
    return z.record(z.string(), value, {
      error: (i) => `expected a mapping of ${what}, got ${show(i.input)}`,
    });
  }

  return strictObject(
    {
      trustDomain: str('a trust domain')
        .regex(TRUST_DOMAIN, {
          error: (i) =>
            `expected a trust domain (lowercase letters, digits, '.', '-', '_'), got ${show(i.input)}`,
        })
        .default(DEFAULT_TRUST_DOMAIN),
      namespace: str(`a namespace (${NAME_HINT})`)
        .regex(NAME, { error: (i) => `expected a namespace (${NAME_HINT}), got ${show(i.input)}` })
        .default(DEFAULT_NAMESPACE),
      planes: record(planeSchema, 'plane names to planes').default({}),
      defaults: z.strictObject(
        { action },
        {
          error: (i) =>
            i.code === 'unrecognized_keys'
              ? 'unknown key (expected action)'
              : i.input === undefined
                ? 'required: { action: allow | deny }, the decision when no rule matches'
                : `expected { action: allow | deny }, got ${show(i.input)}`,
        },
      ),
      rules: z
        .array(ruleSchema, { error: (i) => `expected a list of rules, got ${show(i.input)}` })
        .default([]),
      destinations: record(destinationSchema, 'service names to { default: allow | deny }').default(
        {},
      ),
    },
    'a policy document',
  ).superRefine((doc, ctx) => {
    const issue = (path: PropertyKey[], message: string) =>
      ctx.addIssue({ code: 'custom', path, message });
    const planeNames = Object.keys(doc.planes).sort();

    // Plane names; services unique within a plane; a service's planes agree on isolation.
    const isolationOf = new Map<string, { plane: string; isolation: Isolation }>();
    for (const [plane, def] of Object.entries(doc.planes)) {
      if (!NAME.test(plane)) {
        issue(['planes', plane], `expected a plane name (${NAME_HINT}), got ${show(plane)}`);
      }
      const seen = new Map<string, number>();
      def.services.forEach((service, i) => {
        const prev = seen.get(service);
        if (prev !== undefined) {
          issue(
            ['planes', plane, 'services', i],
            `duplicate service ${show(service)} (also services[${prev}])`,
          );
          return;
        }
        seen.set(service, i);
        const other = isolationOf.get(service);
        if (other && other.isolation !== def.isolation) {
          issue(
            ['planes', plane, 'services', i],
            `${show(service)} is also in plane ${show(other.plane)} with isolation ${other.isolation}, ` +
              `but plane ${show(plane)} is ${def.isolation}: a service's planes must agree on isolation`,
          );
        } else if (!other) {
          isolationOf.set(service, { plane, isolation: def.isolation });
        }
      });
    }

    // Plane references in rules.
    doc.rules.forEach((rule, ri) => {
      for (const side of ['from', 'to'] as const) {
        rule[side].forEach((sel, si) => {
          const parsed = parseSelector(sel);
          if (
            parsed.kind === 'plane' &&
            NAME.test(parsed.plane) &&
            !Object.hasOwn(doc.planes, parsed.plane)
          ) {
            issue(
              ['rules', ri, side, si],
              `unknown plane ${show(parsed.plane)} (${
                planeNames.length ? `defined: ${planeNames.join(', ')}` : 'no planes are defined'
              })`,
            );
          }
        });
      }
    });

    // Destination defaults: valid names; an isolated service cannot default to allow.
    for (const [service, def] of Object.entries(doc.destinations)) {
      if (!NAME.test(service)) {
        issue(
          ['destinations', service],
          `expected a service name (${NAME_HINT}), got ${show(service)}`,
        );
        continue;
      }
      const iso = isolationOf.get(service);
      if (def.default === 'allow' && iso?.isolation === 'isolated') {
        issue(
          ['destinations', service, 'default'],
          `${show(service)} is in isolated plane ${show(iso.plane)}, which only admits callers an ` +
            `allow rule names; a default of allow contradicts that (remove it or the isolation)`,
        );
      }
    }
  });
}

let builtSchema: ReturnType<typeof buildPolicySchema> | undefined;

/** The one policy schema (memoised). */
function policySchema(): ReturnType<typeof buildPolicySchema> {
  return (builtSchema ??= buildPolicySchema());
}

export class PolicyValidationError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.join('; '));
    this.name = 'PolicyValidationError';
  }
}

/** One line per problem, `path: message`; unknown keys are reported at their own path. */
export function formatPolicyIssues(error: z.ZodError): string[] {
  return error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => `${formatPath([...issue.path, key])}: ${issue.message}`)
      : [`${formatPath(issue.path)}: ${issue.message}`],
  );
}

/** Validates a parsed document (JSON/YAML value) and returns the normalised policy. */
export function parsePolicy(document: unknown): Policy {
  // zod drops an own `__proto__` key while copying a record; report it instead of losing it.
  const doc0 = document as Record<string, unknown> | null;
  const protoKeys = (['planes', 'destinations'] as const).filter((k) => {
    const map = typeof doc0 === 'object' && doc0 !== null ? doc0[k] : undefined;
    return typeof map === 'object' && map !== null && Object.hasOwn(map, '__proto__');
  });
  if (protoKeys.length > 0) {
    throw new PolicyValidationError(
      protoKeys.map(
        (k) =>
          `${k}.__proto__: expected a ${k === 'planes' ? 'plane' : 'service'} name (${NAME_HINT}), got "__proto__"`,
      ),
    );
  }
  const result = policySchema().safeParse(document);
  if (!result.success) throw new PolicyValidationError(formatPolicyIssues(result.error));
  const doc = result.data;
  const sortedEntries = <T, U>(o: Record<string, T>, f: (v: T) => U): Record<string, U> =>
    Object.fromEntries(
      Object.keys(o)
        .sort()
        .map((k) => [k, f(o[k] as T)]),
    );
  return {
    trustDomain: doc.trustDomain,
    namespace: doc.namespace,
    planes: sortedEntries(doc.planes, (p) => ({
      services: [...p.services].sort(),
      isolation: p.isolation,
    })),
    defaults: { action: doc.defaults.action },
    rules: doc.rules.map((r) => ({
      from: [...r.from],
      to: [...r.to],
      action: r.action,
      ...(r.name === undefined ? {} : { name: r.name }),
    })),
    destinations: sortedEntries(doc.destinations, (d) => ({ default: d.default })),
  };
}

export class PolicyDocumentError extends DocumentError {
  override readonly name: string = 'PolicyDocumentError';
}

/**
 * Parses and validates policy text. `fileName` picks the syntax (`.json` → JSON, anything else
 * → YAML, which also reads JSON) and prefixes every error. Duplicate keys are errors naming the
 * path (e.g. two planes called `ops`), in JSON too.
 * @throws PolicyDocumentError
 */
export function parsePolicyText(text: string, fileName: string): Policy {
  const empty = () =>
    new PolicyDocumentError(fileName, [
      'the document is empty (a policy needs at least `defaults: { action: allow | deny }`)',
    ]);
  if (text.trim() === '') throw empty();
  const tooDeep = nestingProblem(text);
  if (tooDeep) throw new PolicyDocumentError(fileName, [tooDeep]);
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
  const lineOf = (offset: number) => lineCounter.linePos(offset).line;
  let value: unknown;
  if (isJsonFile(fileName)) {
    // JSON.parse is the authority on JSON; the YAML reading (JSON is YAML) only finds duplicate
    // keys, which JSON.parse silently collapses.
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new PolicyDocumentError(fileName, [jsonProblem(text, err)], { cause: err });
    }
    const duplicates = doc.errors.length === 0 ? duplicateKeys(doc.contents, [], lineOf) : [];
    if (duplicates.length > 0) throw new PolicyDocumentError(fileName, duplicates);
  } else {
    if (doc.errors.length > 0) {
      const problems = doc.errors.map((e) => {
        const { line, col } = lineCounter.linePos(e.pos[0]);
        return `line ${line}, column ${col}: ${e.message}`;
      });
      throw new PolicyDocumentError(fileName, problems, { cause: doc.errors[0] });
    }
    const duplicates = duplicateKeys(doc.contents, [], lineOf);
    if (duplicates.length > 0) throw new PolicyDocumentError(fileName, duplicates);
    try {
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (err) {
      throw new PolicyDocumentError(fileName, [(err as Error).message], { cause: err });
    }
  }
  if (value === null || value === undefined) throw empty();
  try {
    return parsePolicy(value);
  } catch (err) {
    if (err instanceof PolicyValidationError) {
      throw new PolicyDocumentError(fileName, err.problems, { cause: err });
    }
    throw err;
  }
}

function jsonProblem(text: string, err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const position = /at position (\d+)/.exec(message);
  const offset = position ? Number(position[1]) : findJsonErrorOffset(text);
  const detail = message.replace(/ at position \d+/, '').replace(/\s*\(line \d+ column \d+\)$/, '');
  if (offset === undefined) return `invalid JSON: ${detail}`;
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      lineStart = i + 1;
    }
  }
  return `line ${line}, column ${offset - lineStart + 1}: invalid JSON: ${detail}`;
}

/** Finds keys that occur twice in one mapping, anywhere in the document. */
function duplicateKeys(
  node: unknown,
  path: PropertyKey[],
  lineOf: (offset: number) => number,
): string[] {
  const out: string[] = [];
  if (isMap(node)) {
    const seen = new Map<string, number>();
    for (const pair of node.items) {
      if (!isPair(pair)) continue;
      const keyNode = pair.key as Node | null;
      const key = isScalar(keyNode) ? String(keyNode.value) : String(keyNode);
      const line = keyNode?.range ? lineOf(keyNode.range[0]) : 0;
      const prev = seen.get(key);
      if (prev !== undefined) {
        const what =
          path.length === 1 && path[0] === 'planes' ? 'duplicate plane name' : 'duplicate key';
        out.push(`${formatPath([...path, key])}: ${what} (also on line ${prev})`);
      } else {
        seen.set(key, line);
      }
      out.push(...duplicateKeys(pair.value, [...path, key], lineOf));
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => out.push(...duplicateKeys(item, [...path, i], lineOf)));
  }
  return out;
}
