// shared-segments.ts: a proxy's own resource kept as pieces around the strings that name its
// instance. Joining gives back the exact bytes, whatever they are; two instances of a service
// share every piece but those names.
import { describe, expect, it } from 'vitest';
import { lazyResource } from '../../src/snapshot/lazy-resource.js';
import { encodeResource } from '../../src/snapshot/encoded-resource.js';
import { joinPieces, splitOn } from '../../src/snapshot/shared-segments.js';
import type { ResourceMessage } from '../../src/translate/types.js';

const inbound = (instance: string) =>
  ({
    name: `inbound|${instance}`,
    address: { socketAddress: { address: '0.0.0.0', portValue: 15006 } },
    filterChains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.tcp_proxy',
            typedConfig: {
              '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
              statPrefix: 'inbound_tcp',
              cluster: `local_app|${instance}`,
            },
          },
        ],
      },
    ],
    trafficDirection: 'INBOUND',
  }) as unknown as ResourceMessage;

describe('shared segments', () => {
  it('joins back the exact bytes, with names at the start, the end, repeated or absent', () => {
    const cases: [string, string[]][] = [
      ['web-1 and web-1 again, web-1', ['web-1']],
      ['no name here at all', ['web-1']],
      ['vers1on then web-1 then vers1on', ['web-1', 'vers1on']],
      ['naïve-é names in UTF-8: naïve-é!', ['naïve-é']],
      ['web-10 holds web-1', ['web-1', 'web-10']],
    ];
    for (const [text, variables] of cases) {
      const bytes = Buffer.from(text, 'utf8');
      const pieces = splitOn(bytes, variables);
      if (!variables.some((v) => text.includes(v))) {
        expect(pieces).toBeUndefined();
        continue;
      }
      expect(Buffer.compare(joinPieces(pieces!, variables), bytes), text).toBe(0);
    }
    // Bytes that are not UTF-8 text (a protobuf length 0xff) survive too.
    const binary = Buffer.from([0xff, 0x00, ...Buffer.from('web-1'), 0x80, 0xfe]);
    expect(Buffer.compare(joinPieces(splitOn(binary, ['web-1'])!, ['web-1']), binary)).toBe(0);
  });

  it('two instances of a service share every piece but their names', () => {
    const a = splitOn(Buffer.from('<<header>> web-1 <<middle>> web-1 <<tail>>'), ['web-1'])!;
    const b = splitOn(Buffer.from('<<header>> web-2 <<middle>> web-2 <<tail>>'), ['web-2'])!;
    expect(a).toHaveLength(5);
    a.forEach((piece, i) => expect(b[i]).toBe(piece)); // the same objects (or indexes)
  });

  for (const mode of ['sotwEntry', 'deltaEntry'] as const) {
    it(`an instance's own resource (${mode}) is the bytes encodeResource makes`, () => {
      for (const instance of ['web-1', 'web-2', 'api-0001-3']) {
        const r = lazyResource('listeners', `inbound|${instance}`, inbound(instance));
        const want = encodeResource('listeners', r.name, inbound(instance), r.version);
        expect(Buffer.compare(r[mode], want[mode])).toBe(0); // made
        expect(Buffer.compare(r[mode], want[mode])).toBe(0); // joined from its pieces
        expect(Buffer.compare(Buffer.from(r.value), Buffer.from(want.value))).toBe(0);
      }
    });
  }
});
