// Resource-name subscriptions, interned: proxies that subscribe to the same names (nearly all
// of them, for EDS) share one set object, so a subscription costs each stream a pointer, and
// per-subscription work (the response block, its digest) is done once per snapshot.
import { DigestSum } from '../snapshot/version-digest.js';
import { WeakTable } from './weak-table.js';

export interface NameSet {
  readonly sorted: readonly string[];
  readonly has: (name: string) => boolean;
  readonly size: number;
}

// Held only while a stream (or a snapshot's block) uses the set, and bounded by sets and by
// names: the names are the clients' to choose, and one set can hold ~100,000 of them.
// Keyed by an order-independent digest of the names (version-digest.ts), checked name by
// name on a hit: a proxy's subscription is found without sorting and joining its ~1,000 EDS
// names, which every sidecar failing over to this replica lists (bench --workload failover).
const interned = new WeakTable<InternedNames>(20_000, 500_000);

interface InternedNames extends NameSet {
  /** Each name's place in `sorted`. */
  readonly index: ReadonlyMap<string, number>;
}

export const EMPTY_NAMES: NameSet = internNames([]);

export function internNames(names: Iterable<string>): NameSet {
  const list = Array.isArray(names) ? (names as readonly string[]) : [...names];
  const listed = keyOf(list);
  const hit = interned.get(listed);
  if (hit && holdsExactly(hit, list)) return hit;
  const sorted = [...new Set(list)].sort();
  // A list with repeats has another digest than its set: look the set up by its own.
  const key = sorted.length === list.length ? listed : keyOf(sorted);
  if (key !== listed) {
    const same = interned.get(key);
    if (same && holdsExactly(same, sorted)) return same;
  }
  const index = new Map(sorted.map((name, i) => [name, i] as const));
  const set: InternedNames = {
    sorted,
    has: (name) => index.has(name),
    size: sorted.length,
    index,
  };
  interned.set(key, set, set.size);
  return set;
}

function keyOf(names: readonly string[]): string {
  const sum = new DigestSum();
  for (const name of names) sum.addPair(name, '');
  const { count, lo, hi } = sum.digest;
  return `${count}.${lo}.${hi}`;
}

/** Whether `list` holds every name of `set` and no other (repeats allowed). */
function holdsExactly(set: InternedNames, list: readonly string[]): boolean {
  if (list.length < set.size) return false;
  const seen = new Uint8Array(set.size);
  let distinct = 0;
  for (const name of list) {
    const i = set.index.get(name);
    if (i === undefined) return false;
    if (seen[i] === 0) {
      seen[i] = 1;
      distinct++;
    }
  }
  return distinct === set.size;
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
