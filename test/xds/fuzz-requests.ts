// Generators of xDS requests for the fuzz tests (fast-check): as Envoy encodes them,
// assembled from raw fields in any order (repeated, wrong wire types, unknown fields and
// groups, empty and invalid UTF-8 strings, type URLs inside other fields, over-long tags), and
// byte-level mutations of both.
import fc from 'fast-check';
import protobuf from 'protobufjs';
import { RESOURCE_KINDS, TYPE_URLS, messageType } from '../../src/protos/envoy.js';

const requestType = messageType('envoy.service.discovery.v3.DiscoveryRequest');
const deltaType = messageType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
const nodeType = messageType('envoy.config.core.v3.Node');
const statusType = messageType('google.rpc.Status');

export const KNOWN_TYPE_URLS = RESOURCE_KINDS.map((k) => TYPE_URLS[k]);

const w = () => protobuf.Writer.create();
const bytesOf = (writer: protobuf.Writer) => Buffer.from(writer.finish());
const tag = (field: number, wire: number) => bytesOf(w().uint32((field << 3) | wire));
const delimited = (field: number, payload: Uint8Array) =>
  Buffer.concat([tag(field, 2), bytesOf(w().uint32(payload.length)), payload]);
const stringField = (field: number, text: string) => delimited(field, Buffer.from(text));

export const text = fc.oneof(
  fc.string({ maxLength: 24 }),
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  fc.constantFrom('', '*', 'world', 'hello', 'type.googleapis.com/'),
  fc.constantFrom(...KNOWN_TYPE_URLS),
);

export const nodeMessage = fc.record(
  {
    id: fc.string({ maxLength: 16 }),
    cluster: fc.string({ maxLength: 16 }),
    metadata: fc.dictionary(
      fc.string({ maxLength: 8 }),
      fc.oneof(fc.string({ maxLength: 12 }), fc.integer({ min: 0, max: 70_000 }), fc.boolean()),
      { maxKeys: 3 },
    ),
    locality: fc.record({ region: fc.string({ maxLength: 8 }), zone: fc.string({ maxLength: 8 }) }),
    userAgentName: fc.constantFrom('envoy', ''),
  },
  { requiredKeys: [] },
);

export const statusMessage = fc.record(
  { code: fc.integer({ min: -5, max: 20 }), message: fc.string({ maxLength: 40 }) },
  { requiredKeys: [] },
);

const encodeNode = (n: object) => nodeType.encode(nodeType.fromObject(n)).finish();
const encodeStatus = (s: object) => statusType.encode(statusType.fromObject(s)).finish();

/**
 * Known field numbers with other wire types, and unknown fields of every wire type (groups
 * included); delimited ones from field `minDelimited` up (below it: fields with a meaning).
 */
function otherWireTypes(minDelimited: number) {
  return [
    {
      weight: 2,
      arbitrary: fc
        .tuple(fc.integer({ min: 1, max: 40 }), fc.constantFrom(0, 1, 5), fc.integer())
        .map(([n, wire, v]) =>
          Buffer.concat([
            tag(n, wire),
            wire === 0
              ? bytesOf(w().int32(v))
              : wire === 1
                ? bytesOf(w().fixed64(v >>> 0))
                : bytesOf(w().fixed32(v >>> 0)),
          ]),
        ),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.integer({ min: 1, max: 40 }), fc.uint8Array({ maxLength: 6 }))
        .map(([n, inner]) => Buffer.concat([tag(n, 3), stringField(1, 'g'), inner, tag(n, 4)])),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.integer({ min: minDelimited, max: 2000 }), fc.uint8Array({ maxLength: 8 }))
        .map(([n, b]) => delimited(n, b)),
    },
  ];
}

const field: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 3, arbitrary: text.map((t) => stringField(3, t)) }, // a resource name
  { weight: 2, arbitrary: fc.constantFrom(...KNOWN_TYPE_URLS).map((t) => stringField(4, t)) },
  { weight: 1, arbitrary: text.map((t) => stringField(4, t)) },
  { weight: 1, arbitrary: text.map((t) => stringField(1, t)) },
  { weight: 1, arbitrary: text.map((t) => stringField(5, t)) },
  { weight: 1, arbitrary: nodeMessage.map((n) => delimited(2, encodeNode(n))) },
  { weight: 1, arbitrary: statusMessage.map((s) => delimited(6, encodeStatus(s))) },
  // A nonce (or version) whose text is a whole encoded type_url field.
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(1, 5, 6, 9), fc.constantFrom(...KNOWN_TYPE_URLS))
      .map(([n, t]) => delimited(n, stringField(4, t))),
  },
  ...otherWireTypes(7),
  // Invalid UTF-8 in a string field, and an over-long tag for a name.
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(1, 3, 4, 5), fc.constantFrom([0xff], [0xc3], [0xed, 0xa0, 0x80]))
      .map(([n, b]) => delimited(n, Buffer.from([0x61, ...b]))),
  },
  {
    weight: 1,
    arbitrary: text.map((t) =>
      Buffer.concat([Buffer.from([0x9a, 0x00]), bytesOf(w().string(t)).subarray(0)]),
    ),
  },
  {
    weight: 1,
    arbitrary: fc.uint8Array({ minLength: 1, maxLength: 4 }).map((b) => Buffer.from(b)),
  },
);

/** A request as Envoy writes it (fields in number order). */
export const envoyRequest = fc
  .record(
    {
      versionInfo: text,
      node: nodeMessage,
      resourceNames: fc.array(text, { maxLength: 40 }),
      typeUrl: fc.oneof(fc.constantFrom(...KNOWN_TYPE_URLS), text),
      responseNonce: text,
      errorDetail: statusMessage,
    },
    { requiredKeys: [] },
  )
  .map((r) => Buffer.from(requestType.encode(requestType.fromObject(r)).finish()));

/** Fields in any order, repeated, of any kind. */
export const assembled = fc.array(field, { maxLength: 30 }).map((fields) => Buffer.concat(fields));

type Mutation =
  | { kind: 'flip'; at: number; bit: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'splice'; at: number; field: Buffer };

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.uint8Array({ minLength: 1, maxLength: 5 }),
  }),
  fc.record({ kind: fc.constant('splice' as const), at: fc.nat(), field }),
);

export function mutate(bytes: Buffer, mutations: readonly Mutation[]): Buffer {
  let b = Buffer.from(bytes);
  for (const m of mutations) {
    const at = b.length === 0 ? 0 : m.at % (b.length + 1);
    if (m.kind === 'flip' && b.length > 0) b[at % b.length]! ^= 1 << m.bit;
    else if (m.kind === 'truncate') b = b.subarray(0, at);
    else if (m.kind === 'insert') b = Buffer.concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
    else if (m.kind === 'splice') b = Buffer.concat([b.subarray(0, at), m.field, b.subarray(at)]);
  }
  return b;
}

const mutated = fc
  .tuple(fc.oneof(envoyRequest, assembled), fc.array(mutation, { minLength: 1, maxLength: 3 }))
  .map(([bytes, ms]) => mutate(bytes, ms));

/** Any SotW request bytes: Envoy's, assembled, or mutated. */
export const anySotwRequest = fc.oneof(
  { weight: 3, arbitrary: envoyRequest },
  { weight: 3, arbitrary: assembled },
  { weight: 4, arbitrary: mutated },
);

/** A DeltaDiscoveryRequest as Envoy encodes it, with client-chosen names and versions. */
export const envoyDeltaRequest = fc
  .record(
    {
      node: nodeMessage,
      typeUrl: fc.oneof(fc.constantFrom(...KNOWN_TYPE_URLS), text),
      resourceNamesSubscribe: fc.array(text, { maxLength: 30 }),
      resourceNamesUnsubscribe: fc.array(text, { maxLength: 10 }),
      initialResourceVersions: fc.dictionary(text, text, { maxKeys: 5 }),
      responseNonce: text,
      errorDetail: statusMessage,
    },
    { requiredKeys: [] },
  )
  .map((r) => Buffer.from(deltaType.encode(deltaType.fromObject(r)).finish()));

/** Any delta request bytes: Envoy's, or mutated. */
export const anyDeltaRequest = fc.oneof(
  { weight: 6, arbitrary: envoyDeltaRequest },
  {
    weight: 4,
    arbitrary: fc
      .tuple(envoyDeltaRequest, fc.array(mutation, { minLength: 1, maxLength: 3 }))
      .map(([bytes, ms]) => mutate(bytes, ms)),
  },
);

const locatorType = messageType('envoy.service.discovery.v3.ResourceLocator');
const encodeLocator = (l: object) => locatorType.encode(locatorType.fromObject(l)).finish();
/** A map entry of initial_resource_versions: as Envoy writes it, or key/value swapped, or extra. */
const versionEntry = fc
  .tuple(text, text, fc.constantFrom('envoy', 'swapped', 'extra', 'key-only'))
  .map(([k, v, how]) => {
    const key = stringField(1, k);
    const value = stringField(2, v);
    const inner =
      how === 'envoy'
        ? Buffer.concat([key, value])
        : how === 'swapped'
          ? Buffer.concat([value, key])
          : how === 'extra'
            ? Buffer.concat([key, value, stringField(3, 'x')])
            : key;
    return delimited(5, inner);
  });

/** One DeltaDiscoveryRequest field, of any kind (as `field` is for SotW). */
const deltaField: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 3, arbitrary: text.map((t) => stringField(3, t)) }, // subscribe
  { weight: 1, arbitrary: text.map((t) => stringField(4, t)) }, // unsubscribe
  { weight: 2, arbitrary: fc.constantFrom(...KNOWN_TYPE_URLS).map((t) => stringField(2, t)) },
  { weight: 1, arbitrary: text.map((t) => stringField(2, t)) },
  { weight: 1, arbitrary: text.map((t) => stringField(6, t)) }, // nonce
  { weight: 2, arbitrary: versionEntry },
  { weight: 1, arbitrary: nodeMessage.map((n) => delimited(1, encodeNode(n))) },
  { weight: 1, arbitrary: statusMessage.map((s) => delimited(7, encodeStatus(s))) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(8, 9), text)
      .map(([n, name]) => delimited(n, encodeLocator({ name }))),
  },
  ...otherWireTypes(1),
  // Invalid UTF-8 in a string field (or inside a map entry), and raw bytes.
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(2, 3, 4, 6), fc.constantFrom([0xff], [0xc3], [0xed, 0xa0, 0x80]))
      .map(([n, b]) => delimited(n, Buffer.from([0x61, ...b]))),
  },
  {
    weight: 1,
    arbitrary: fc
      .constantFrom([0xff], [0xc3], [0xed, 0xa0, 0x80])
      .map((b) => delimited(5, Buffer.concat([stringField(1, 'k'), delimited(2, Buffer.from(b))]))),
  },
  {
    weight: 1,
    arbitrary: fc.uint8Array({ minLength: 1, maxLength: 4 }).map((b) => Buffer.from(b)),
  },
);

/** Delta fields in any order, repeated, of any kind. */
export const assembledDelta = fc
  .array(deltaField, { maxLength: 30 })
  .map((fields) => Buffer.concat(fields));

/** Any delta request bytes: Envoy's, assembled, or either mutated. */
export const anyDeltaRequestOfAnyShape = fc.oneof(
  { weight: 3, arbitrary: envoyDeltaRequest },
  { weight: 3, arbitrary: assembledDelta },
  {
    weight: 4,
    arbitrary: fc
      .tuple(
        fc.oneof(envoyDeltaRequest, assembledDelta),
        fc.array(mutation, { minLength: 1, maxLength: 3 }),
      )
      .map(([bytes, ms]) => mutate(bytes, ms)),
  },
);
