// Envoy's JSON conventions for well-known types, so resources read the way Envoy's docs and
// config_dump show them: Duration as "1.5s", Struct as a plain object (both ways).
// protobufjs consults these wrappers for fromObject/toObject(json) of the named types.
import protobuf from 'protobufjs';

type Wrapper = protobuf.IWrapper;

function durationToString(seconds: number, nanos: number): string {
  const total = seconds + nanos / 1e9;
  return `${Number(total.toFixed(9))}s`;
}

// Decoding only: protobufjs rejects a non-object before a wrapper's fromObject runs, so
// translators write durations as { seconds, nanos }. (protobufjs requires both converters,
// hence the pass-through.)
const durationWrapper: Wrapper = {
  fromObject(this: protobuf.Type, object: { [k: string]: unknown }) {
    return this.fromObject(object);
  },
  toObject(this: protobuf.Type, message: protobuf.Message, options?: protobuf.IConversionOptions) {
    if (options?.json) {
      const m = message as unknown as { seconds?: number | { toNumber(): number }; nanos?: number };
      const seconds = typeof m.seconds === 'object' ? m.seconds.toNumber() : (m.seconds ?? 0);
      return durationToString(seconds, m.nanos ?? 0) as unknown as { [k: string]: unknown };
    }
    return this.toObject(message, options);
  },
};

type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

function toValue(v: JsonValue): object {
  if (v === null) return { nullValue: 0 };
  if (typeof v === 'boolean') return { boolValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'string') return { stringValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(toValue) } };
  return { structValue: toStruct(v) };
}

// Keys sorted: protobufjs writes map entries in insertion order, and versions are content
// hashes, so the same metadata must always produce the same bytes.
function toStruct(o: { [k: string]: JsonValue }): object {
  const fields: Record<string, object> = {};
  for (const key of Object.keys(o).sort()) fields[key] = toValue(o[key] as JsonValue);
  return { fields };
}

interface ValueMsg {
  nullValue?: number;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: StructMsg;
  listValue?: { values?: ValueMsg[] };
}
interface StructMsg {
  fields?: Record<string, ValueMsg>;
}

// Decoded messages carry defaults on their prototype ("" for every string), so which member
// of the Value oneof is set is told by own properties only.
const has = (v: object, key: string): boolean => Object.prototype.hasOwnProperty.call(v, key);

function fromValue(v: ValueMsg): JsonValue {
  if (has(v, 'structValue') && v.structValue) return fromStruct(v.structValue);
  if (has(v, 'listValue') && v.listValue) return (v.listValue.values ?? []).map(fromValue);
  if (has(v, 'stringValue')) return v.stringValue ?? '';
  if (has(v, 'numberValue')) return v.numberValue ?? 0;
  if (has(v, 'boolValue')) return v.boolValue ?? false;
  return null;
}

export function fromStruct(s: StructMsg): { [k: string]: JsonValue } {
  const out: { [k: string]: JsonValue } = {};
  for (const key of Object.keys(s.fields ?? {}).sort()) out[key] = fromValue(s.fields![key]!);
  return out;
}

const structWrapper: Wrapper = {
  fromObject(this: protobuf.Type, object: { [k: string]: unknown }) {
    if (object && typeof object === 'object' && !('fields' in object)) {
      return this.fromObject(toStruct(object as { [k: string]: JsonValue }));
    }
    return this.fromObject(object);
  },
  toObject(this: protobuf.Type, message: protobuf.Message, options?: protobuf.IConversionOptions) {
    if (options?.json) return fromStruct(message as unknown as StructMsg);
    return this.toObject(message, options);
  },
};

let installed = false;
export function installWrappers(): void {
  if (installed) return;
  installed = true;
  protobuf.wrappers['.google.protobuf.Duration'] = durationWrapper;
  protobuf.wrappers['.google.protobuf.Struct'] = structWrapper;
}
