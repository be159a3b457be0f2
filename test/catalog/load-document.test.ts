import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  CatalogDocumentError,
  findJsonErrorOffset,
  parseCatalogText,
} from '../../src/catalog/load-document.js';
import { CatalogValidationError } from '../../src/catalog/schema.js';

function rejection(text: string, fileName: string): CatalogDocumentError {
  try {
    parseCatalogText(text, fileName);
  } catch (err) {
    if (err instanceof CatalogDocumentError) return err;
    throw err;
  }
  throw new Error('expected the document to be rejected');
}

const YAML_OK = `
services:
  - name: world
    instances:
      - id: world-1
        address: 127.0.0.1
        port: 9102
  - name: hello
    protocol: grpc
    instances:
      - { id: hello-2, address: 10.0.0.2, port: 9101, sidecarPort: 19101 }
      - { id: hello-1, address: 10.0.0.1, port: 9101, health: warning, tags: [a], meta: { k: v } }
`;

describe('parseCatalogText', () => {
  it('parses YAML into a normalised catalog with defaults filled', () => {
    const catalog = parseCatalogText(YAML_OK, 'catalog.yaml');
    expect(catalog.services.map((s) => s.name)).toEqual(['hello', 'world']);
    const hello = catalog.services[0]!;
    expect(hello.protocol).toBe('grpc');
    expect(hello.instances.map((i) => i.id)).toEqual(['hello-1', 'hello-2']);
    expect(hello.instances[0]).toEqual({
      id: 'hello-1',
      address: '10.0.0.1',
      port: 9101,
      health: 'warning',
      tags: ['a'],
      meta: { k: 'v' },
    });
    expect(catalog.services[1]!.instances[0]).toEqual({
      id: 'world-1',
      address: '127.0.0.1',
      port: 9102,
      health: 'passing',
      tags: [],
      meta: {},
    });
  });

  it('parses .json files as JSON (extension case-insensitive)', () => {
    const doc = {
      services: [{ name: 'a', instances: [{ id: 'a-1', address: '127.0.0.1', port: 80 }] }],
    };
    for (const name of ['catalog.json', 'CATALOG.JSON']) {
      const catalog = parseCatalogText(JSON.stringify(doc), name);
      expect(catalog.services[0]!.instances[0]!.port).toBe(80);
    }
    // JSON files are not read as YAML: YAML-only syntax is an error there.
    expect(rejection('services: []', 'catalog.json').message).toMatch(
      /^catalog\.json: line 1, column 1: invalid JSON/,
    );
  });

  it('prefixes schema problems with the file name and keeps them as .problems', () => {
    const text = `
services:
  - name: hello
    instances:
      - { id: hello-1, address: 127.0.0.1, port: 80a }
`;
    const err = rejection(text, 'catalog.yaml');
    expect(err.message).toBe(
      'catalog.yaml: services[0].instances[0].port: expected integer 1-65535, got "80a"',
    );
    expect(err.problems).toEqual([
      'services[0].instances[0].port: expected integer 1-65535, got "80a"',
    ]);
    expect(err.fileName).toBe('catalog.yaml');
    expect(err.cause).toBeInstanceOf(CatalogValidationError);
  });

  it('reports every schema problem, joined with "; "', () => {
    const text = `
services:
  - name: Hello
    instances: [{ id: h-1, address: 127.0.0.1, port: 0 }]
  - name: db
    protocol: tcp
`;
    const err = rejection(text, 'dir/c.yml');
    expect(err.problems).toEqual([
      'services[0].name: expected a DNS label (a-z, 0-9, -), got "Hello"',
      'services[0].instances[0].port: expected integer 1-65535, got 0',
      'services[1].outboundPort: required for tcp services (the local port sidecars listen on for "db")',
    ]);
    expect(err.message).toBe(`dir/c.yml: ${err.problems.join('; ')}`);
  });

  it('gives line and column for YAML syntax errors', () => {
    const dup = rejection('services:\n  - name: a\n    name: b\n', 'catalog.yaml');
    expect(dup.message).toBe('catalog.yaml: line 3, column 5: Map keys must be unique');

    const unclosed = rejection('services: [\n', 'catalog.yaml');
    expect(unclosed.message).toMatch(/^catalog\.yaml: line \d+, column \d+: /);
  });

  it('gives line and column for JSON syntax errors', () => {
    // V8 reports a position here ...
    const trailing = rejection('{\n  "services": [\n    {"name": "a",}\n  ]\n}', 'c.json');
    expect(trailing.message).toMatch(/^c\.json: line 3, column 18: invalid JSON: /);
    expect(trailing.message).not.toMatch(/position/);
    // ... but not here (Node 20: `Unexpected token '}', "..." is not valid JSON`).
    const missing = rejection('{"services": }', 'c.json');
    expect(missing.message).toMatch(/^c\.json: line 1, column 14: invalid JSON: /);
    const truncated = rejection('{"services": [', 'c.json');
    expect(truncated.message).toMatch(/^c\.json: line 1, column 15: invalid JSON: /);
  });

  it('rejects empty documents instead of treating them as an empty catalog', () => {
    expect(rejection('', 'c.yaml').message).toBe(
      'c.yaml: the document is empty (write `services: []` for an empty catalog)',
    );
    expect(rejection('# nothing here\n\n', 'c.yaml').problems).toHaveLength(1);
    expect(rejection('  \n', 'c.json').message).toMatch(/^c\.json: the document is empty/);
    expect(parseCatalogText('services: []\n', 'c.yaml')).toEqual({ services: [] });
    expect(parseCatalogText('{}', 'c.json')).toEqual({ services: [] });
  });

  it('rejects a document that is not a mapping', () => {
    expect(rejection('- a\n- b\n', 'c.yaml').message).toMatch(/^c\.yaml: \(root\): /);
  });

  it('accepts the shipped example catalog', () => {
    const path = new URL('../../examples/catalog.yaml', import.meta.url);
    const catalog = parseCatalogText(readFileSync(path, 'utf8'), 'catalog.yaml');
    expect(
      catalog.services.map((s) => ({
        name: s.name,
        protocol: s.protocol,
        instances: s.instances.map((i) => [i.id, i.address, i.port, i.sidecarPort]),
      })),
    ).toEqual([
      { name: 'hello', protocol: 'http', instances: [['hello-1', '127.0.0.1', 9101, 19101]] },
      {
        name: 'rabbitmq',
        protocol: 'tcp',
        instances: [['rabbitmq-1', '127.0.0.1', 5672, 19672]],
      },
      { name: 'world', protocol: 'http', instances: [['world-1', '127.0.0.1', 9102, 19102]] },
    ]);
  });
});

describe('findJsonErrorOffset', () => {
  it('finds the first offending character', () => {
    expect(findJsonErrorOffset('{"a": 1}')).toBeUndefined();
    expect(findJsonErrorOffset(' [1, "x\\u00e9", {"b": [true, false, null, -1.5e3]}] ')).toBe(
      undefined,
    );
    expect(findJsonErrorOffset('{"a": }')).toBe(6);
    expect(findJsonErrorOffset('[1,]')).toBe(3);
    expect(findJsonErrorOffset('{"a" 1}')).toBe(5);
    expect(findJsonErrorOffset("{'a': 1}")).toBe(1);
    expect(findJsonErrorOffset('[tru]')).toBe(1);
    expect(findJsonErrorOffset('[01]')).toBe(2);
    expect(findJsonErrorOffset('"\\x"')).toBe(1);
    expect(findJsonErrorOffset('{} {}')).toBe(3);
    expect(findJsonErrorOffset('[1')).toBe(2);
  });
});
