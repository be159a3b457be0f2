// The lazily built Envoy Root (src/protos/lazy-root.ts) against protobufjs's own fromJSON: every
// message, field, oneof and enum resolves to the same thing, and a lookup builds only what the
// looked-up message needs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../src/package-root.js';
import { lazyRootFromJSON } from '../../src/protos/lazy-root.js';

const text = readFileSync(join(packageRoot(), 'gen', 'envoy-protos.json'), 'utf8');
const parse = (): protobuf.INamespace => JSON.parse(text) as protobuf.INamespace;

type WithFeatures = { _features: unknown };
const features = (o: protobuf.ReflectionObject): unknown =>
  (o as unknown as WithFeatures)._features;

function definitions(ns: protobuf.NamespaceBase, out: protobuf.ReflectionObject[] = []) {
  for (const child of ns.nestedArray) {
    if (child instanceof protobuf.Type || child instanceof protobuf.Enum) out.push(child);
    if (child instanceof protobuf.Namespace) definitions(child, out);
  }
  return out;
}

/** What encoding and decoding read of a field. */
function fieldShape(f: protobuf.Field) {
  f.resolve();
  return {
    name: f.name,
    id: f.id,
    rule: f.rule,
    map: f.map,
    keyType: (f as unknown as { keyType?: string }).keyType,
    repeated: f.repeated,
    packed: f.packed,
    optional: f.optional,
    hasPresence: Boolean((f as unknown as { hasPresence: unknown }).hasPresence),
    resolvedType: f.resolvedType?.fullName ?? null,
    typeDefault: f.typeDefault,
    defaultValue: f.defaultValue,
    partOf: f.partOf?.name ?? null,
    options: f.options,
    features: features(f),
  };
}

describe('lazy Envoy root', () => {
  it('resolves every message, field, oneof and enum as Root.fromJSON does', () => {
    const eager = protobuf.Root.fromJSON(parse());
    const lazy = lazyRootFromJSON(parse());
    const all = definitions(eager);
    expect(all.length).toBeGreaterThan(400);
    for (const e of all) {
      const l = lazy.lookup(e.fullName);
      expect(l?.constructor, e.fullName).toBe(e.constructor);
      expect(features(l!), e.fullName).toEqual(features(e));
      if (e instanceof protobuf.Enum) {
        expect((l as protobuf.Enum).values, e.fullName).toEqual(e.values);
        continue;
      }
      const lt = l as protobuf.Type;
      const et = e as protobuf.Type;
      expect(lt.fieldsArray.map(fieldShape), e.fullName).toEqual(et.fieldsArray.map(fieldShape));
      expect(Object.keys(lt.oneofs ?? {}), e.fullName).toEqual(Object.keys(et.oneofs ?? {}));
      for (const [name, o] of Object.entries(et.oneofs ?? {})) {
        expect(lt.oneofs[name]!.oneof, `${e.fullName}.${name}`).toEqual(o.oneof);
        expect(features(lt.oneofs[name]!)).toEqual(features(o));
      }
    }
  });

  it('builds only what a looked-up message reaches through the fields it encodes', () => {
    const lazy = lazyRootFromJSON(parse());
    const cluster = lazy.lookupType('envoy.config.cluster.v3.Cluster');
    const bytes = cluster
      .encode(cluster.fromObject({ name: 'web', connectTimeout: { seconds: 1 }, type: 'EDS' }))
      .finish();
    const eager = protobuf.Root.fromJSON(parse()).lookupType('envoy.config.cluster.v3.Cluster');
    expect(Buffer.from(bytes)).toEqual(
      Buffer.from(
        eager
          .encode(eager.fromObject({ name: 'web', connectTimeout: { seconds: 1 }, type: 'EDS' }))
          .finish(),
      ),
    );
    const built = definitions(lazy).length; // nestedArray reads build everything: count first
    expect(built).toBeGreaterThan(400);
    const fresh = lazyRootFromJSON(parse());
    fresh.lookupType('envoy.config.cluster.v3.Cluster').encode({ name: 'web' });
    let count = 0;
    const walk = (ns: protobuf.NamespaceBase): void => {
      for (const name of Object.keys(ns.nested ?? {})) {
        const d = Object.getOwnPropertyDescriptor(ns.nested, name)!;
        if (d.get) continue; // not built
        count++;
        if (d.value instanceof protobuf.Namespace) walk(d.value);
      }
    };
    walk(fresh);
    // The Cluster, what its fields name directly, and the package namespaces: far from 448 + 52.
    expect(count).toBeLessThan(250);
  });
});
