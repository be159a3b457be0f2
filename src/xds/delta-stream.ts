// Incremental ADS (DeltaAggregatedResources): per-resource versions, only what changed is
// sent, deletions travel in removed_resources.
//
// What the proxy has is kept as "everything `base` (a view) holds for this subscription",
// plus a few exceptions. After each response the proxy matches the current view again, so a
// snapshot change costs each stream only the names that changed (a shared, memoized diff),
// and no per-proxy map of every resource is kept.
import { TYPE_URLS, isWildcardKind, type ResourceKind } from '../protos/envoy.js';
import { deltaDiscoveryResponse } from '../protos/wire.js';
import type { EncodedResource } from '../snapshot/encoded-resource.js';
import type { ProxyView } from '../snapshot/proxy-view.js';
import { GrpcStatus } from './grpc-status-codes.js';
import { AdsStream, type AckResult } from './ads-stream.js';
import { namedParts, wildcardParts } from './delta-blocks.js';
import { KindSlots } from './kind-slots.js';
import { MAX_NAMES_PER_TYPE } from './limits.js';
import type { DecodedDeltaRequest, HeldVersions } from './delta-request.js';
import { EMPTY_NAMES, internNames, type NameSet } from './name-set.js';
import { REMOVAL_ORDER, UPSERT_ORDER } from './push-order.js';
import {
  answerCarried,
  noteCarried,
  onlyRefused,
  refusedApart,
  type Unanswered,
} from './refused-responses.js';
import { MAX_SHARED_DELTA_UPSERTS, sharedDeltaResponse } from './shared-responses.js';
import type { KindDiff } from '../snapshot/snapshot.js';
import { sameDigest } from '../snapshot/version-digest.js';
import { byName } from '../text-order.js';
import { HELD_WHILE_WARMING, newEdsClusters } from './warming-hold.js';

interface Subscription {
  wildcard: boolean;
  /** Explicitly subscribed names (interned: shared by proxies with the same subscription). */
  names: NameSet;
  /** The proxy has exactly what this view holds for the subscription... */
  base?: ProxyView;
  /**
   * ...except these: name → the version it has, or undefined when it has none. Nearly always
   * none: then the one shared NO_EXCEPTIONS (a Map per subscription was ~180 B, ~730 B a
   * proxy with four types; bench --heap-snapshot, W9). Written only through except().
   */
  exceptions: Map<string, string | undefined>;
}

/** The empty exceptions every settled subscription shares; writing to it is a bug. */
class NoExceptions extends Map<string, string | undefined> {
  override set(): this {
    throw new Error('delta subscription: NO_EXCEPTIONS is shared (use except())');
  }
}
const NO_EXCEPTIONS: Map<string, string | undefined> = new NoExceptions();

/** Records that the proxy has `version` of `name` (undefined: none), whatever the base says. */
function except(sub: Subscription, name: string, version: string | undefined): void {
  if (sub.exceptions === NO_EXCEPTIONS) sub.exceptions = new Map();
  sub.exceptions.set(name, version);
}

/** A reconnect's initial_resource_versions, or none. */
function exceptionsOf(held: Map<string, string | undefined>): Map<string, string | undefined> {
  return held.size === 0 ? NO_EXCEPTIONS : held;
}

interface Delta {
  upserts: EncodedResource[];
  /** Upserts sent with the removals (stand-ins for EDS names whose cluster is going away). */
  late?: EncodedResource[];
  removed: string[];
  /** The upserts' entries as a few joined parts (delta-blocks.ts), when that applies. */
  parts?: Buffer[];
}

export class DeltaStream extends AdsStream<DecodedDeltaRequest> {
  private readonly subs = new KindSlots<Subscription>();
  /** Clusters sent anew to a reconnect before it asked for endpoints (resendEndpointsOf). */
  private edsOwed: Set<string> | undefined;
  /** By nonce, responses not answered yet (refused-responses.ts). */
  private unanswered: Unanswered;
  /** A refused response's resources are owed now (see answered()). */
  private refusedOwed = false;

  protected onRequest(kind: ResourceKind, req: DecodedDeltaRequest): void {
    this.request(kind, req);
    if (this.refusedOwed) {
      // A refusal of an earlier response: the newer ones went without what it carried.
      this.refusedOwed = false;
      if (this.view) this.takeView(this.view);
    }
  }

  private request(kind: ResourceKind, req: DecodedDeltaRequest): void {
    // Stale or not, the subscription changes in a delta request are deltas and must be
    // applied; only its ACK/NACK meaning is discarded when stale.
    const ack = this.settle(kind, req);
    this.answered(req.responseNonce, ack);
    // Rejected clusters never warm: what was held for them goes out now.
    if (kind === 'clusters' && ack === 'nack' && this.holdingForWarming) this.warming.release();
    const subscribe = req.resourceNamesSubscribe ?? [];
    const unsubscribe = req.resourceNamesUnsubscribe ?? [];
    let sub = this.subs.get(kind);
    const first = !sub;
    /** What a reconnect says it holds, not read yet (see the digest check below). */
    let held: HeldVersions | undefined;
    if (!sub) {
      // On reconnect Envoy says what it already has; honouring it avoids resending
      // unchanged resources and lets us tell it about deletions it missed (Istio #41494).
      held = req.held;
      if (held && (unsubscribe.length > 0 || held.count > MAX_NAMES_PER_TYPE)) {
        held = undefined; // read now: unsubscribes edit it, and the bound below counts it
      }
      sub = {
        wildcard: isWildcardKind(kind) && subscribe.length === 0,
        names: EMPTY_NAMES,
        base: undefined, // present from the start: one object shape for every subscription
        exceptions: held
          ? NO_EXCEPTIONS
          : exceptionsOf(
              req.held?.toMap() ?? new Map(Object.entries(req.initialResourceVersions ?? {})),
            ),
      };
      this.subs.set(kind, sub);
    }
    if (subscribe.length > 0 || unsubscribe.length > 0) {
      const wildcardBefore = sub.wildcard;
      const names = new Set(sub.names.sorted);
      for (const name of subscribe) {
        if (name === '*') sub.wildcard = true;
        else {
          names.add(name);
          // An explicit (re)subscription asks for the resource: send it even if we think the
          // proxy has it (go-control-plane #431: resubscribe after unsubscribe got nothing).
          if (!first) except(sub, name, undefined);
        }
      }
      for (const name of unsubscribe) {
        if (name === '*') sub.wildcard = false;
        else {
          names.delete(name);
          except(sub, name, undefined); // the proxy drops it
        }
      }
      if (sub.wildcard !== wildcardBefore && sub.base) this.materialize(kind, sub, wildcardBefore);
      // Delta subscriptions add up over requests: bounded per stream and type, as one SotW
      // request is by its size.
      if (names.size > MAX_NAMES_PER_TYPE || sub.exceptions.size > MAX_NAMES_PER_TYPE) {
        this.fail(
          GrpcStatus.RESOURCE_EXHAUSTED,
          `${kind}: more than ${MAX_NAMES_PER_TYPE} resource names subscribed or unsubscribed on one stream`,
        );
        return;
      }
      sub.names = internNames(names);
    }
    const view = this.view;
    if (kind === 'endpoints' && this.edsOwed) {
      // Clusters this reconnect was sent changed: their endpoints are owed whatever it holds.
      if (held) sub.exceptions = exceptionsOf(held.toMap());
      held = undefined;
      for (const name of this.edsOwed) if (sub.exceptions.has(name)) except(sub, name, undefined);
      this.edsOwed = undefined;
    }
    if (held) {
      // A sidecar failing over nearly always holds exactly what this replica would send: then
      // one digest comparison (made once per snapshot and subscription) replaces reading and
      // comparing every name it lists. Otherwise the names are read and compared one by one.
      if (view && sameDigestAs(view, kind, sub, held)) {
        this.respond(kind, view, [], []); // answered, as every first request is
        return;
      }
      sub.exceptions = exceptionsOf(held.toMap());
    }
    if (!view) return;
    if (first || subscribe.length > 0 || unsubscribe.length > 0) {
      const delta = sub.base
        ? this.deltaFor(kind, view, this.everyName(kind, sub, view))
        : this.deltaFromExceptions(kind, sub, view);
      // While a hold lasts, stand-ins owed for clusters going away wait for its end (onView).
      const waiting = kind === 'endpoints' && this.holdingForWarming;
      const late = waiting
        ? delta.upserts.filter((r) => !subscribe.includes(r.name) && !view.get(kind, r.name))
        : [];
      const upserts = late.length > 0 ? delta.upserts.filter((r) => !late.includes(r)) : null;
      // Clusters a reconnect holds at another version: Envoy waits for their endpoints again.
      const replaced =
        kind === 'clusters' && first
          ? delta.upserts.filter((r) => sub.exceptions.get(r.name) !== undefined).map((r) => r.name)
          : [];
      // The first request is always answered, even with nothing, so Envoy finishes
      // initialising that type (an empty mesh is a valid mesh).
      if (first || delta.upserts.length > 0 || delta.removed.length > 0) {
        const stillHeld = new Map(
          late.map((r) => [r.name, this.known(kind, sub, r.name)] as const),
        );
        if (upserts) this.respond(kind, view, upserts, delta.removed, stillHeld);
        else this.respond(kind, view, delta.upserts, delta.removed, undefined, delta.parts);
      }
      // New clusters' endpoints sent: the updates held for them follow.
      if (waiting) this.warming.sent(sub.names);
      if (replaced.length > 0) this.resendEndpointsOf(replaced, view);
    }
  }

  /**
   * Envoy issue 13009 on a reconnect: clusters it held and was sent anew wait for their
   * ClusterLoadAssignments, even unchanged ones it also holds (it said so, and was told
   * nothing: the clusters stayed warming until Envoy's 15 s initial fetch timeout). Sent now
   * if the proxy subscribes to them, or owed to its first EDS request.
   */
  private resendEndpointsOf(clusters: readonly string[], view: ProxyView): void {
    const eds = this.subs.get('endpoints');
    if (!eds) {
      this.edsOwed = new Set(clusters);
      return;
    }
    const owed = clusters.filter((n) => eds.names.has(n));
    if (owed.length === 0) return;
    for (const name of owed) except(eds, name, undefined);
    const delta = eds.base
      ? this.deltaFor('endpoints', view, this.everyName('endpoints', eds, view))
      : this.deltaFromExceptions('endpoints', eds, view);
    if (delta.upserts.length > 0 || delta.removed.length > 0) {
      this.respond('endpoints', view, delta.upserts, delta.removed);
    }
  }

  protected onView(view: ProxyView): void {
    const deltas = new Map<ResourceKind, Delta>();
    let hold: boolean | undefined;
    for (const kind of UPSERT_ORDER) {
      // Known once the clusters are out: new ones hold what may refer to them.
      if (kind !== 'clusters') hold ??= this.awaitWarming(view, deltas.get('clusters'));
      if (hold && HELD_WHILE_WARMING.has(kind)) continue;
      const sub = this.subs.get(kind);
      if (!sub) continue;
      if (kind === 'endpoints') this.forgetEndpointsOfChangedClusters(deltas.get('clusters'));
      const candidates = sub.base
        ? changedNames(view, sub.base, kind, sub.exceptions)
        : this.everyName(kind, sub, view);
      const delta = this.deltaFor(kind, view, candidates);
      // Refused resources go again after the next change of their type, not alone: unchanged,
      // they would only be refused again (a NACK never starts a resend loop).
      if (onlyRefused(sub.exceptions, delta.upserts, delta.removed)) continue;
      if (kind === 'endpoints') {
        // Empty assignments standing in for clusters going away: with the removals, after
        // the routes have left those clusters (an empty one would fail their requests).
        delta.late = delta.upserts.filter((r) => view.get(kind, r.name) === undefined);
        if (delta.late.length > 0)
          delta.upserts = delta.upserts.filter((r) => !delta.late!.includes(r));
      }
      deltas.set(kind, delta);
      const owed = [...delta.removed, ...(delta.late ?? []).map((r) => r.name)];
      if (delta.upserts.length > 0) {
        // Make-before-break: removals wait for the second pass; until then the proxy still
        // has those names, at the versions it had.
        const stillHeld = new Map(owed.map((n) => [n, this.known(kind, sub, n)] as const));
        for (const upserts of refusedApart(sub.exceptions, delta.upserts)) {
          this.respond(kind, view, upserts, [], stillHeld);
        }
      } else if (owed.length === 0) {
        // A first request that came before the first snapshot (a reconnect holding everything
        // already) is answered still, empty: Envoy waits for an answer to each first request.
        if (this.status(kind).sentNonce === undefined) this.respond(kind, view, [], []);
        else this.settleOn(sub, view);
      }
    }
    // Removals wait for the end of a hold too: the proxy keeps those names meanwhile (the
    // subscriptions still owe their removal, so the push after the hold sends it).
    if (hold) return;
    for (const kind of REMOVAL_ORDER) {
      const delta = deltas.get(kind);
      const late = delta?.late ?? [];
      if (delta && (delta.removed.length > 0 || late.length > 0)) {
        this.respond(kind, view, late, delta.removed);
      }
    }
  }

  /**
   * Whether the updates that may refer to clusters wait: new EDS clusters just sent warm until
   * the proxy subscribes to and gets their endpoints (warming-hold.ts).
   */
  private awaitWarming(view: ProxyView, clusters: Delta | undefined): boolean {
    const added = (clusters?.upserts ?? []).map((r) => r.name);
    const awaited = newEdsClusters(view, added, this.subs.get('endpoints')?.names);
    if (awaited.length > 0 || this.holdingForWarming) this.warming.await(awaited, view);
    return this.holdingForWarming;
  }

  /**
   * Envoy issue 13009: a cluster updated via CDS waits for its ClusterLoadAssignment again.
   * Our assignments are named after their clusters, so those are resent.
   */
  private forgetEndpointsOfChangedClusters(clusters: Delta | undefined): void {
    const eds = this.subs.get('endpoints');
    if (!clusters || !eds) return;
    for (const c of clusters.upserts) except(eds, c.name, undefined);
  }

  /** The version of `name` the proxy has, or undefined. */
  private known(kind: ResourceKind, sub: Subscription, name: string): string | undefined {
    if (sub.exceptions.has(name)) return sub.exceptions.get(name);
    const base = sub.base;
    if (!base || !wanted(base, kind, sub.wildcard, sub.names, name)) return undefined;
    return base.lookup(kind, name)?.version;
  }

  private deltaFor(kind: ResourceKind, view: ProxyView, candidates: Iterable<string>): Delta {
    const sub = this.subs.get(kind)!;
    const upserts: EncodedResource[] = [];
    const removed: string[] = [];
    for (const name of candidates) {
      const have = this.known(kind, sub, name);
      const r = wanted(view, kind, sub.wildcard, sub.names, name)
        ? view.lookup(kind, name)
        : undefined;
      if (r && r.version !== have) upserts.push(r);
      else if (!r && have !== undefined) removed.push(name);
    }
    upserts.sort(byName);
    return { upserts, removed: removed.sort() };
  }

  /**
   * deltaFor(everyName) for a subscription without a base (what the proxy has is all in
   * `exceptions`: a reconnect's initial_resource_versions), without building the union of
   * names: a sidecar failing over lists ~2,000 resources per type, and that set and the
   * lookups per name were most of what taking it over cost (bench --workload failover).
   */
  private deltaFromExceptions(kind: ResourceKind, sub: Subscription, view: ProxyView): Delta {
    const upserts: EncodedResource[] = [];
    const removed: string[] = [];
    const held = sub.exceptions;
    // A fresh wildcard subscription (a new stream's CDS/LDS): everything, sorted once per snapshot.
    if (held.size === 0 && sub.wildcard && sub.names.size === 0) {
      const all = view.allSorted(kind);
      return { upserts: all, removed: [], parts: wildcardParts(view, kind, all) };
    }
    let matched = 0; // held names offered: when that is every held name, nothing is removed
    const offer = (r: EncodedResource | undefined, name: string): void => {
      const have = held.get(name);
      if (have !== undefined) matched++;
      if (r && r.version !== have) upserts.push(r);
      else if (!r && have !== undefined) removed.push(name);
    };
    if (sub.wildcard) for (const r of view.all(kind)) offer(r, r.name);
    for (const name of sub.names.sorted) {
      if (!(sub.wildcard && view.get(kind, name))) offer(view.lookup(kind, name), name);
    }
    // Held but no longer wanted (the rest were offered above).
    if (matched < held.size) {
      for (const [name, have] of held) {
        if (have === undefined || sub.names.has(name)) continue;
        if (!(sub.wildcard && view.get(kind, name))) removed.push(name);
      }
    }
    upserts.sort(byName);
    // A fresh subscription to names only (a new stream's EDS/RDS): the shared block, if it is one.
    const parts =
      held.size === 0 && !sub.wildcard ? namedParts(view, kind, sub.names, upserts) : undefined;
    return { upserts, removed: removed.sort(), parts };
  }

  /** Every name that could matter: what the view offers, what the proxy may have. */
  private everyName(kind: ResourceKind, sub: Subscription, view: ProxyView): Set<string> {
    const names = new Set<string>(sub.names.sorted);
    if (sub.wildcard) for (const r of view.all(kind)) names.add(r.name);
    if (sub.base && sub.wildcard) for (const r of sub.base.all(kind)) names.add(r.name);
    for (const name of sub.exceptions.keys()) names.add(name);
    return names;
  }

  /** Turns the base into explicit exceptions (the subscription's meaning is about to change). */
  private materialize(kind: ResourceKind, sub: Subscription, wildcard: boolean): void {
    const base = sub.base!;
    const names = new Set(sub.names.sorted);
    if (wildcard) for (const r of base.all(kind)) names.add(r.name);
    for (const name of names) {
      if (!sub.exceptions.has(name)) except(sub, name, base.lookup(kind, name)?.version);
    }
    sub.base = undefined;
  }

  /** After a response the proxy has exactly what `view` holds for the subscription. */
  private settleOn(sub: Subscription, view: ProxyView): void {
    sub.base = view;
    sub.exceptions = NO_EXCEPTIONS;
  }

  private respond(
    kind: ResourceKind,
    view: ProxyView,
    upserts: readonly EncodedResource[],
    removed: readonly string[],
    stillHeld: ReadonlyMap<string, string | undefined> = new Map(),
    parts?: readonly Buffer[],
  ): void {
    const sub = this.subs.get(kind)!;
    const typeUrl = TYPE_URLS[kind];
    // A change fanned out owes many streams the same few resources: one response for all.
    // Not when the proxy's own resources are among them (a first response): that response is
    // this proxy's alone, and caching it kept one per proxy for the snapshot's life (W9: ~18 KB
    // a proxy with 10,000 delta streams in 1,000 scopes).
    const shared =
      removed.length === 0 &&
      upserts.length > 0 &&
      upserts.length <= MAX_SHARED_DELTA_UPSERTS &&
      upserts.every((r) => view.snapshot.shared[kind].get(r.name) === r);
    const prepared = shared ? sharedDeltaResponse(view.snapshot, typeUrl, upserts) : undefined;
    this.send(
      kind,
      prepared ??
        ((nonce) =>
          deltaDiscoveryResponse(
            view.version,
            typeUrl,
            nonce,
            parts ?? upserts.map((r) => r.deltaEntry),
            removed,
          )),
      {
        version: view.version,
        resources: upserts.length,
        // A shared response's names are one list for every stream (the console keeps them).
        upserted: prepared?.names ?? upserts.map((r) => r.name),
        removed,
      },
      view,
    );
    this.settleOn(sub, view);
    for (const [name, version] of stillHeld) except(sub, name, version);
    this.carried(kind, upserts, removed);
  }

  /** Keeps what the response just sent carried until the proxy answers it. */
  private carried(
    kind: ResourceKind,
    upserts: readonly EncodedResource[],
    removed: readonly string[],
  ): void {
    const nonce = this.status(kind).sentNonce;
    this.unanswered = noteCarried(this.unanswered, nonce, { kind, upserts, removed });
  }

  /**
   * An ACK or NACK. On a NACK, what the refused response carried is no longer taken as held,
   * or a fix of the bad resource alone would leave the good ones refused with it missing for
   * good (refused-responses.ts).
   */
  private answered(nonce: string | undefined, ack: AckResult): void {
    const { unanswered, refusal } = answerCarried(this.unanswered, nonce, ack);
    this.unanswered = unanswered;
    const sub = refusal && this.subs.get(refusal.kind);
    if (!sub) return;
    for (const [name, version] of refusal.versions) except(sub, name, version);
    if (refusal.owedNow) this.refusedOwed = true;
  }
}

/** Whether the proxy holds exactly what `sub` is owed of `view` (false: compare name by name). */
function sameDigestAs(
  view: ProxyView,
  kind: ResourceKind,
  sub: Subscription,
  held: HeldVersions,
): boolean {
  const owed = view.heldDigest(kind, sub.wildcard, sub.names);
  return owed !== undefined && sameDigest(owed, held.digest);
}

/** Whether `name` belongs to a subscription in `view`. */
function wanted(
  view: ProxyView,
  kind: ResourceKind,
  wildcard: boolean,
  names: NameSet,
  name: string,
): boolean {
  return names.has(name) || (wildcard && view.get(kind, name) !== undefined);
}

/** Names whose resource differs between `base` and `view`, plus the exceptions. */
function changedNames(
  view: ProxyView,
  base: ProxyView,
  kind: ResourceKind,
  exceptions: ReadonlyMap<string, string | undefined>,
): ReadonlySet<string> {
  const diff = view.diffFrom(base, kind);
  if (exceptions.size > 0) {
    return new Set([...diff.changed, ...diff.removed, ...exceptions.keys()]);
  }
  // The common case: a diff shared by every stream (memoized per snapshot), so is this set.
  let names = candidatesOf.get(diff);
  if (!names) candidatesOf.set(diff, (names = new Set([...diff.changed, ...diff.removed])));
  return names;
}

const candidatesOf = new WeakMap<KindDiff, ReadonlySet<string>>();
