// Documents built to break the parser (found by fuzzing, test/fuzz/documents.test.ts): each is
// refused with the module's own error, naming what is wrong, and the process stays up.
import { describe, expect, it } from 'vitest';
import { CatalogDocumentError, parseCatalogText } from '../../src/catalog/load-document.js';
import { PolicyDocumentError, parsePolicyText } from '../../src/policy/schema.js';
import { TrafficDocumentError } from '../../src/traffic/schema.js';
import { parseTrafficText } from '../../src/traffic/traffic-file.js';

const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);

describe('hostile documents', () => {
  it('deep nesting is refused before any parser recurses into it (twice: no abort)', () => {
    for (let round = 0; round < 2; round++) {
      expect(() => parseCatalogText(deep(1000), 'catalog.yaml')).toThrow(CatalogDocumentError);
      expect(() => parseCatalogText(deep(1000), 'catalog.json')).toThrow(/nested deeper than 64/);
      expect(() => parsePolicyText(deep(200_000), 'policy.json')).toThrow(PolicyDocumentError);
      expect(() => parseTrafficText(deep(1000), 'traffic.yaml')).toThrow(TrafficDocumentError);
    }
  });

  it('brackets inside quoted strings do not count', () => {
    const catalog = parseCatalogText(
      `services:\n  - name: a\n    instances:\n      - { id: a-1, address: 10.0.0.1, port: 80, meta: { k: "${'['.repeat(100)}" } }\n`,
      'catalog.yaml',
    );
    expect(catalog.services[0]!.instances[0]!.meta.k).toHaveLength(100);
  });

  it('an unresolved YAML alias is the catalog’s own error, not yaml’s', () => {
    expect(() => parseCatalogText('*a"\n', 'catalog.yaml')).toThrow(CatalogDocumentError);
    expect(() => parseCatalogText('*a"\n', 'catalog.yaml')).toThrow(/Unresolved alias/);
  });
});
