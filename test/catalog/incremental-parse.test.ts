// The file source's parser validates only changed service entries: it must give exactly what
// parseCatalogText gives (catalog or error message), whatever came before, and keep the model
// objects of unchanged entries so downstream memos hit.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { IncrementalCatalogParser } from '../../src/catalog/incremental-parse.js';
import { parseCatalogText } from '../../src/catalog/load-document.js';

type Outcome = { ok: unknown } | { error: string };
function outcome(parse: () => unknown): Outcome {
  try {
    return { ok: parse() };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

// Small pools, so that duplicates (names, ids, ports) and invalid values come up often.
const instance = fc.record(
  {
    id: fc.constantFrom('a-1', 'a-2', 'b-1', 'bad id!'),
    address: fc.constantFrom('10.0.0.1', '10.0.0.2', '::1', 'example.com'),
    port: fc.constantFrom(80, 8080, 0, '80a'),
    health: fc.constantFrom('passing', 'critical', 'sick'),
    tags: fc.constantFrom(['x'], [], 'x'),
  },
  { requiredKeys: ['id', 'address', 'port'] },
);
const service = fc.record(
  {
    name: fc.constantFrom('api', 'web', 'db', 'Bad'),
    protocol: fc.constantFrom('http', 'grpc', 'tcp'),
    outboundPort: fc.constantFrom(5432, 6379),
    instances: fc.array(instance, { maxLength: 3 }),
    upstreams: fc.constantFrom(['db'], [{ name: 'api', localBindPort: 9000 }], ['db', 'db']),
    extra: fc.constant(true),
  },
  { requiredKeys: ['name'] },
);
const gateway = fc.record({
  id: fc.constantFrom('gw-1', 'gw-2', 'a-1'),
  address: fc.constantFrom('10.1.0.1', 'nope'),
  port: fc.constantFrom(8443, -1),
});
const documentValue = fc.record(
  {
    services: fc.oneof(fc.array(service, { maxLength: 4 }), fc.constant(null)),
    gateways: fc.array(gateway, { maxLength: 2 }),
    other: fc.constant(1),
  },
  { requiredKeys: [] },
);
// YAML as people and generators write it: block or flow style, indented sequences or not,
// comments, and now and then something the item-wise reader must leave to the full parser.
const yamlText = fc
  .tuple(
    documentValue,
    fc.record({
      indentSeq: fc.boolean(),
      collectionStyle: fc.constantFrom('block', 'block', 'any', 'flow'),
      comment: fc.constantFrom(
        '',
        '# top\n',
        'services:\n',
        '  # inner\n',
        '&a x\n',
        '\t\n',
        // A no-break space is not YAML whitespace: alone on a line, or leading one.
        '\u00a0\n',
        '  \u00a0\n',
        '\u00a0  - x\n',
      ),
      at: fc.nat(),
    }),
  )
  .map(([doc, f]) => {
    const text = stringify(doc, { indentSeq: f.indentSeq, collectionStyle: f.collectionStyle });
    const lines = text.split('\n');
    const at = f.at % (lines.length + 1);
    return [...lines.slice(0, at), ...f.comment.split('\n').slice(0, -1), ...lines.slice(at)].join(
      '\n',
    );
  });
const documentText = fc
  .record(
    {
      services: fc.oneof(fc.array(service, { maxLength: 4 }), fc.constant(null)),
      gateways: fc.array(gateway, { maxLength: 2 }),
      other: fc.constant(1),
    },
    { requiredKeys: [] },
  )
  .chain((doc) =>
    // Compact or indented, and now and then something only the whole-text parse may judge:
    // a repeated key, an escaped key, a trailing comma, a BOM, text after the object.
    fc
      .tuple(
        fc.constantFrom(0, 1, 2, '\t'),
        fc.constantFrom('', '', '', 'dup', 'escaped', 'comma', 'bom', 'after', 'nbsp'),
      )
      .map(([indent, odd]) => {
        const text = JSON.stringify(doc, null, indent);
        if (odd === 'dup') return text.replace('{', '{"services": [],');
        if (odd === 'escaped') return text.replace('"services"', '"servic\\u0065s"');
        if (odd === 'comma' && Array.isArray(doc.services) && doc.services.length > 0) {
          // After the last service entry itself.
          const entries = doc.services.map((x) => JSON.stringify(x)).join(',');
          return JSON.stringify({ ...doc, services: 0 }).replace(
            '"services":0',
            `"services":[${entries},]`,
          );
        }
        if (odd === 'bom') return `\ufeff${text}`;
        if (odd === 'after') return `${text} []`;
        // Not JSON whitespace: next to an entry it makes the whole text invalid.
        if (odd === 'nbsp') return text.replace('[{', '[\u00a0{').replace('},{', '}\u00a0,{');
        return text;
      }),
  );

describe('IncrementalCatalogParser', () => {
  it('gives what parseCatalogText gives, catalog or error, over any sequence of edits', () => {
    fc.assert(
      fc.property(fc.array(documentText, { minLength: 1, maxLength: 6 }), (texts) => {
        const parser = new IncrementalCatalogParser();
        for (const text of texts) {
          expect(outcome(() => parser.parse(text, 'catalog.json'))).toEqual(
            outcome(() => parseCatalogText(text, 'catalog.json')),
          );
        }
      }),
      { numRuns: 400 },
    );
  });

  it('reads YAML item by item with the same results, over any sequence of edits', () => {
    fc.assert(
      fc.property(fc.array(yamlText, { minLength: 1, maxLength: 6 }), (texts) => {
        const parser = new IncrementalCatalogParser();
        for (const text of texts) {
          expect(outcome(() => parser.parse(text, 'catalog.yaml'))).toEqual(
            outcome(() => parseCatalogText(text, 'catalog.yaml')),
          );
        }
      }),
      { numRuns: 150 },
    );
  });

  it('reads a valid JSON catalog entry by entry, and leaves anything odd to the whole parse', () => {
    const entry = (name: string, port: number) =>
      `{"name": "${name}", "instances": [{"id": "${name}-1", "address": "10.0.0.1", "port": ${port}}]}`;
    const good = (port: number) => `{"services": [${entry('web', 80)}, ${entry('api', port)}]}`;
    const deep = `${'['.repeat(70)}${']'.repeat(70)}`;
    const variants = [
      good(81),
      `{"services": [${entry('web', 80)}, ${entry('api', 81)},]}`,
      `{"services": [], "services": [${entry('web', 80)}]}`,
      `{"servic\u0065s": [${entry('web', 80)}]}`,
      `\ufeff${good(81)}`,
      `${good(81)} []`,
      `{"services": [${entry('web', 80)}], "gateways": [], "other": 1}`,
      `{"services": [${entry('web', 80)}], "gateways": ${deep}}`,
      `{"services": [${entry('web', 80)}, ${entry('web', 81)}]}`,
      `{"services": [${entry('web', 80)}], "gateways": nul}`,
      good(82),
    ];
    const parser = new IncrementalCatalogParser();
    parser.parse(good(80), 'catalog.json');
    for (const text of variants) {
      expect(outcome(() => parser.parse(text, 'catalog.json'))).toEqual(
        outcome(() => parseCatalogText(text, 'catalog.json')),
      );
    }
  });

  it('leaves YAML whose blank-looking line holds a no-break space to the whole parse', () => {
    // Found by the property above: JavaScript's trim() removes U+00A0, YAML does not.
    for (const text of ['  \u00a0\ngateways:\n  []\n', 'services:\n  \u00a0\n  - name: web\n']) {
      const parser = new IncrementalCatalogParser();
      expect(outcome(() => parser.parse(text, 'catalog.yaml'))).toEqual(
        outcome(() => parseCatalogText(text, 'catalog.yaml')),
      );
      expect(outcome(() => parser.parse(text, 'catalog.yaml'))).toHaveProperty('error');
    }
  });

  it('keeps the objects of unchanged services, also after a rejected edit', () => {
    const parser = new IncrementalCatalogParser();
    const doc = (apiPort: number | string) => `services:
  - name: web
    instances: [{ id: web-1, address: 10.0.0.1, port: 80 }]
  - name: api
    instances: [{ id: api-1, address: 10.0.0.2, port: ${apiPort} }]
`;
    const first = parser.parse(doc(80), 'catalog.yaml');
    expect(() => parser.parse(doc('"80a"'), 'catalog.yaml')).toThrow(
      'catalog.yaml: services[1].instances[0].port: expected integer 1-65535, got "80a"',
    );
    const second = parser.parse(doc(81), 'catalog.yaml');
    const [api1, web1] = first.services;
    const [api2, web2] = second.services;
    expect(web2).toBe(web1);
    expect(api2).not.toBe(api1);
    expect(api2!.instances[0]!.port).toBe(81);
    expect(second).toEqual(parseCatalogText(doc(81), 'catalog.yaml'));
  });
});
