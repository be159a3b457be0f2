// The SotW request decoder: keeps resource names as bytes, decodes them lazily; and how a
// stream recognises a repeated subscription from those bytes.
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { adsServiceDefinition, type DiscoveryRequest } from '../../src/xds/messages.js';
import { NO_NAMES, requestedNames } from '../../src/xds/requested-names.js';
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

  it('recognises a repeated list by its bytes and shares the decoded set between streams', () => {
    const decode = (names: string[], nonce = '1') =>
      decodeSotwRequest(
        encode({ typeUrl: typeUrl('endpoints'), responseNonce: nonce, resourceNames: names }),
      );
    const names = Array.from({ length: 1000 }, (_, i) => `service-${i}`);
    const first = requestedNames(decode(names));
    expect(first.named.size).toBe(1000);
    // The same stream's next ACK, and another stream sending the same list.
    expect(requestedNames(decode([...names], '2'), first)).toBe(first);
    expect(requestedNames(decode([...names], '3'))).toBe(first);
    const renamed = requestedNames(decode([...names.slice(0, 999), 'service-x']), first);
    expect(renamed).not.toBe(first);
    expect(renamed.named.has('service-x')).toBe(true);
    expect(renamed.named.has('service-999')).toBe(false);
    expect(requestedNames(decode(names.slice(0, 999)), first).named.size).toBe(999);
    // Another order is other bytes but the same set of names.
    const reversed = requestedNames(decode([...names].reverse()), first);
    expect(reversed).not.toBe(first);
    expect(reversed.named).toBe(first.named);
    expect(requestedNames(decode([]), first)).toBe(NO_NAMES);
    expect(requestedNames(decode(['*', 'a']))).toMatchObject({ star: true, count: 2 });
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
    expect(requestedNames(req).named.sorted).toEqual(['a', 'b']);
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
