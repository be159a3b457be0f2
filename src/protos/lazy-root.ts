// A protobufjs Root whose messages and enums are built on first use (issue 16, idle RSS).
//
// `Root.fromJSON` builds a reflection object for every message, field and enum of the Envoy
// descriptor (448 messages, 1,708 fields) and resolves them all, caching every name it looked up
// in every namespace on the way: ~3.4 MiB of heap for the life of the process, of which an idle
// control plane with the example catalog encodes 35 messages. Here only the package namespaces
// are built up front; each top-level message or enum stays a JSON string behind a getter on its
// namespace's `nested` until protobufjs first looks it up (field resolution, `lookupType`, an Any
// payload's type). Field types are rewritten to absolute names first, so a lookup goes straight
// down from the root instead of searching (and so building) every sibling in the package.
import protobuf from 'protobufjs';

type Json = { [key: string]: unknown };
type NamespaceJson = Json & { nested?: Record<string, Json>; options?: Json };
type FieldJson = Json & { type: string };

/** A descriptor entry protobufjs builds as a Type, Enum or Service (anything but a package). */
function isDefinition(json: Json): boolean {
  return json.fields !== undefined || json.values !== undefined || json.methods !== undefined;
}

/** Full names (".pkg.Msg.Nested") of every message, enum and package in the descriptor. */
function collectNames(json: NamespaceJson, prefix: string, into: Set<string>): Set<string> {
  for (const [name, child] of Object.entries(json.nested ?? {})) {
    const full = `${prefix}.${name}`;
    into.add(full);
    collectNames(child as NamespaceJson, full, into);
  }
  return into;
}

/**
 * The absolute name of `ref` used in the message `scope` (".pkg.Msg"), by protobuf's scoping: the
 * innermost enclosing scope that holds it. Scalars and names not found stay as they were (then
 * protobufjs resolves them itself, and reports what it cannot).
 */
function absolute(ref: string, scope: string, names: Set<string>): string {
  if (ref.startsWith('.')) return ref;
  for (let s = scope; ; s = s.slice(0, s.lastIndexOf('.'))) {
    const candidate = `${s}.${ref}`;
    if (names.has(candidate)) return candidate;
    if (s === '') return ref;
  }
}

/** Rewrites the field types of `json` (a message and its nested messages) to absolute names. */
function qualifyFields(json: Json, scope: string, names: Set<string>): void {
  if (json.fields) {
    for (const field of Object.values(json.fields as Record<string, FieldJson>)) {
      field.type = absolute(field.type, scope, names);
    }
  }
  for (const [name, child] of Object.entries((json as NamespaceJson).nested ?? {})) {
    qualifyFields(child, `${scope}.${name}`, names);
  }
}

/** Resolved features of `ns` and its parents no longer need a recursive pass. */
function markFeaturesResolved(ns: protobuf.NamespaceBase | null): void {
  type Flags = { _needsRecursiveFeatureResolution: boolean };
  for (let p = ns; p; p = p.parent)
    (p as unknown as Flags)._needsRecursiveFeatureResolution = false;
}

/** Puts `name` behind a getter on `ns.nested` that builds it from `text` on first access. */
function defineLazy(ns: protobuf.Namespace, name: string, text: string): void {
  const nested = ns.nested!;
  Object.defineProperty(nested, name, {
    configurable: true,
    enumerable: true,
    get(): protobuf.ReflectionObject {
      delete nested[name];
      ns.addJSON({ [name]: JSON.parse(text) as Json });
      const built = nested[name]!;
      // What `resolveAll` did at load: this object's edition features (its parents' were resolved
      // with the skeleton). Left flagged, protobufjs would walk, and so build, the whole tree.
      (
        built as unknown as { _resolveFeaturesRecursive(e?: string): void }
      )._resolveFeaturesRecursive((ns as unknown as { _edition?: string })._edition);
      markFeaturesResolved(ns);
      return built;
    },
  });
}

/** Builds the package namespaces of `json` under `ns`; definitions become lazy entries. */
function addSkeleton(
  ns: protobuf.Namespace,
  json: NamespaceJson,
  lazy: [protobuf.Namespace, string, string][],
): void {
  for (const [name, child] of Object.entries(json.nested ?? {})) {
    if (isDefinition(child)) {
      lazy.push([ns, name, JSON.stringify(child)]);
      continue;
    }
    const pkg = new protobuf.Namespace(name, (child as NamespaceJson).options);
    ns.add(pkg);
    addSkeleton(pkg, child as NamespaceJson, lazy);
  }
}

/**
 * A Root equivalent to `protobuf.Root.fromJSON(json)` (test/protos/lazy-root.test.ts compares
 * every message, field and enum), building each top-level definition on first lookup. `json` is
 * modified (field types made absolute).
 */
export function lazyRootFromJSON(descriptor: protobuf.INamespace): protobuf.Root {
  const json = descriptor as NamespaceJson;
  const names = collectNames(json, '', new Set());
  for (const [name, child] of Object.entries(json.nested ?? {}))
    qualifyFields(child, `.${name}`, names);
  const root = new protobuf.Root();
  if (json.options) root.setOptions(json.options);
  const lazy: [protobuf.Namespace, string, string][] = [];
  addSkeleton(root, json, lazy);
  root.resolveAll(); // the packages' features; nothing else is built yet
  for (const [ns, name, text] of lazy) {
    ns.nested ??= {};
    defineLazy(ns, name, text);
    (ns as unknown as { _nestedArray: unknown })._nestedArray = null;
  }
  return root;
}
