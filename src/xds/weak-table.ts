// A table of shared objects keyed by what clients send (their subscriptions), holding each
// only as long as something else does. Interning lets a thousand streams share one object;
// once the last stream holding it is gone, so is the entry, so requests from clients that
// went away leave nothing behind. Bounded by entries and by a weight (names, bytes) as well,
// for the objects still in use: past a bound the oldest entry is dropped from the table (its
// holders keep it; it is just no longer shared with newcomers).
export class WeakTable<V extends object> {
  private readonly entries = new Map<
    string,
    { readonly ref: WeakRef<V>; readonly weight: number }
  >();
  private total = 0;
  private readonly registry = new FinalizationRegistry<{ key: string; ref: WeakRef<V> }>(
    ({ key, ref }) => {
      const entry = this.entries.get(key);
      if (entry?.ref !== ref) return; // replaced or dropped since
      this.entries.delete(key);
      this.total -= entry.weight;
    },
  );

  constructor(
    private readonly maxEntries: number,
    private readonly maxWeight: number,
  ) {}

  /** The live object under `key`, made the most recently used. */
  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    const value = entry?.ref.deref();
    if (!entry || !value) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return value;
  }

  set(key: string, value: V, weight: number): void {
    const old = this.entries.get(key);
    if (old) {
      this.entries.delete(key);
      this.total -= old.weight;
    }
    const ref = new WeakRef(value);
    this.entries.set(key, { ref, weight });
    this.total += weight;
    this.registry.register(value, { key, ref });
    while (this.entries.size > this.maxEntries || this.total > this.maxWeight) {
      const [oldest, entry] = this.entries.entries().next().value as [
        string,
        { ref: WeakRef<V>; weight: number },
      ];
      if (entry.ref === ref) break; // one object over the whole budget is still handed out
      this.entries.delete(oldest);
      this.total -= entry.weight;
    }
  }

  /** Entries (live or awaiting collection) and their weight. */
  get size(): { entries: number; weight: number } {
    return { entries: this.entries.size, weight: this.total };
  }
}
