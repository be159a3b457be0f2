// assembleTraffic: unchanged entries keep their object (the mesh builder memoises on identity),
// unchanged maps and an unchanged configuration too; duplicates are errors naming both.
import { describe, expect, it } from 'vitest';
import {
  TrafficDocumentError,
  assembleTraffic,
  parseEntry,
  parseTrafficDocument,
} from '../../src/traffic/schema.js';
import * as consul from './consul-entries.js';

const docs = [consul.serviceRouter, consul.serviceResolver, consul.serviceDefaults];
const parse = (raws: unknown[]) => raws.map((r) => parseEntry(r));

describe('assembleTraffic', () => {
  it('reuses every object when nothing changed, down to the configuration itself', () => {
    const first = assembleTraffic(parse(docs));
    const again = assembleTraffic(parse(docs), first);
    expect(again).toBe(first);
  });

  it('an edited entry is new; the others keep their objects, and their maps', () => {
    const first = assembleTraffic(parse([...docs, { ...consul.serviceRouter, Name: 'api' }]));
    const edited = { ...consul.serviceResolver, ConnectTimeout: '5s' };
    const second = assembleTraffic(
      parse([
        consul.serviceRouter,
        edited,
        consul.serviceDefaults,
        { ...consul.serviceRouter, Name: 'api' },
      ]),
      first,
    );
    expect(second).not.toBe(first);
    expect(second.resolvers.get('web')).not.toBe(first.resolvers.get('web'));
    expect(second.resolvers.get('web')?.ConnectTimeout).toBe(5000);
    expect(second.routers.get('web')).toBe(first.routers.get('web'));
    expect(second.routers.get('api')).toBe(first.routers.get('api'));
    expect(second.routers).toBe(first.routers);
    expect(second.serviceDefaults).toBe(first.serviceDefaults);
    expect(second.resolvers).not.toBe(first.resolvers);
  });

  it('key order and bookkeeping do not count as a change', () => {
    const first = assembleTraffic(parse(docs));
    const reordered = Object.fromEntries(Object.entries(consul.serviceRouter).reverse());
    const second = assembleTraffic(
      parse([{ ...reordered, ModifyIndex: 99 }, consul.serviceResolver, consul.serviceDefaults]),
      first,
    );
    expect(second).toBe(first);
  });

  it('a removed entry is gone; a change in unsupported fields is a change', () => {
    const first = assembleTraffic(parse(docs));
    const fewer = assembleTraffic(parse([consul.serviceRouter, consul.serviceDefaults]), first);
    expect(fewer.resolvers.size).toBe(0);
    expect(fewer.routers).toBe(first.routers);
    const more = assembleTraffic(
      parse([consul.serviceRouter, consul.serviceDefaults, { Kind: 'mesh', Name: 'mesh' }]),
      fewer,
    );
    expect(more).not.toBe(fewer);
    expect(more.routers).toBe(fewer.routers);
    expect(more.unsupported).toEqual([{ kind: 'mesh', name: 'mesh', field: '' }]);
  });

  it('results are deeply frozen', () => {
    const config = assembleTraffic(parse(docs));
    const router = config.routers.get('web');
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(router?.Routes[0]?.Destination)).toBe(true);
    expect(() => {
      (router as { Name: string }).Name = 'x';
    }).toThrow(TypeError);
  });

  it('two entries with the same kind and name are an error naming both', () => {
    expect(() =>
      assembleTraffic(parse([consul.serviceRouter, consul.serviceDefaults, consul.serviceRouter])),
    ).toThrow(
      new TrafficDocumentError('traffic configuration', [
        'service-router/web: duplicate entry (entries[0] and entries[2])',
      ]),
    );
  });

  it('parseTrafficDocument passes the previous configuration on', () => {
    const first = parseTrafficDocument(docs);
    expect(parseTrafficDocument(docs, { previous: first })).toBe(first);
  });
});
