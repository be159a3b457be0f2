// A read-only map of up to four entries kept in the object's own fields. A proxy's own
// resources are one to three per kind; a Map of them costs ~180 B before its first entry (its
// hash table), this ~100 B with four. Larger maps stay Maps.

const MAX = 4;

class SmallMap<V> implements ReadonlyMap<string, V> {
  readonly size: number;
  private readonly k0: string | undefined;
  private readonly v0: V | undefined;
  private readonly k1: string | undefined;
  private readonly v1: V | undefined;
  private readonly k2: string | undefined;
  private readonly v2: V | undefined;
  private readonly k3: string | undefined;
  private readonly v3: V | undefined;

  constructor(entries: readonly (readonly [string, V])[]) {
    this.size = entries.length;
    [this.k0, this.v0] = entries[0] ?? [undefined, undefined];
    [this.k1, this.v1] = entries[1] ?? [undefined, undefined];
    [this.k2, this.v2] = entries[2] ?? [undefined, undefined];
    [this.k3, this.v3] = entries[3] ?? [undefined, undefined];
  }

  get(key: string): V | undefined {
    if (key === this.k0) return this.v0;
    if (key === this.k1) return this.v1;
    if (key === this.k2) return this.v2;
    if (key === this.k3) return this.v3;
    return undefined;
  }

  has(key: string): boolean {
    // Unused fields hold undefined: counted by size, not compared.
    const n = this.size;
    return (
      (n > 0 && key === this.k0) ||
      (n > 1 && key === this.k1) ||
      (n > 2 && key === this.k2) ||
      (n > 3 && key === this.k3)
    );
  }

  private list(): [string, V][] {
    const out: [string, V][] = [];
    if (this.size > 0) out.push([this.k0!, this.v0!]);
    if (this.size > 1) out.push([this.k1!, this.v1!]);
    if (this.size > 2) out.push([this.k2!, this.v2!]);
    if (this.size > 3) out.push([this.k3!, this.v3!]);
    return out;
  }

  entries(): MapIterator<[string, V]> {
    return this.list().values();
  }

  keys(): MapIterator<string> {
    return this.list()
      .map(([k]) => k)
      .values();
  }

  values(): MapIterator<V> {
    return this.list()
      .map(([, v]) => v)
      .values();
  }

  [Symbol.iterator](): MapIterator<[string, V]> {
    return this.entries();
  }

  forEach(fn: (value: V, key: string, map: ReadonlyMap<string, V>) => void): void {
    for (const [k, v] of this.list()) fn(v, k, this);
  }
}

/**
 * `map`'s entries in the smallest form that reads the same: a SmallMap for up to four (in
 * the same order), `map` itself beyond. Keys are distinct (they come from a Map).
 */
export function compactMap<V>(map: ReadonlyMap<string, V>): ReadonlyMap<string, V> {
  return map.size <= MAX ? new SmallMap([...map]) : map;
}
