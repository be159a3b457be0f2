// Consul config entries (as `consul config read -format json` prints them) → validated entries
// (types.ts). Each problem names the entry, the path and the value:
//   service-router/web: Routes[1].Destination.NumRetries: expected integer ≥ 0, got -1
// Consul fields lucid-mesh does not implement are listed as unsupported (kind, name, path);
// keys that are not Consul's at all are errors. Then assembleTraffic puts entries together
// (duplicates are errors) reusing the previous objects for unchanged entries, because the mesh
// builder memoises on object identity.
import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import { DocumentError } from '../catalog/load-document.js';
import { UNSUPPORTED, brief } from './fields.js';
import { entrySchemas, isCatchAll } from './kinds.js';
import {
  ENTRY_KINDS,
  type ConfigEntry,
  type EntryKind,
  type ServiceRoute,
  type TrafficConfig,
  type Unsupported,
} from './types.js';
import { compareStrings } from '../text-order.js';

/** Kinds Consul has that lucid-mesh does not implement: listed as unsupported, not errors. */
const OTHER_CONSUL_KINDS = [
  'mesh',
  'ingress-gateway',
  'terminating-gateway',
  'exported-services',
  'sameness-group',
  'api-gateway',
  'bound-api-gateway',
  'http-route',
  'tcp-route',
  'inline-certificate',
  'file-system-certificate',
  'jwt-provider',
  'control-plane-request-limit',
  'rate-limit-ip',
];

/** One entry that cannot be used, with every problem (paths relative to the entry). */
export class TrafficEntryError extends Error {
  constructor(
    /** The entry's Kind as written ('' if there is none). */
    readonly kind: string,
    /**
     * The entry's Name as written ('' if there is none). Not the class name, so that
     * `{ kind, name }` of the error is the entry's, as in a ConfigProblem.
     */
    override readonly name: string,
    /** `path: problem`, one per problem. */
    readonly issues: readonly string[],
    /** How the problem lines name the entry: `kind/name`, or its place when those are unusable. */
    readonly label: string = kind && name ? `${kind}/${name}` : '(entry)',
  ) {
    super(issues.map((i) => `${label}: ${i}`).join('; '));
  }

  /** The issues as full lines: `service-router/web: Routes[1]...: ...`. */
  get problems(): string[] {
    return this.issues.map((i) => `${this.label}: ${i}`);
  }
}

/** A traffic document (a file, a set of entries) that cannot be used: every problem of every entry. */
export class TrafficDocumentError extends DocumentError {
  override readonly name: string = 'TrafficDocumentError';
}

export interface ParsedEntry {
  /** Absent for a Consul kind lucid-mesh does not implement (then listed in unsupported). */
  readonly entry?: ConfigEntry;
  readonly unsupported: readonly Unsupported[];
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Validates one Consul config entry. `label` names the entry in messages when its Kind or Name
 * is unusable (e.g. `entries[3]`).
 * @throws TrafficEntryError
 */
export function parseEntry(raw: unknown, label?: string): ParsedEntry {
  if (!isObject(raw)) {
    throw new TrafficEntryError(
      '',
      '',
      [`expected a config entry (an object with Kind and Name), got ${brief(raw)}`],
      label ?? '(entry)',
    );
  }
  const kind = typeof raw.Kind === 'string' ? raw.Kind : '';
  const name = typeof raw.Name === 'string' ? raw.Name : '';
  const known =
    (ENTRY_KINDS as readonly string[]).includes(kind) || OTHER_CONSUL_KINDS.includes(kind);
  const shownName = /^[\w.*-]+$/.test(name) ? name : brief(name);
  const fail = (issues: string[]) =>
    new TrafficEntryError(
      kind,
      name,
      issues,
      known && name ? `${kind}/${shownName}` : (label ?? '(entry)'),
    );
  if (OTHER_CONSUL_KINDS.includes(kind)) {
    return freeze({ unsupported: [{ kind, name, field: '' }] });
  }
  if (!(ENTRY_KINDS as readonly string[]).includes(kind)) {
    const misspelt = Object.keys(raw).find((k) => k !== 'Kind' && k.toLowerCase() === 'kind');
    throw fail([
      misspelt
        ? `unknown field ${misspelt} (Consul's JSON spells it Kind)`
        : `Kind: expected one of ${ENTRY_KINDS.join(' | ')} (or another Consul kind), got ${brief(raw.Kind)}`,
    ]);
  }
  const result = entrySchemas()[kind as EntryKind].safeParse(raw);
  if (!result.success) throw fail(formatIssues(result.error));
  const unsupported: Unsupported[] = [];
  const entry = normalise(
    strip(result.data, [], (field) => unsupported.push({ kind, name, field })),
  );
  unsupported.sort((a, b) => compare(a.field, b.field));
  return freeze({ entry: entry as ConfigEntry, unsupported });
}

/** `Routes[1].Destination`, `Subsets.v1`; odd keys quoted: `Add[" "]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (typeof seg === 'string' && /^[\w*-]+$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}

function formatIssues(error: z.ZodError): string[] {
  const lines = error.issues.map((issue) => {
    const where = formatPath(issue.path);
    return issue.path.length === 0 ? issue.message : `${where}: ${issue.message}`;
  });
  return [...new Set(lines)];
}

/** A plain copy without undefined values, reporting and removing the UNSUPPORTED marks. */
function strip(value: unknown, at: PropertyKey[], report: (field: string) => void): unknown {
  if (Array.isArray(value)) return value.map((v, i) => strip(v, [...at, i], report));
  if (!isObject(value)) return value;
  const marks = (value as { [UNSUPPORTED]?: readonly string[] })[UNSUPPORTED] ?? [];
  for (const key of marks) report(formatPath([...at, key]));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (v !== undefined) out[k] = strip(v, [...at, k], report);
  }
  return out;
}

/** One form per meaning: a route without conditions has no Match (a catch-all). */
function normalise(entry: unknown): unknown {
  const e = entry as { Kind: string; Routes?: ServiceRoute[] };
  if (e.Kind !== 'service-router' || !e.Routes) return entry;
  return {
    ...e,
    Routes: e.Routes.map((r) => {
      if (!isCatchAll(r)) return r;
      const { Match: _match, ...rest } = r;
      return rest;
    }),
  };
}

function freeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) freeze(v);
  }
  return value;
}

const compare = compareStrings;

type Maps = 'serviceDefaults' | 'routers' | 'splitters' | 'resolvers' | 'intentions';

const MAP_OF: Readonly<Record<Exclude<EntryKind, 'proxy-defaults'>, Maps>> = {
  'service-defaults': 'serviceDefaults',
  'service-router': 'routers',
  'service-splitter': 'splitters',
  'service-resolver': 'resolvers',
  'service-intentions': 'intentions',
};

/** `kind/name: duplicate entry (entries[i] and entries[j])` for every repeat. */
export function duplicateProblems(entries: readonly ParsedEntry[]): string[] {
  const seen = new Map<string, number>();
  const problems: string[] = [];
  entries.forEach(({ entry }, i) => {
    if (!entry) return;
    const key = `${entry.Kind}/${entry.Name}`;
    const first = seen.get(key);
    if (first === undefined) seen.set(key, i);
    else problems.push(`${key}: duplicate entry (entries[${first}] and entries[${i}])`);
  });
  return problems;
}

/**
 * Puts validated entries together: maps sorted by name, unsupported fields sorted, everything
 * frozen. An entry deep-equal to `previous`'s entry of the same kind and name is `previous`'s
 * object; a map whose entries are all unchanged is `previous`'s map; and if nothing changed
 * the result is `previous` itself.
 * @throws TrafficDocumentError when two entries have the same kind and name
 */
export function assembleTraffic(
  entries: readonly ParsedEntry[],
  previous?: TrafficConfig,
  source = 'traffic configuration',
): TrafficConfig {
  const duplicates = duplicateProblems(entries);
  if (duplicates.length > 0) throw new TrafficDocumentError(source, duplicates);
  const reuse = <T extends ConfigEntry>(entry: T, before: T | undefined): T =>
    before === entry || (before !== undefined && isDeepStrictEqual(before, entry))
      ? before!
      : freeze(entry);

  let proxyDefaults: TrafficConfig['proxyDefaults'];
  const byMap = new Map<Maps, ConfigEntry[]>();
  for (const { entry } of entries) {
    if (!entry) continue;
    if (entry.Kind === 'proxy-defaults') {
      proxyDefaults = reuse(entry, previous?.proxyDefaults);
      continue;
    }
    const map = MAP_OF[entry.Kind];
    const before = (previous?.[map] as ReadonlyMap<string, ConfigEntry> | undefined)?.get(
      entry.Name,
    );
    let list = byMap.get(map);
    if (!list) byMap.set(map, (list = []));
    list.push(reuse(entry, before as typeof entry | undefined));
  }
  const mapFor = <K extends Maps>(key: K): TrafficConfig[K] => {
    const list = [...(byMap.get(key) ?? [])].sort((a, b) => compare(a.Name, b.Name));
    const before = previous?.[key] as ReadonlyMap<string, ConfigEntry> | undefined;
    const old = before ? [...before.values()] : [];
    if (before && old.length === list.length && list.every((e, i) => old[i] === e)) {
      return before as TrafficConfig[K];
    }
    return new Map(list.map((e) => [e.Name, e])) as unknown as TrafficConfig[K];
  };
  const unsupported = entries
    .flatMap((e) => e.unsupported)
    .sort(
      (a, b) => compare(a.kind, b.kind) || compare(a.name, b.name) || compare(a.field, b.field),
    );
  const config: TrafficConfig = {
    ...(proxyDefaults ? { proxyDefaults } : {}),
    serviceDefaults: mapFor('serviceDefaults'),
    routers: mapFor('routers'),
    splitters: mapFor('splitters'),
    resolvers: mapFor('resolvers'),
    intentions: mapFor('intentions'),
    unsupported: isDeepStrictEqual(previous?.unsupported, unsupported)
      ? (previous?.unsupported ?? [])
      : freeze(unsupported),
  };
  if (
    previous &&
    previous.proxyDefaults === config.proxyDefaults &&
    (Object.keys(MAP_OF) as (keyof typeof MAP_OF)[]).every(
      (k) => previous[MAP_OF[k]] === config[MAP_OF[k]],
    ) &&
    previous.unsupported === config.unsupported
  ) {
    return previous;
  }
  return Object.freeze(config);
}

export interface TrafficDocumentOptions {
  /** Names the document in the error message (a file name). */
  readonly source?: string;
  /** The configuration in force: unchanged entries keep its objects. */
  readonly previous?: TrafficConfig;
}

/**
 * Validates a traffic document: a list of Consul config entries, or a single entry. Every
 * problem of every entry is collected into one error.
 * @throws TrafficDocumentError
 */
export function parseTrafficDocument(
  doc: unknown,
  options: TrafficDocumentOptions = {},
): TrafficConfig {
  const source = options.source ?? 'traffic configuration';
  const items = Array.isArray(doc) ? doc : isObject(doc) ? [doc] : undefined;
  if (!items) {
    throw new TrafficDocumentError(source, [
      `(root): expected a list of config entries (or one entry), got ${brief(doc)}`,
    ]);
  }
  const problems: string[] = [];
  const parsed: ParsedEntry[] = [];
  items.forEach((raw, i) => {
    try {
      parsed.push(parseEntry(raw, Array.isArray(doc) ? `entries[${i}]` : '(root)'));
    } catch (err) {
      if (!(err instanceof TrafficEntryError)) throw err;
      problems.push(...err.problems);
      parsed.push({ unsupported: [] }); // keeps indexes aligned for the duplicate check
    }
  });
  problems.push(...duplicateProblems(parsed));
  if (problems.length > 0) throw new TrafficDocumentError(source, problems);
  return assembleTraffic(parsed, options.previous, source);
}
