// Fuzzing (issue 13): etcd values. The etcd source reads one JSON value per key
// (`<prefix>services/<service>` = the service's settings, `<prefix>services/<service>/<id>` = an
// instance); decodeEntry (src/sources/etcd/state.ts, with decodeInstance/decodeServiceSettings
// from layout.ts) parses one, buildCatalog assembles them. On generated keys and values (valid
// instances mutated: fields deleted, retyped, huge, unicode, `__proto__` keys; truncated JSON;
// arbitrary text) each key is either applied or skipped with a problem (for clashes: naming
// the key), never a throw; every good key is in the catalog. Then a short run against a real
// etcd (test/support/etcd.ts): garbage values written among good ones, over good ones and back;
// the source's catalog holds exactly the keys whose current value is good, and logs every bad
// key by name.
//
// Seeded (FUZZ_SEED, default 20261130): a run is reproducible input for input.
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Catalog } from '../../src/catalog/model.js';
import { EtcdSource } from '../../src/sources/etcd/etcd-source.js';
import {
  buildCatalog,
  decodeEntry,
  entryProblem,
  type Entry,
  type KeyValue,
} from '../../src/sources/etcd/state.js';
import type { CatalogSink } from '../../src/sources/source.js';
import { startEtcd, type EtcdHandle } from '../support/etcd.js';
import { quoted, writeReliabilityResult } from '../support/reliability.js';
import { waitFor } from '../support/wait.js';

/** Fixed, so a run is reproducible; FUZZ_SEED=<n> explores another stretch of inputs. */
const FUZZ_SEED = Number(process.env.FUZZ_SEED ?? 20261130);
console.log(`test/fuzz/etcd-values.test.ts: FUZZ_SEED=${FUZZ_SEED}`);

const PREFIX = '/fuzz/';

/** Sets an own property, even `__proto__` (as JSON.parse does). */
function setOwn(target: object, key: string, value: unknown): void {
  Object.defineProperty(target, key, {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

const weird = fc.oneof(
  fc.constantFrom<unknown>(
    null,
    true,
    '',
    '80a',
    '::1',
    '999.0.0.1',
    'tcp',
    'critical',
    -1,
    0,
    65536,
    1.5,
    1e21,
    [],
    {},
    ['x'],
    'x'.repeat(200_000),
    Array.from({ length: 10_000 }, (_, i) => i),
    '\ud800',
    '🦄',
  ),
  fc.jsonValue({ maxDepth: 2 }),
);
const fieldName = fc.constantFrom(
  'id',
  'address',
  'port',
  'sidecarPort',
  'health',
  'tags',
  'meta',
  'datacenter',
  'region',
  'zone',
  'protocol',
  'outboundPort',
  '__proto__',
  'constructor',
  'unknown',
);

const goodInstance = fc.record(
  {
    address: fc.oneof(fc.ipV4(), fc.ipV6()),
    port: fc.integer({ min: 1, max: 65535 }),
    sidecarPort: fc.integer({ min: 1, max: 65535 }),
    health: fc.constantFrom('passing', 'warning', 'critical'),
    tags: fc.array(fc.string({ maxLength: 5 }), { maxLength: 2 }),
    meta: fc.dictionary(fc.string({ maxLength: 4 }), fc.string({ maxLength: 4 }), { maxKeys: 2 }),
  },
  { requiredKeys: ['address', 'port'] },
);
const goodSettings = fc.oneof(
  fc.record({ protocol: fc.constantFrom('http', 'http2', 'grpc') }),
  fc.record({ protocol: fc.constant('tcp'), outboundPort: fc.integer({ min: 1, max: 65535 }) }),
);

/** A value: valid, valid with fields changed, or not an object / not JSON at all. */
function valueOf(valid: fc.Arbitrary<Record<string, unknown>>): fc.Arbitrary<string> {
  const mutated = fc
    .tuple(
      valid,
      fc.array(fc.tuple(fc.constantFrom('set', 'delete'), fieldName, weird), {
        minLength: 1,
        maxLength: 3,
      }),
    )
    .map(([doc, ms]) => {
      const out: Record<string, unknown> = { ...doc };
      for (const [op, key, value] of ms) {
        if (op === 'delete') delete out[key];
        else setOwn(out, key, value);
      }
      return JSON.stringify(out);
    });
  return fc.oneof(
    { weight: 4, arbitrary: valid.map((v) => JSON.stringify(v)) },
    { weight: 4, arbitrary: mutated },
    {
      weight: 1,
      arbitrary: fc.tuple(valid, fc.double({ min: 0, max: 1, noNaN: true })).map(([v, at]) => {
        const t = JSON.stringify(v);
        return t.slice(0, Math.floor(at * t.length));
      }),
    },
    { weight: 1, arbitrary: weird.map((v) => JSON.stringify(v) ?? '') },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  );
}

const serviceName = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('web', 'api', 'db', 'cache') },
  { weight: 1, arbitrary: fc.constantFrom('Web', '', 'a_b', '-x', 'ünï', '__proto__') },
);
const instanceId = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('i-1', 'i-2', 'i-3', 'i-4', 'i-5', 'i-6') },
  { weight: 1, arbitrary: fc.constantFrom('', 'a b', '__proto__', 'x/y', '🦄', '.a') },
);

let revision = 0;
const kv = fc.oneof(
  {
    weight: 4,
    arbitrary: fc
      .tuple(serviceName, instanceId, valueOf(goodInstance))
      .map(([s, id, value]) => ({ key: `${PREFIX}services/${s}/${id}`, value })),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(serviceName, valueOf(goodSettings))
      .map(([s, value]) => ({ key: `${PREFIX}services/${s}`, value })),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.string({ maxLength: 12 }), fc.string({ maxLength: 20 }))
      .map(([rest, value]) => ({ key: `${PREFIX}services/${rest}`, value })),
  },
);

describe('etcd values (fast-check)', () => {
  it('each key is applied or skipped with a problem; never a throw; every good key is served', () => {
    let applied = 0;
    let bad = 0;
    let clashes = 0;
    let example: string | undefined;
    fc.assert(
      fc.property(fc.array(kv, { maxLength: 12 }), (kvs) => {
        // Later writes of a key replace earlier ones, as in etcd.
        const byKey = new Map<string, Entry>();
        for (const { key, value } of kvs) {
          revision++;
          const full: KeyValue = { key, value, createRevision: revision, modRevision: revision };
          const entry = decodeEntry(PREFIX, full);
          expect(entry).toBeDefined();
          const problem = entryProblem(entry!);
          if (problem !== undefined) expect(problem.length).toBeGreaterThan(0);
          if (problem !== undefined && problem.length <= 140 && /\w+: /.test(problem))
            example ??= `${key}: ${problem}`;
          byKey.set(key, entry!);
        }
        const { catalog, skipped } = buildCatalog(byKey.values());
        const served = new Set(
          catalog.services.flatMap((s) => s.instances.map((i) => `${s.name}/${i.id}`)),
        );
        const skippedKeys = new Set(skipped.map((s) => s.key));
        for (const s of skipped) {
          expect(byKey.has(s.key), s.key).toBe(true);
          expect(s.problem.length).toBeGreaterThan(0);
        }
        for (const [key, entry] of byKey) {
          if (entry.kind !== 'instance') continue;
          if (!entry.decoded.ok) {
            bad++;
            expect(served.has(`${entry.service}/${entry.id}`), key).toBe(false);
            continue;
          }
          // A good instance is served, or skipped by name (a clash or its service's settings).
          if (served.has(`${entry.service}/${entry.id}`)) applied++;
          else {
            expect(skippedKeys.has(key), `${key} neither served nor skipped`).toBe(true);
            clashes++;
          }
        }
      }),
      { seed: FUZZ_SEED, numRuns: 2000 },
    );
    console.log(
      `etcd values: ${applied} instance values applied, ${bad} rejected, ${clashes} skipped by clash (seed ${FUZZ_SEED})`,
    );
    expect(applied).toBeGreaterThan(500);
    expect(bad).toBeGreaterThan(500);
    writeReliabilityResult({
      id: 'documents-etcd-values',
      section: 'documents',
      test: 'test/fuzz/etcd-values.test.ts',
      fault:
        'etcd values (instances and service settings): valid ones mutated, truncated JSON, non-objects, random text, ' +
        'bad keys',
      behaviour:
        '`decodeEntry` / `buildCatalog`: each key applied or skipped with a problem; clashes are skipped naming the ' +
        'key; never a throw; every good key is served.',
      figures:
        `Seed ${FUZZ_SEED}: 2,000 sets of up to 12 keys: ${applied.toLocaleString('en')} instance values applied, ` +
        `${bad.toLocaleString('en')} rejected, ${clashes.toLocaleString('en')} skipped by clash. A problem as ` +
        `reported: ${quoted(example)}.`,
    });
  });
});

// --- a real etcd ------------------------------------------------------------------------------

let etcd: EtcdHandle;
beforeAll(async () => {
  etcd = await startEtcd('fuzz-etcd-values');
});
afterAll(async () => {
  await etcd?.remove();
});

/** service → sorted "id:port". */
function view(catalog: Catalog | undefined): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const s of catalog?.services ?? [])
    out[s.name] = s.instances.map((i) => `${i.id}:${i.port}`).sort();
  return out;
}

describe('etcd values against a real etcd', () => {
  it('garbage written among good values: the catalog keeps exactly the good ones', async () => {
    const prefix = '/fuzz-real/';
    const put = (path: string, value: string) =>
      etcd.client.put(`${prefix}services/${path}`).value(value);
    const garbage = fc.sample(valueOf(goodInstance), { seed: FUZZ_SEED, numRuns: 200 });
    // Keep only values decodeInstance rejects: those are the garbage.
    const isBad = (id: string, value: string) => {
      const kv = { key: `${prefix}services/web/${id}`, value, createRevision: 1, modRevision: 1 };
      return entryProblem(decodeEntry(prefix, kv)!) !== undefined;
    };

    const lines: Array<Record<string, unknown>> = [];
    const logger = pino(
      { level: 'warn' },
      { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) },
    );
    let last: Catalog | undefined;
    const sink: CatalogSink = { update: (c) => void (last = c), error: () => undefined };
    await put('web/good-0', JSON.stringify({ address: '127.0.0.1', port: 8000 }));
    const source = new EtcdSource(
      { endpoints: [etcd.endpoint], prefix, retryMinMs: 100, retryMaxMs: 500 },
      logger,
    );
    await source.start(sink);
    const expected: Record<string, string[]> = { web: ['good-0:8000'] };
    expect(view(last)).toEqual(expected);

    const badKeys = new Set<string>();
    let goods = 1;
    let written = 0;
    let overwrites = 0;
    for (let i = 0; i < 40; i++) {
      const value = garbage[i % garbage.length]!;
      if (i % 4 === 0) {
        // A good instance.
        await put(
          `web/good-${goods}`,
          JSON.stringify({ address: '127.0.0.1', port: 8000 + goods }),
        );
        expected.web!.push(`good-${goods}:${8000 + goods}`);
        goods++;
      } else if (i % 4 === 3 && isBad('good-0', value)) {
        // Garbage over a good key, then the good value back.
        await put('web/good-0', value);
        await put('web/good-0', JSON.stringify({ address: '127.0.0.1', port: 8000 }));
        overwrites++;
      } else if (isBad(`bad-${i}`, value)) {
        await put(`web/bad-${i}`, value);
        badKeys.add(`${prefix}services/web/bad-${i}`);
      } else {
        continue;
      }
      written++;
    }
    expect(overwrites).toBeGreaterThan(0);
    expected.web!.sort();
    await waitFor(() => JSON.stringify(view(last)) === JSON.stringify(expected), {
      what: 'the catalog with exactly the good instances',
      timeoutMs: 10_000,
      intervalMs: 20,
      details: () => JSON.stringify(view(last)),
    });
    // Every garbage key is logged by name (a bad key changes no catalog: wait for its line).
    const logged = () =>
      new Set(
        lines.filter((l) => l.msg === 'etcd key skipped: bad value').map((l) => String(l.key)),
      );
    await waitFor(() => [...badKeys].every((k) => logged().has(k)) || undefined, {
      what: 'a log line naming every garbage key',
      timeoutMs: 10_000,
      intervalMs: 20,
      details: () => [...badKeys].filter((k) => !logged().has(k)).join(', '),
    });
    console.log(
      `real etcd: ${written} writes (${goods} good instances, ${badKeys.size} garbage keys, ${overwrites} times garbage over a good key and back); catalog = the good ones`,
    );
    await source.stop();
    const line = lines.find((l) => l.msg === 'etcd key skipped: bad value')!;
    writeReliabilityResult({
      id: 'documents-etcd-real',
      section: 'documents',
      test: 'test/fuzz/etcd-values.test.ts',
      fault:
        'A real etcd: garbage values written among good ones, and over a good key then the good value back',
      behaviour:
        'The catalog holds exactly the keys whose current value is good; every garbage key is logged by name ' +
        '(`etcd key skipped: bad value`, with `key`).',
      figures:
        `Seed ${FUZZ_SEED}: ${written} writes (${goods} good instances, ${badKeys.size} garbage keys, ${overwrites} ` +
        `times garbage over a good key and back); the catalog = the ${goods} good instances. Logged (warn): ` +
        `${quoted(String(line.msg))} with key ${quoted(String(line.key))}, problem ${quoted(String(line.problem))}.`,
    });
  });
});
