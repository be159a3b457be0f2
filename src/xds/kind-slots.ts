// Per-stream state per resource type in one field per kind, read like a Map. A Map of four
// entries is ~180 B of hash table a stream (bench --heap-snapshot, W9); this is 64 B.
import { RESOURCE_KINDS, type ResourceKind } from '../protos/envoy.js';

export class KindSlots<T> implements Iterable<[ResourceKind, T]> {
  private clusters: T | undefined = undefined;
  private endpoints: T | undefined = undefined;
  private listeners: T | undefined = undefined;
  private routes: T | undefined = undefined;
  private virtualHosts: T | undefined = undefined;
  private secrets: T | undefined = undefined;

  get(kind: ResourceKind): T | undefined {
    return this[kind];
  }

  set(kind: ResourceKind, value: T): void {
    this[kind] = value;
  }

  has(kind: ResourceKind): boolean {
    return this[kind] !== undefined;
  }

  get size(): number {
    let n = 0;
    for (const kind of RESOURCE_KINDS) if (this[kind] !== undefined) n++;
    return n;
  }

  /**
   * The kinds set, in RESOURCE_KINDS order (not the order they were set in). Made as an array:
   * a generator was ~10× slower than a Map's iterator, and streams iterate on every change.
   * (Hot paths loop over RESOURCE_KINDS with get() and allocate nothing.)
   */
  entries(): IterableIterator<[ResourceKind, T]> {
    const out: [ResourceKind, T][] = [];
    for (const kind of RESOURCE_KINDS) {
      const value = this[kind];
      if (value !== undefined) out.push([kind, value]);
    }
    return out.values();
  }

  [Symbol.iterator](): IterableIterator<[ResourceKind, T]> {
    return this.entries();
  }

  keys(): IterableIterator<ResourceKind> {
    return RESOURCE_KINDS.filter((kind) => this[kind] !== undefined).values();
  }

  values(): IterableIterator<T> {
    const out: T[] = [];
    for (const kind of RESOURCE_KINDS) {
      const value = this[kind];
      if (value !== undefined) out.push(value);
    }
    return out.values();
  }
}
