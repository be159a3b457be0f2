// Field schemas shared by the config-entry kinds (schema.ts). Every error reads
// `expected <what>, got <value>`; zod adds the path. Objects are Consul-aware: a key is either
// implemented, Consul bookkeeping (dropped), a Consul field lucid-mesh does not implement
// (reported as unsupported, never an error), or an error naming the field, with the right
// spelling when only its case or underscores are off (`num_retries` → NumRetries).
import { z } from 'zod';
import { PROTOCOLS } from '../catalog/model.js';
import { show } from '../catalog/schema.js';
import { parseDuration, parseSignedDuration } from './duration.js';
import type { Millis } from './types.js';
import { compileFilter } from './filter-expression.js';
import { re2Problem } from './re2.js';
import { compareStrings } from '../text-order.js';

/** Where an object's output lists its keys that lucid-mesh does not implement. */
export const UNSUPPORTED = Symbol('unsupported');

/** The value in a message, cut short: a property-test blob must not become a 1 MB log line. */
export function brief(value: unknown): string {
  const text = show(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

const expected = (what: string) => (i: { input: unknown }) =>
  `expected ${what}, got ${brief(i.input)}`;

export const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export const str = (what: string) => z.string({ error: expected(what) });
export const nonEmpty = (what: string) => str(what).min(1, { error: expected(what) });
export const bool = z.boolean({ error: expected('true or false') });

export const serviceName = str('a service name (a DNS label: a-z, 0-9, -)').regex(NAME, {
  error: expected('a service name (a DNS label: a-z, 0-9, -)'),
});
export const subsetName = str('a subset name (a DNS label: a-z, 0-9, -)').regex(NAME, {
  error: expected('a subset name (a DNS label: a-z, 0-9, -)'),
});

export function int(min: number, max?: number) {
  const what = max === undefined ? `integer ≥ ${min}` : `integer ${min}-${max}`;
  const n = z
    .number({ error: expected(what) })
    .int({ error: expected(what) })
    .min(min, { error: expected(what) });
  return max === undefined ? n : n.max(max, { error: expected(what) });
}

export const percent = z
  .number({ error: expected('a number 0-100') })
  .min(0, { error: expected('a number 0-100') })
  .max(100, { error: expected('a number 0-100') });

export function oneOf<T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, { error: expected(`one of ${values.join(' | ')}`) });
}

export const protocol = oneOf(PROTOCOLS);

export function list<T extends z.ZodType>(item: T, what: string) {
  return z.array(item, { error: expected(`a list of ${what}`) });
}

/** A Go duration string or integer nanoseconds → milliseconds. */
export const duration = z.unknown().transform((value, ctx) => {
  try {
    return parseDuration(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message, input: value });
    return z.NEVER;
  }
});

/**
 * A route's RequestTimeout or IdleTimeout as Consul reads it: 0 means not set (the resolver's,
 * else Envoy's default: 15 s for RequestTimeout), a negative duration ("-1s") means none at all
 * (Envoy's 0s), as in Consul 1.17+.
 */
export const routeTimeout = z.unknown().transform((value, ctx): Millis | undefined => {
  try {
    const ms = parseSignedDuration(value);
    return ms === 0 ? undefined : Math.max(ms, 0);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message, input: value });
    return z.NEVER;
  }
});

/**
 * Consul's zero value: not set (its defaults apply). For timeouts and intervals Envoy refuses
 * 0s anyway (a connect timeout, an outlier interval or ejection time must be > 0: a NACK).
 */
export const unlessZero = (v: number): number | undefined => (v === 0 ? undefined : v);

/** A duration where 0 means not set (unlessZero). */
export const durationUnlessZero = duration.transform(unlessZero);

/** A duration Envoy requires above zero (a fault's delay: a NACK otherwise). */
export const positiveDuration = duration.refine((ms) => ms > 0, {
  error: (i) => `expected a duration > 0, got ${show(i.input)} ms`,
});

/** Envoy's UInt32Value fields (limits, counts): larger numbers would wrap around. */
export const UINT32_MAX = 4_294_967_295;
export const uint32 = int(0).max(UINT32_MAX, {
  error: expected(`integer ≤ ${UINT32_MAX} (Envoy's uint32)`),
});

/** A regular expression as Envoy runs it: RE2's syntax (re2.ts). */
export const regex = str('a regular expression').superRefine((text, ctx) => {
  const reason = re2Problem(text);
  if (reason !== undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a regular expression (RE2, Envoy's), got ${brief(text)} (${reason})`,
    });
  }
});

/** A Consul filter expression over Service.Tags / Service.Meta (filter-expression.ts). */
export const filter = str('a filter expression').superRefine((text, ctx) => {
  try {
    compileFilter(text);
  } catch (err) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a filter expression, got ${brief(text)}: ${(err as Error).message}`,
    });
  }
});

export const path = str('a path starting with "/"').startsWith('/', {
  error: expected('a path starting with "/"'),
});

const HTTP_METHODS = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
];

/** Consul's method list; upper-cased first (Consul users write `get` too), no duplicates. */
export const methods = list(
  str('an HTTP method')
    .transform((m) => m.toUpperCase())
    .refine((m) => HTTP_METHODS.includes(m), {
      error: expected(`an HTTP method (${HTTP_METHODS.join(', ')})`),
    }),
  'HTTP methods',
)
  .superRefine((ms, ctx) => {
    ms.forEach((m, i) => {
      const first = ms.indexOf(m);
      if (first !== i) {
        ctx.addIssue({
          code: 'custom',
          path: [i],
          message: `duplicate method ${m} (also [${first}])`,
        });
      }
    });
  })
  .default([]);

const HEADER_NAME = /^:?[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;
export const headerName = str('a header name').refine(
  (h) => HEADER_NAME.test(h) && h !== '__proto__',
  {
    error: expected('a header name (letters, digits, -, or a :pseudo-header)'),
  },
);

/** A mapping with validated keys, sorted by key so equal inputs give equal outputs. */
export function record<K extends z.ZodType<string>, V extends z.ZodType>(
  key: K,
  value: V,
  what: string,
) {
  return z
    .record(z.string(), value, { error: expected(`a mapping of ${what}`) })
    .superRefine(
      (map, ctx) => {
        for (const k of Object.keys(map)) {
          const result = key.safeParse(k);
          if (!result.success) {
            ctx.addIssue({
              code: 'custom',
              path: [k],
              message: result.error.issues[0]?.message ?? 'invalid key',
            });
          }
        }
      },
      { when: () => true },
    )
    .transform((map) =>
      Object.fromEntries(Object.entries(map).sort(([a], [b]) => compareStrings(a, b))),
    );
}

export interface ConsulFields {
  /** Consul bookkeeping and comments (indexes, Meta, Description): accepted and dropped. */
  readonly drop?: readonly string[];
  /** Consul fields lucid-mesh does not implement: reported as unsupported. 'rest' = any other key. */
  readonly unsupported?: readonly string[] | 'rest';
}

/** Consul's zero values (and the default tenancy) mean "not used": nothing to report. */
function unused(key: string, value: unknown): boolean {
  if (value === undefined || value === null || value === '' || value === false || value === 0)
    return true;
  if ((key === 'Namespace' || key === 'Partition') && value === 'default') return true;
  if (Array.isArray(value)) return value.length === 0;
  if (typeof value === 'object') return Object.entries(value).every(([k, v]) => unused(k, v));
  return false;
}

const spelling = (key: string) => key.replace(/[_-]/g, '').toLowerCase();

const fieldName = (key: string) => (/^[A-Za-z_][\w-]*$/.test(key) ? key : JSON.stringify(key));

/**
 * A Consul JSON object. Nulls read as absent (Go prints nil as null). Output: the implemented
 * keys only, plus the unsupported keys that are in use under UNSUPPORTED.
 */
export function consulObject<T extends z.core.$ZodLooseShape>(
  shape: T,
  what: string,
  fields: ConsulFields = {},
) {
  const known = new Set(Object.keys(shape));
  const dropped = new Set(fields.drop ?? []);
  const unsupported = fields.unsupported ?? [];
  const isUnsupported = (k: string) => unsupported === 'rest' || unsupported.includes(k);
  const spelled = new Map<string, string>();
  for (const k of [...known, ...(unsupported === 'rest' ? [] : unsupported)])
    spelled.set(spelling(k), k);
  const listed = [...known, ...(unsupported === 'rest' ? [] : unsupported)].join(', ');
  type Out = z.output<z.ZodObject<T>>;

  const object = z
    .looseObject(shape, { error: expected(what) })
    .superRefine(
      (value, ctx) => {
        if (typeof value !== 'object' || value === null) return;
        for (const key of Object.keys(value)) {
          if (known.has(key) || dropped.has(key) || isUnsupported(key)) continue;
          const right = spelled.get(spelling(key));
          ctx.addIssue({
            code: 'custom',
            path: [],
            message: right
              ? `unknown field ${fieldName(key)} (Consul's JSON spells it ${right})`
              : `unknown field ${fieldName(key)} (expected ${listed})`,
          });
        }
      },
      // Also when a field failed: report every problem at once.
      { when: () => true },
    )
    .transform((value) => {
      const out: Record<string | symbol, unknown> = {};
      const notImplemented: string[] = [];
      for (const [k, v] of Object.entries(value)) {
        if (known.has(k)) {
          if (v !== undefined) out[k] = v;
        } else if (!dropped.has(k) && !unused(k, v)) {
          notImplemented.push(k);
        }
      }
      if (notImplemented.length > 0) out[UNSUPPORTED] = notImplemented;
      return out as Out;
    });
  return z.preprocess(withoutNulls, object);
}

function withoutNulls(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null));
}

/**
 * A header a route may add, set or remove: Envoy refuses the whole route configuration (a
 * NACK: ":-prefixed or host headers may not be modified") if one is a :pseudo-header or host.
 */
const editableHeaderName = headerName.refine(
  (h) => !h.startsWith(':') && h.toLowerCase() !== 'host',
  { error: expected('a header Envoy lets a route change (not a :pseudo-header or host)') },
);

/** Consul's header modifiers (RequestHeaders / ResponseHeaders). */
export const headerEdits = consulObject(
  {
    Add: record(editableHeaderName, str('a header value'), 'header names to values').default({}),
    Set: record(editableHeaderName, str('a header value'), 'header names to values').default({}),
    Remove: list(editableHeaderName, 'header names').default([]),
  },
  'header modifiers ({ Add, Set, Remove })',
);

/** Counts the match fields that are set (Consul's zero values count as unset). */
export function setFields(
  value: Readonly<Record<string, unknown>>,
  names: readonly string[],
): string[] {
  return names.filter((n) => value[n] !== undefined && value[n] !== '' && value[n] !== false);
}

function exactlyOne(names: readonly string[]) {
  return (value: Readonly<Record<string, unknown>>, ctx: z.RefinementCtx) => {
    const set = setFields(value, names);
    if (set.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: `expected exactly one of ${names.join(', ')}, got ${set.length ? set.join(' and ') : 'none'}`,
      });
    }
  };
}

/** Keeps only the match fields that are set, so Present: false or Exact: "" never reach the IR. */
function onlySet<T extends Record<string, unknown>>(names: readonly string[]) {
  return (value: T): T => {
    const out: Record<string | symbol, unknown> = { ...value };
    for (const n of names) if (!setFields(value, [n]).length) delete out[n];
    const marks = (value as { [UNSUPPORTED]?: unknown })[UNSUPPORTED];
    if (marks) out[UNSUPPORTED] = marks;
    return out as T;
  };
}

const HEADER_KINDS = ['Exact', 'Prefix', 'Suffix', 'Regex', 'Present'] as const;
export const headerMatch = consulObject(
  {
    Name: headerName,
    Exact: str('a string').optional(),
    Prefix: str('a string').optional(),
    Suffix: str('a string').optional(),
    Regex: regex.optional(),
    Present: bool.optional(),
    Invert: bool.default(false),
  },
  'a header match ({ Name, Exact | Prefix | Suffix | Regex | Present, Invert })',
)
  .superRefine(exactlyOne(HEADER_KINDS))
  .transform(onlySet(HEADER_KINDS));

const QUERY_KINDS = ['Exact', 'Regex', 'Present'] as const;
export const queryParamMatch = consulObject(
  {
    Name: nonEmpty('a query parameter name'),
    Exact: str('a string').optional(),
    Regex: regex.optional(),
    Present: bool.optional(),
  },
  'a query parameter match ({ Name, Exact | Regex | Present })',
)
  .superRefine(exactlyOne(QUERY_KINDS))
  .transform(onlySet(QUERY_KINDS));

export const PATH_KINDS = ['PathExact', 'PathPrefix', 'PathRegex'] as const;

/** At most one path condition (none: any path). */
export function atMostOnePath(
  value: Readonly<Record<string, unknown>>,
  ctx: z.RefinementCtx,
): void {
  const set = setFields(value, PATH_KINDS);
  if (set.length > 1) {
    ctx.addIssue({
      code: 'custom',
      message: `expected at most one of ${PATH_KINDS.join(', ')}, got ${set.join(' and ')}`,
    });
  }
}
