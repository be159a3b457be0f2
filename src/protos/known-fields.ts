// Keys and enum values of a JSON-shape Envoy message that the descriptor does not know.
// protobufjs `fromObject` (src/protos/envoy.ts encodeMessage) drops them without a word: an
// unknown field, an unknown enum name, or an Any whose '@type' names no type we have (the
// whole payload goes). This finds them, so tests can refuse resources that would lose config.
import protobuf from 'protobufjs';
import { messageType, root } from './envoy.js';

const ANY = '.google.protobuf.Any';
// Struct is written as a plain object (src/protos/wrappers.ts): any key is data.
const STRUCT = '.google.protobuf.Struct';

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);

const member = (path: string, key: string): string => (path ? `${path}.${key}` : key);

function checkEnum(e: protobuf.Enum, value: unknown, path: string, out: string[]): void {
  if (typeof value === 'string' && !Object.hasOwn(e.values, value)) {
    out.push(`${path}: unknown ${e.fullName.slice(1)} value ${JSON.stringify(value)}`);
  }
}

function checkValue(field: protobuf.Field, value: unknown, path: string, out: string[]): void {
  const type = field.resolve().resolvedType;
  if (type instanceof protobuf.Type) walkMessage(type, value, path, out);
  else if (type instanceof protobuf.Enum) checkEnum(type, value, path, out);
}

function walkMessage(type: protobuf.Type, value: unknown, path: string, out: string[]): void {
  if (!isObject(value) || type.fullName === STRUCT) return;
  let fields = Object.entries(value);
  if (type.fullName === ANY && '@type' in value) {
    // An Any in JSON shape: '@type' beside the payload's own fields.
    const typeUrl = value['@type'];
    const name = typeof typeUrl === 'string' ? typeUrl.slice(typeUrl.lastIndexOf('/') + 1) : '';
    const payload = name ? root.lookup(name) : null;
    if (!(payload instanceof protobuf.Type)) {
      out.push(`${member(path, '@type')}: unknown type ${JSON.stringify(typeUrl)}`);
      return;
    }
    type = payload;
    fields = fields.filter(([key]) => key !== '@type');
  }
  for (const [key, v] of fields) {
    const field = Object.hasOwn(type.fields, key) ? type.fields[key] : undefined;
    if (!field) {
      out.push(member(path, key));
      continue;
    }
    if (v === null || v === undefined) continue;
    const at = member(path, key);
    if (field.map) {
      if (!isObject(v)) continue;
      for (const [k, entry] of Object.entries(v)) {
        checkValue(field, entry, `${at}[${JSON.stringify(k)}]`, out);
      }
    } else if (field.repeated) {
      if (!Array.isArray(v)) continue;
      v.forEach((element, i) => checkValue(field, element, `${at}[${i}]`, out));
    } else {
      checkValue(field, v, at, out);
    }
  }
}

/**
 * Paths of what `fromObject` would drop from `value`, a `typeName` message (full name or type
 * URL) in JSON shape: keys the descriptor does not know (`filterChains[0].filters[0].
 * typedConfig.httpFilterz`, map entries as `typedExtensionProtocolOptions["name"].x`), and as
 * `path: unknown ...` enum names it does not know and Any '@type's naming no loaded type.
 * Walks nested messages, repeated fields, map values and Any payloads; Struct is free-form.
 * Values of the wrong kind (a string for a message) are not reported: encoding rejects those.
 */
export function unknownFields(typeName: string, value: unknown): string[] {
  const out: string[] = [];
  walkMessage(messageType(typeName), value, '', out);
  return out;
}

/** Throws listing every unknown field of `value` (see unknownFields); `what` names it. */
export function assertKnownFields(typeUrl: string, value: unknown, what = ''): void {
  const unknown = unknownFields(typeUrl, value);
  if (unknown.length === 0) return;
  const name = typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
  throw new Error(
    `${name}${what ? ` ${what}` : ''} has fields Envoy's descriptor does not know ` +
      `(they would be dropped silently): ${unknown.join(', ')}`,
  );
}
