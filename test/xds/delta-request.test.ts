// The delta request decoder's fast path for initial_resource_versions reads exactly what
// protobufjs reads: the same fields and versions for requests as Envoy writes them, the same
// result or the same refusal for 5,000 seeded mutations of them.
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { JSON_OPTIONS, messageType } from '../../src/protos/envoy.js';
import { digestOf, sameDigest } from '../../src/snapshot/version-digest.js';
import { decodeDeltaRequest, type DecodedDeltaRequest } from '../../src/xds/delta-request.js';

const type = messageType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
const whole = (bytes: Buffer) =>
  type.toObject(type.decode(bytes), JSON_OPTIONS) as Record<string, unknown>;

/** The fast path's result in protobufjs's shape (its entries as the plain object). */
function asObject(req: DecodedDeltaRequest): Record<string, unknown> {
  const { held, ...rest } = req;
  if (!held) return rest;
  return { ...rest, initialResourceVersions: Object.fromEntries(held.toMap()) };
}

function encode(message: Record<string, unknown>): Buffer {
  return Buffer.from(type.encode(type.fromObject(message)).finish());
}

const versions = (n: number): Record<string, string> =>
  Object.fromEntries(
    Array.from({ length: n }, (_, i) => [`outbound|http|svc-${i}.mesh`, `v${i}-${i * 7919}`]),
  );

const reconnect = (n = 1000) =>
  encode({
    node: { id: 'web-1', cluster: 'web', metadata: { service: 'web' } },
    typeUrl: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
    resourceNamesSubscribe: ['a', 'b'],
    initialResourceVersions: versions(n),
  });

describe('delta request decoding', () => {
  it('reads a reconnect request into a Map, the rest as protobufjs does', () => {
    const bytes = reconnect();
    const fast = decodeDeltaRequest(bytes);
    expect(fast.held?.count).toBe(1000);
    expect(fast.held?.toMap().size).toBe(1000);
    expect(fast.initialResourceVersions).toBeUndefined();
    expect(asObject(fast)).toEqual(whole(bytes));
  });

  it('takes entries interleaved with other fields, and an empty key or version', () => {
    const entry = (k: string, v: string) => encode({ initialResourceVersions: { [k]: v } }); // just field 5
    const bytes = Buffer.concat([
      entry('x', '1'),
      encode({ typeUrl: 't', responseNonce: 'n' }),
      entry('', ''),
      entry('x', '2'), // a repeated key: the last wins
    ]);
    const fast = decodeDeltaRequest(bytes);
    expect([...fast.held!.toMap()]).toEqual([
      ['x', '2'],
      ['', ''],
    ]);
    expect(asObject(fast)).toEqual(whole(bytes));
  });

  it('leaves entries written another way (value first, extra fields) to protobufjs', () => {
    const w = protobuf.Writer.create();
    w.uint32((5 << 3) | 2).fork();
    w.uint32((2 << 3) | 2).string('version');
    w.uint32((1 << 3) | 2).string('name');
    w.ldelim();
    const bytes = Buffer.from(w.finish());
    const fast = decodeDeltaRequest(bytes);
    expect(fast.held).toBeUndefined();
    expect(fast).toEqual(whole(bytes));
    expect(fast.initialResourceVersions).toEqual({ name: 'version' });
  });

  it('digests the entries as digestOf digests the same pairs, in any order, UTF-8 too', () => {
    const pairs: Record<string, string> = { ...versions(50), 'héllo|ünïcode': 'v€1', '': '' };
    const held = decodeDeltaRequest(encode({ initialResourceVersions: pairs })).held!;
    const asResources = (o: Record<string, string>) =>
      Object.entries(o).map(([name, version]) => ({ name, version }));
    expect(held.digest).toEqual(digestOf(asResources(pairs)));
    expect(held.digest).toEqual(digestOf(asResources(pairs).reverse()));
    // One version changed, one name changed, one pair missing: each a different digest.
    const changed = [
      { ...pairs, 'outbound|http|svc-7.mesh': 'v7-55434' },
      { ...pairs, 'outbound|http|svc-7.mesh ': pairs['outbound|http|svc-7.mesh']! },
      Object.fromEntries(Object.entries(pairs).slice(1)),
    ];
    for (const other of changed) {
      expect(sameDigest(digestOf(asResources(other)), held.digest)).toBe(false);
    }
    // The name/version boundary is part of each pair's hash.
    expect(
      sameDigest(
        digestOf([{ name: 'ab', version: 'c' }]),
        digestOf([{ name: 'a', version: 'bc' }]),
      ),
    ).toBe(false);
  });

  it('refuses what protobufjs refuses (invalid UTF-8, truncation)', () => {
    const good = reconnect(3);
    const bad = Buffer.from(good);
    bad[good.indexOf('svc-1')] = 0xff; // inside a key
    expect(() => whole(bad)).toThrow();
    expect(() => decodeDeltaRequest(bad)).toThrow();
    const cut = good.subarray(0, good.length - 3);
    expect(() => whole(cut)).toThrow();
    expect(() => decodeDeltaRequest(cut)).toThrow();
  });

  it('agrees with protobufjs on 5,000 seeded mutations of reconnect requests', () => {
    const base = reconnect(4);
    const mutation = fc.record({
      at: fc.nat(base.length - 1),
      kind: fc.constantFrom('set', 'insert', 'delete', 'truncate'),
      byte: fc.integer({ min: 0, max: 255 }),
    });
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (steps) => {
        let bytes = Buffer.from(base);
        for (const s of steps) {
          const at = Math.min(s.at, Math.max(0, bytes.length - 1));
          if (s.kind === 'set') bytes[at] = s.byte;
          else if (s.kind === 'insert')
            bytes = Buffer.concat([bytes.subarray(0, at), Buffer.of(s.byte), bytes.subarray(at)]);
          else if (s.kind === 'delete')
            bytes = Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1)]);
          else bytes = bytes.subarray(0, at);
        }
        let expected: Record<string, unknown> | Error;
        try {
          expected = whole(bytes);
        } catch (err) {
          expected = err as Error;
        }
        let actual: Record<string, unknown> | Error;
        try {
          actual = asObject(decodeDeltaRequest(bytes));
        } catch (err) {
          actual = err as Error;
        }
        if (expected instanceof Error) expect(actual).toBeInstanceOf(Error);
        else expect(actual).toEqual(expected);
      }),
      { seed: 12, numRuns: 5000 },
    );
  });
});
