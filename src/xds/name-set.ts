// Resource-name subscriptions, interned: proxies that subscribe to the same names (nearly all
// of them, for EDS) share one set object, so a subscription costs each stream a pointer, and
// per-subscription work (the response block, its digest) is done once per snapshot.
export interface NameSet {
  readonly sorted: readonly string[];
  readonly has: (name: string) => boolean;
  readonly size: number;
}

const MAX_INTERNED = 20_000;
const interned = new Map<string, NameSet>();

export const EMPTY_NAMES: NameSet = internNames([]);

export function internNames(names: Iterable<string>): NameSet {
  const sorted = [...new Set(names)].sort();
  const key = sorted.join('\n');
  let set = interned.get(key);
  if (set) {
    // Refresh its place in the LRU order.
    interned.delete(key);
    interned.set(key, set);
    return set;
  }
  const members = new Set(sorted);
  set = { sorted, has: (name) => members.has(name), size: sorted.length };
  interned.set(key, set);
  if (interned.size > MAX_INTERNED) interned.delete(interned.keys().next().value as string);
  return set;
}

/** Whether two sets hold the same names (interned sets are usually the same object). */
export function sameNames(a: NameSet, b: NameSet): boolean {
  if (a === b) return true;
  if (a.size !== b.size) return false;
  for (const name of a.sorted) if (!b.has(name)) return false;
  return true;
}
