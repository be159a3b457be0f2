// Property: whatever document arrives (arbitrary JSON-ish values, or valid Consul entries with
// random fields replaced, removed, renamed or added), parseTrafficDocument either returns a
// configuration or throws a TrafficDocumentError whose every problem names the entry and says
// what was expected; never another exception, never zod's default wording.
// Seeded like the fuzz tests (FUZZ_SEED, default 20261130): a run is reproducible.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TrafficDocumentError, parseTrafficDocument } from '../../src/traffic/schema.js';
import { quoted, writeReliabilityResult } from '../support/reliability.js';
import * as consul from './consul-entries.js';

const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 20261130);

const VALID: readonly unknown[] = Object.values(consul);

/** Every path (list of keys) to a value inside `value`, the root included. */
function paths(value: unknown, at: (string | number)[] = []): (string | number)[][] {
  const out = [at];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...paths(v, [...at, i])));
  else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...at, k]));
  }
  return out;
}

type Mutation = {
  readonly pick: number;
  readonly op: 'set' | 'delete' | 'add' | 'rename';
  readonly key: string;
  readonly value: unknown;
};

/** Sets an own property, even `__proto__` (as JSON.parse does). */
function setOwn(target: object, key: string | number, value: unknown): void {
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

function mutate(entry: unknown, mutations: readonly Mutation[]): unknown {
  const root = { doc: structuredClone(entry) };
  for (const { value, ...m } of mutations) {
    // A copy: fast-check replays the same values while shrinking.
    const fresh = () => structuredClone(value);
    const all = paths(root.doc).map((p) => ['doc', ...p]);
    const path = all[m.pick % all.length] as (string | number)[];
    const parent = path.slice(0, -1).reduce<unknown>((o, k) => (o as never)[k], root) as Record<
      string | number,
      unknown
    >;
    const last = path[path.length - 1] as string | number;
    const target = parent[last];
    if (m.op === 'set') setOwn(parent, last, fresh());
    else if (m.op === 'delete' && !Array.isArray(parent)) delete parent[last];
    else if (m.op === 'add' && typeof target === 'object' && target !== null) {
      if (Array.isArray(target)) target.push(fresh());
      else setOwn(target, m.key, fresh());
    } else if (m.op === 'rename' && typeof last === 'string' && !Array.isArray(parent)) {
      // Consul's HCL spelling: NumRetries → num_retries
      delete parent[last];
      setOwn(parent, last.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase(), target);
    }
  }
  return root.doc;
}

const interesting = fc.constantFrom<unknown>(
  '',
  '*',
  'v2',
  'GET',
  'get',
  '5 sec',
  '500ms',
  '/(a',
  'Service.Meta.version == v2',
  'Service.Tags ==',
  -1,
  0,
  1.5,
  100,
  101,
  1e21,
  Number.NaN,
  null,
  true,
  {},
  [],
  [{}],
  'default',
  'service-router',
);
const anyValue = fc.oneof(interesting, fc.jsonValue({ maxDepth: 3 }), fc.anything({ maxDepth: 3 }));
const anyKey = fc.oneof(
  fc.constantFrom(
    'num_retries',
    'Namespace',
    'Peer',
    'Mode',
    '__proto__',
    'constructor',
    'Kind',
    'Name',
    'HTTP',
    '*',
  ),
  fc.string({ maxLength: 12 }),
);
const mutation = fc.record({
  pick: fc.nat(),
  op: fc.constantFrom<Mutation['op']>('set', 'delete', 'add', 'rename'),
  key: anyKey,
  value: anyValue,
});
const mutatedEntry = fc
  .tuple(fc.constantFrom(...VALID), fc.array(mutation, { minLength: 1, maxLength: 4 }))
  .map(([entry, ms]) => mutate(entry, ms));
const item = fc.oneof(
  { weight: 1, arbitrary: fc.constantFrom(...VALID) },
  { weight: 5, arbitrary: mutatedEntry },
  { weight: 1, arbitrary: anyValue },
);
const document = fc.oneof(
  { weight: 6, arbitrary: fc.array(item, { maxLength: 5 }) },
  { weight: 2, arbitrary: mutatedEntry },
  { weight: 1, arbitrary: anyValue },
);

/** An entry label (`kind/name`, `entries[i]`, `(root)`), then what was expected or found. */
const PROBLEM =
  /^(?:\(root\)|entries\[\d+\]|[a-z-]+\/(?:[\w.*-]+|".*?)): (?:.*: )?(?:expected |unknown field |duplicate |a catch-all route )/;

describe('parseTrafficDocument on generated documents', () => {
  it('builds or explains with a path; never crashes (10,000 documents)', () => {
    let accepted = 0;
    let rejected = 0;
    let example: string | undefined;
    fc.assert(
      fc.property(document, (doc) => {
        let error: unknown;
        try {
          const config = parseTrafficDocument(doc);
          expect(config.routers).toBeInstanceOf(Map);
          accepted++;
          return;
        } catch (err) {
          error = err;
        }
        expect(error).toBeInstanceOf(TrafficDocumentError);
        const problems = (error as TrafficDocumentError).problems;
        expect(problems.length).toBeGreaterThan(0);
        for (const problem of problems) {
          expect(problem).toMatch(PROBLEM);
          expect(problem).not.toMatch(/Invalid input|Invalid key|Invalid string/);
        }
        // One that names a field inside an entry, to show in docs/reliability.md.
        example ??= problems.find((p) => /^[a-z-]+\/[\w.-]+: \w+/.test(p) && p.length <= 140);
        rejected++;
      }),
      { seed: FUZZ_SEED, numRuns: 10_000 },
    );
    // Both outcomes must be exercised, or the generator is not testing what it claims.
    expect(accepted).toBeGreaterThan(1000);
    expect(rejected).toBeGreaterThan(5000);
    writeReliabilityResult({
      id: 'documents-traffic-values',
      section: 'documents',
      test: 'test/traffic/property.test.ts',
      fault:
        'Traffic documents (Consul config entries): arbitrary values, and valid entries with fields replaced, ' +
        "removed, renamed to HCL's spelling or added (`__proto__`, `constructor`, NaN, 1e21, bad durations and regexes)",
      behaviour:
        '`parseTrafficDocument` returns a configuration or throws `TrafficDocumentError`, every problem naming the ' +
        "entry (`kind/name` or `entries[i]`) and what was expected; never another exception, never zod's wording.",
      figures:
        `Seed ${FUZZ_SEED}: ${(accepted + rejected).toLocaleString('en')} documents, ` +
        `${accepted.toLocaleString('en')} accepted, ${rejected.toLocaleString('en')} rejected. ` +
        `A problem as reported: ${quoted(example)}.`,
    });
  }, 120_000);
});
