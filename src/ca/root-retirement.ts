// When the leader of a shared store may drop a retiring root. Every replica publishes which
// roots its live leaves are signed by (a record tied to its liveness: a Consul session, an
// etcd lease), so the leader can wait for the last leaf anywhere instead of trusting a timer.
// The rule, a pure function so it can be tested on its own:
//   (a) the minimum rotation window has passed (retiringSince + delay + spread + retire delay)
//   AND (b) no live replica's record names the root (with a leaf still valid), or
//   (c) the hard upper bound has passed: the longest leaf lifetime since the root stopped
//   signing, after which every leaf it signed has expired anyway.
// A record that cannot be read blocks (b): a failed read never lets a root go.
import type { LeafRecord } from './types.js';
import { compareStrings } from '../text-order.js';

/** One root a replica still has leaves of. */
export interface RootHolding {
  readonly serial: string;
  /** How many of its current leaves that root signed. */
  readonly leaves: number;
  /** When the last of them expires (ISO 8601). */
  readonly until: string;
}

/** A replica's published record: the roots its live leaves are signed by. */
export interface HolderRecord {
  readonly replica: string;
  readonly roots: readonly RootHolding[];
}

/** One record as read from the store: parsed, or why it could not be. */
export type HolderRead =
  | { readonly key: string; readonly record: HolderRecord }
  | { readonly key: string; readonly error: string };

/** The replicas' records in a shared store (KvCaStore implements it). */
export interface LeafHolders {
  /** This replica's id: the leader judges its own leaves from memory, not from its record. */
  readonly replicaId: string;
  /** Publishes this replica's holdings (written when they change; empty: it holds none). */
  publishLeafRoots(holdings: readonly RootHolding[]): Promise<void>;
  /** Every live replica's record; one that does not parse is reported, never skipped. */
  readLeafRoots(): Promise<HolderRead[]>;
}

export interface RetirementInput {
  readonly serial: string;
  readonly now: number;
  /** When the root stopped signing (ms since epoch). */
  readonly retiringSince: number;
  /** (a): rotation delay + spread + retire delay. */
  readonly minWindowMs: number;
  /** (c): the longest leaf lifetime (taken as at least minWindowMs). */
  readonly hardBoundMs: number;
  /** The records read; undefined when the store keeps none (one replica: the window alone). */
  readonly holders: readonly HolderRead[] | undefined;
  /** Records of this replica are skipped (its leaves are checked from memory). */
  readonly self?: string;
}

export type RetirementReason =
  /** (a) with a store that keeps no records: today's single-replica rule. */
  | 'window'
  /** (a) and (b). */
  | 'no-holders'
  /** (c). */
  | 'hard-bound';

export type RetirementDecision =
  | {
      readonly drop: true;
      readonly reason: RetirementReason;
      /** At the hard bound: the replicas (and unreadable keys) that still named the root. */
      readonly overridden: readonly string[];
    }
  | {
      readonly drop: false;
      /** What it waits for: the window, replicas holding leaves, or records it cannot read. */
      readonly waitFor: 'window' | 'holders' | 'unreadable';
      /** Replicas whose records name the root with a leaf still valid. */
      readonly holders: readonly string[];
      readonly unreadable: ReadonlyArray<{ readonly key: string; readonly error: string }>;
      /** The earliest moment the answer can change by time alone (window end, hard bound). */
      readonly recheckAt: number;
    };

export function decideRetirement(input: RetirementInput): RetirementDecision {
  const windowEnd = input.retiringSince + input.minWindowMs;
  const hardEnd = input.retiringSince + Math.max(input.minWindowMs, input.hardBoundMs);
  const reads = (input.holders ?? []).filter(
    (r) => !('record' in r) || r.record.replica !== input.self,
  );
  const unreadable = reads.flatMap((r) => ('error' in r ? [{ key: r.key, error: r.error }] : []));
  const holders = reads
    .flatMap((r) =>
      'record' in r &&
      r.record.roots.some((h) => h.serial === input.serial && Date.parse(h.until) > input.now)
        ? [r.record.replica]
        : [],
    )
    .sort();
  if (input.now >= hardEnd) {
    return {
      drop: true,
      reason: 'hard-bound',
      overridden: [...holders, ...unreadable.map((u) => u.key)],
    };
  }
  if (input.now < windowEnd) {
    return { drop: false, waitFor: 'window', holders, unreadable, recheckAt: windowEnd };
  }
  if (input.holders === undefined) return { drop: true, reason: 'window', overridden: [] };
  if (unreadable.length > 0) {
    return { drop: false, waitFor: 'unreadable', holders, unreadable, recheckAt: hardEnd };
  }
  if (holders.length > 0) {
    return { drop: false, waitFor: 'holders', holders, unreadable, recheckAt: hardEnd };
  }
  return { drop: true, reason: 'no-holders', overridden: [] };
}

/** A replica's holdings from its current leaves: per root, how many and the last expiry. */
export function holdingsOf(
  leaves: readonly Pick<LeafRecord, 'rootSerial' | 'notAfter'>[],
): RootHolding[] {
  const byRoot = new Map<string, { leaves: number; until: number }>();
  for (const leaf of leaves) {
    const until = Date.parse(leaf.notAfter);
    const seen = byRoot.get(leaf.rootSerial);
    if (!seen) byRoot.set(leaf.rootSerial, { leaves: 1, until });
    else {
      seen.leaves++;
      seen.until = Math.max(seen.until, until);
    }
  }
  return [...byRoot]
    .sort(([a], [b]) => compareStrings(a, b))
    .map(([serial, h]) => ({ serial, leaves: h.leaves, until: new Date(h.until).toISOString() }));
}
