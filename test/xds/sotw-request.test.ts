// The SotW request decoder: fingerprints resource names from their bytes, decodes them lazily.
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { adsServiceDefinition, type DiscoveryRequest } from '../../src/xds/messages.js';
import { decodeSotwRequest } from '../../src/xds/sotw-request.js';
import { node, typeUrl } from '../support/ads-client.js';

const encode = adsServiceDefinition.StreamAggregatedResources!.requestSerialize as (
  r: DiscoveryRequest,
) => Buffer;

describe('decodeSotwRequest', () => {
  it('decodes every field the server reads', () => {
    const req = decodeSotwRequest(
      encode({
        versionInfo: 'v1',
        node: node('hello-1', 'hello', 16001),
        resourceNames: ['world', 'hello'],
        typeUrl: typeUrl('endpoints'),
        responseNonce: '7',
        errorDetail: { code: 3, message: 'bad' },
      }),
    );
    expect(req).toMatchObject({
      versionInfo: 'v1',
      typeUrl: typeUrl('endpoints'),
      responseNonce: '7',
      errorDetail: { code: 3, message: 'bad' },
      resourceNames: ['world', 'hello'],
    });
    expect(req.node).toEqual({
      id: 'hello-1',
      cluster: 'hello',
      metadata: { service: 'hello', outbound_port: 16001 },
    });
  });

  it('gives the same names the same digest, and any change a different one', () => {
    const digest = (names: string[], nonce = '1') =>
      decodeSotwRequest(
        encode({ typeUrl: typeUrl('endpoints'), responseNonce: nonce, resourceNames: names }),
      ).resourceNamesDigest;
    const names = Array.from({ length: 1000 }, (_, i) => `service-${i}`);
    expect(digest(names)).toBe(digest([...names], '2'));
    expect(digest(names)).not.toBe(digest([...names.slice(0, 999), 'service-x']));
    expect(digest(names)).not.toBe(digest(names.slice(0, 999)));
    expect(digest([])).toBe('');
  });
});

describe('decodeSotwRequest, unusual encodings', () => {
  const Writer = protobuf.Writer;
  const field = (w: protobuf.Writer, n: number, text: string) =>
    w.uint32((n << 3) | 2).string(text);

  it('handles names written after the type_url (fields out of order)', () => {
    const w = Writer.create();
    field(w, 4, typeUrl('endpoints'));
    field(w, 3, 'a');
    field(w, 5, '9');
    field(w, 3, 'b');
    const req = decodeSotwRequest(Buffer.from(w.finish()));
    expect(req).toMatchObject({
      typeUrl: typeUrl('endpoints'),
      responseNonce: '9',
      resourceNames: ['a', 'b'],
    });
    expect(req.resourceNamesDigest).not.toBe('');
  });

  it('is not fooled by a name that contains a type_url', () => {
    const w = Writer.create();
    field(w, 3, `x\u0022${typeUrl('clusters')}`);
    field(w, 3, 'y');
    field(w, 4, typeUrl('endpoints'));
    field(w, 5, '3');
    const req = decodeSotwRequest(Buffer.from(w.finish()));
    expect(req.resourceNames).toEqual([`x\u0022${typeUrl('clusters')}`, 'y']);
    expect(req).toMatchObject({ typeUrl: typeUrl('endpoints'), responseNonce: '3' });
  });
});
