// An endpoint flip in a JSON catalog file re-parses one service entry. The parser must keep
// that service's unchanged instances (as the model downstream does, reuseUnchanged) so the
// model can take the parser's object as it is: otherwise every service changed once is held
// twice, the model's instances and the parser's fresh copies (the soak's heap creep).
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { IncrementalCatalogParser } from '../../src/catalog/incremental-parse.js';
import { reuseUnchanged, type Catalog } from '../../src/catalog/model.js';

const SERVICES = 40;
const entries = Array.from({ length: SERVICES }, (_, s) => ({
  name: `svc-${String(s).padStart(2, '0')}`,
  instances: Array.from({ length: 5 }, (_, i) => ({
    id: `svc-${s}-${i}`,
    address: `10.3.${s}.${i + 1}`,
    port: 8080,
    health: 'passing',
    tags: ['v1'],
    meta: { zone: 'a' },
  })),
}));
const json = () => `{"services":[\n${entries.map((e) => JSON.stringify(e)).join(',\n')}\n]}\n`;
const yaml = () => stringify({ services: entries });

describe.each([
  ['JSON', json, 'catalog.json'],
  ['YAML', yaml, 'catalog.yaml'],
])('IncrementalCatalogParser, an entry of a %s catalog changed', (_, text, file) => {
  it('keeps the unchanged instances, so the model keeps the very objects the parser holds', () => {
    const parser = new IncrementalCatalogParser();
    let model: Catalog = reuseUnchanged(undefined, parser.parse(text(), file));
    for (let s = 0; s < SERVICES; s++) {
      const before = model.services[s]!;
      const flipped = entries[s]!.instances[2]!;
      flipped.health = flipped.health === 'passing' ? 'critical' : 'passing';
      const parsed = parser.parse(text(), file);
      const next = reuseUnchanged(model, parsed);
      const service = parsed.services[s]!;
      expect(service.instances[2]!.health).toBe(flipped.health);
      for (const i of [0, 1, 3, 4]) expect(service.instances[i]).toBe(before.instances[i]);
      expect(next.services[s], 'the model takes the parsed service as it is').toBe(service);
      expect(next.services.every((x, i) => x === parsed.services[i])).toBe(true);
      model = next;
    }
  });

  it('gives back the last object when an entry changed only in its text', () => {
    const parser = new IncrementalCatalogParser();
    const first = parser.parse(text(), file);
    const spaced = text()
      .replace('"port":8080', '"port": 8080')
      .replace('port: 8080', 'port:  8080');
    expect(spaced).not.toBe(text());
    expect(parser.parse(spaced, file).services[0]).toBe(first.services[0]);
  });
});
