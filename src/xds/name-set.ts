// Resource-name subscriptions, interned: proxies that subscribe to the same names (nearly all
// of them, for EDS) share one set object, so a subscription costs each stream a pointer, and
// per-subscription work (the response block, its digest) is done once per snapshot.
import { WeakTable } from './weak-table.js';

export interface NameSet {
  readonly sorted: readonly string[];
  readonly has: (name: string) => boolean;
  readonly size: number;
}

// Held only while a stream (or a snapshot's block) uses the set, and bounded by sets and by
// names: the names are the clients' to choose, and one set can hold ~100,000 of them.
const interned = new WeakTable<NameSet>(20_000, 500_000);

export const EMPTY_NAMES: NameSet = internNames([]);

export function internNames(names: Iterable<string>): NameSet {
  const sorted = [...new Set(names)].sort();
  const key = sorted.join('\n');
  let set = interned.get(key);
  if (set) return set;
  const members = new Set(sorted);
  set = { sorted, has: (name) => members.has(name), size: sorted.length };
  interned.set(key, set, set.size);
  return set;
}

/** How many sets and names are interned (tests: bounded however many clients send). */
export function internedSize(): { sets: number; names: number } {
  const { entries, weight } = interned.size;
  return { sets: entries, names: weight };
}

/** Whether two sets hold the same names (interned sets are usually the same object). */
export function sameNames(a: NameSet, b: NameSet): boolean {
  if (a === b) return true;
  if (a.size !== b.size) return false;
  for (const name of a.sorted) if (!b.has(name)) return false;
  return true;
}
