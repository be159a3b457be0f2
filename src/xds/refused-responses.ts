// What a delta stream does about a refused (NACKed) response. Envoy keeps none of a refused
// update (VHDS drops it whole, the good hosts with the bad), so what it carried is not held:
// it goes again with the next change of its type (not alone: unchanged it would only be
// refused again, and a NACK must never start a resend loop), apart from that change so that
// it does not take the change down with it again; at once when a newer response already
// replaced part of it (the fix went out before the refusal came back).
import type { ResourceKind } from '../protos/envoy.js';
import type { EncodedResource } from '../snapshot/encoded-resource.js';
import type { AckResult } from './ads-stream.js';

/**
 * The version noted for a name whose last response was refused, then the refused version
 * (none: a refused removal): the proxy has some version of it we do not know.
 */
const REFUSED = '\0refused:';
/** The version noted for a refused resource owed now: matches no version, so it is sent. */
const OWED = '\0owed';

/** What a response not yet answered carried (what a NACK refuses). */
interface Carried {
  kind: ResourceKind;
  upserts: readonly EncodedResource[];
  removed: readonly string[];
}
/** Responses a stream keeps for their answer: Envoy answers each, in order. */
const MAX_UNANSWERED = 64;

/** By nonce, a stream's responses not answered yet; undefined (no Map) most of the time. */
export type Unanswered = Map<string, Carried> | undefined;

/** Notes what the response `nonce` carried, until the proxy answers it. */
export function noteCarried(
  unanswered: Unanswered,
  nonce: string | undefined,
  carried: Carried,
): Unanswered {
  if (!nonce || (carried.upserts.length === 0 && carried.removed.length === 0)) return unanswered;
  const map = unanswered ?? new Map<string, Carried>();
  map.set(nonce, carried);
  if (map.size > MAX_UNANSWERED) map.delete(map.keys().next().value!);
  return map;
}

/** What a NACK changes: the versions the proxy now has of what the refused response carried. */
export interface Refusal {
  kind: ResourceKind;
  /** name → the version to note for it (a refused or owed marker). */
  versions: [string, string][];
  /** Sent at once (a newer response replaced part of it), not with the next change. */
  owedNow: boolean;
}

/**
 * The answer `ack` to `nonce`: forgets the response, and on a NACK says what the proxy holds of
 * what it carried. Envoy answers in order: what a newer response carried is held as that one
 * said, so it is left out.
 */
export function answerCarried(
  unanswered: Unanswered,
  nonce: string | undefined,
  ack: AckResult,
): { unanswered: Unanswered; refusal?: Refusal } {
  const carried = nonce ? unanswered?.get(nonce) : undefined;
  if (!unanswered || !carried) return { unanswered };
  const newer = new Set<string>();
  let after = false;
  for (const [n, c] of ack === 'nack' ? unanswered : []) {
    if (after && c.kind === carried.kind) {
      for (const r of c.upserts) newer.add(r.name);
      for (const name of c.removed) newer.add(name);
    }
    after ||= n === nonce;
  }
  unanswered.delete(nonce!);
  const left = unanswered.size === 0 ? undefined : unanswered;
  if (ack !== 'nack') return { unanswered: left };
  const owedNow =
    carried.upserts.some((r) => newer.has(r.name)) || carried.removed.some((n) => newer.has(n));
  const versions: [string, string][] = [];
  for (const r of carried.upserts) {
    if (!newer.has(r.name)) versions.push([r.name, owedNow ? OWED : REFUSED + r.version]);
  }
  for (const name of carried.removed) {
    if (!newer.has(name)) versions.push([name, owedNow ? OWED : REFUSED]);
  }
  return { unanswered: left, refusal: { kind: carried.kind, versions, owedNow } };
}

type Exceptions = ReadonlyMap<string, string | undefined>;

/** Whether all a push would send is refused resources, unchanged since. */
export function onlyRefused(
  exceptions: Exceptions,
  upserts: readonly EncodedResource[],
  removed: readonly string[],
): boolean {
  if (exceptions.size === 0 || (upserts.length === 0 && removed.length === 0)) return false;
  return (
    upserts.every((r) => exceptions.get(r.name) === REFUSED + r.version) &&
    removed.every((name) => exceptions.get(name) === REFUSED)
  );
}

/**
 * `upserts` as the responses to send them in: refused resources unchanged since after the
 * rest, apart, so that if they are refused again the changes are not refused with them (one
 * bad VHDS host would hold back every other host's updates).
 */
export function refusedApart(
  exceptions: Exceptions,
  upserts: EncodedResource[],
): EncodedResource[][] {
  if (exceptions.size === 0) return [upserts];
  const again = upserts.filter((r) => exceptions.get(r.name) === REFUSED + r.version);
  if (again.length === 0 || again.length === upserts.length) return [upserts];
  const apart = new Set(again);
  return [upserts.filter((r) => !apart.has(r)), again];
}
