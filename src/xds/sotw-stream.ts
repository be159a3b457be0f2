// State-of-the-world ADS (StreamAggregatedResources).
// LDS/CDS: every response carries the full set; a missing name means "delete".
// RDS/EDS/SDS: named subscriptions. Omitting a name from a response does not remove it, so
// after the first full answer only the subscribed resources that changed are sent (as Istio
// does for EDS); the version is still the digest of the whole subscribed set.
// A sidecar that reconnects (to this replica or another: versions are content digests, the
// same on every replica) says which version it holds; a type whose version is still that one
// is not sent again (as go-control-plane does), so a failover costs no bytes and no churn.
import { GrpcStatus } from './grpc-status-codes.js';
import { RESOURCE_KINDS, TYPE_URLS, isWildcardKind, type ResourceKind } from '../protos/envoy.js';
import { discoveryResponse } from '../protos/wire.js';
import type { EncodedResource } from '../snapshot/encoded-resource.js';
import type { ProxyView } from '../snapshot/proxy-view.js';
import { sotwBlockOf, type SotwBlock } from '../snapshot/snapshot.js';
import { AdsStream } from './ads-stream.js';
import { KindSlots } from './kind-slots.js';
import type { SotwRequest } from './sotw-request.js';
import { EMPTY_NAMES, internNames, sameNames, type NameSet } from './name-set.js';
import { requestedNames, type RequestedNames } from './requested-names.js';
import { REMOVAL_ORDER, UPSERT_ORDER } from './push-order.js';
import { sharedSotwResponse } from './shared-responses.js';
import { HELD_WHILE_WARMING, newEdsClusters } from './warming-hold.js';

interface Subscription {
  wildcard: boolean;
  names: NameSet;
  /** The names as last requested, with their bytes (decoding them is the expensive part). */
  requested: RequestedNames;
  /** The view the proxy's copy of this type matches (set by every response). */
  sentFrom?: ProxyView;
  /** Named types: the names the proxy has been sent since it subscribed to them. */
  delivered: NameSet;
  /**
   * The version the proxy said it holds when it opened this stream (a reconnect), until the
   * first answer: if the subscribed set still has that version, nothing is sent.
   */
  heldVersion?: string;
}

/** Names added to a subscription at once that are answered with a block shared by streams. */
const MAX_SHARED_ADDED = 16;

const NO_NAMES: readonly string[] = Object.freeze([]);

export class SotwStream extends AdsStream<SotwRequest> {
  private readonly subs = new KindSlots<Subscription>();
  /** Clusters gone from the view that CDS responses keep while a warming hold lasts. */
  private retained: EncodedResource[] | undefined;
  /** EDS names become stand-ins while a warming hold lasts: sent when it ends. */
  private owedStandIns: Set<string> | undefined;

  protected onRequest(kind: ResourceKind, req: SotwRequest): void {
    const ack = this.settle(kind, req);
    // A stale request describes a subscription Envoy has already replaced; a newer request
    // follows, so acting on this one could only send outdated data.
    if (ack === 'stale') return;
    // Rejected clusters never warm: what was held for them goes out now.
    if (kind === 'clusters' && ack === 'nack' && this.holdingForWarming) this.warming.release();
    const prev = this.subs.get(kind);
    let requested: RequestedNames;
    try {
      requested = requestedNames(req, prev?.requested);
    } catch (err) {
      // The names are decoded only now (see sotw-request.ts): one that is not UTF-8 ends the
      // stream, as a request protobufjs cannot decode does.
      this.fail(GrpcStatus.INVALID_ARGUMENT, `resource_names: ${(err as Error).message}`);
      return;
    }
    const wildcard = isWildcardKind(kind) && (requested.count === 0 || requested.star);
    const unchanged =
      prev !== undefined && prev.wildcard === wildcard && sameNames(prev.names, requested.named);
    // An ACK/NACK that changes nothing gets no answer (a NACK must never start a resend
    // loop); a request without a nonce asks for everything again.
    if (unchanged && ack !== 'none') {
      prev.requested = requested;
      return;
    }
    const names = unchanged ? prev.names : requested.named;
    const sub: Subscription = {
      wildcard,
      names,
      requested,
      sentFrom: prev?.sentFrom,
      delivered: prev?.delivered ?? EMPTY_NAMES,
      // Until the first answer, a request without a nonce says what the proxy holds.
      heldVersion: ack === 'none' && !prev?.sentFrom ? req.versionInfo || undefined : undefined,
    };
    this.subs.set(kind, sub);
    const view = this.view;
    if (!view) return; // answered when the first snapshot arrives
    if (wildcard || !prev || ack === 'none' || sub.sentFrom !== view) {
      this.respondFull(kind, view);
    } else {
      // A changed named subscription: send only what the proxy does not have yet.
      sub.delivered = internNames(sub.delivered.sorted.filter((n) => names.has(n)));
      const added = names.sorted.filter((n) => !sub.delivered.has(n));
      // Names a proxy adds are usually a few a whole fan-out adds alike (a new service): those
      // share a block; a long list of its own is answered without keeping one in the snapshot.
      if (added.length > 0) {
        this.respondPartial(kind, view, added, added.length <= MAX_SHARED_ADDED);
      }
    }
    // New clusters' endpoints sent: the updates held for them follow.
    if (kind === 'endpoints' && this.holdingForWarming) this.warming.sent(sub.delivered);
  }

  protected onView(view: ProxyView): void {
    const upserts = new Map<ResourceKind, string[] | 'all'>();
    const removals = new Map<ResourceKind, ReadonlySet<string>>();
    let addedClusters: Iterable<string> = [];
    for (const kind of RESOURCE_KINDS) {
      const sub = this.subs.get(kind); // every stream, every change: no iterator
      if (!sub) continue;
      if (!sub.sentFrom) {
        upserts.set(kind, 'all');
        continue;
      }
      const diff = view.diffFrom(sub.sentFrom, kind);
      if (kind === 'clusters') addedClusters = diff.changed;
      if (sub.wildcard) {
        if (diff.changed.size > 0) upserts.set(kind, 'all');
        if (diff.removed.size > 0) removals.set(kind, diff.removed);
        continue;
      }
      // A removed name is sent again too: it has become a stand-in (EDS) or is gone.
      const touched = [...diff.changed, ...diff.removed].filter((n) => sub.names.has(n));
      if (touched.length > 0) upserts.set(kind, touched);
    }
    // Envoy issue 13009: a cluster changed by CDS waits for its endpoints again, so those
    // assignments are resent after any CDS change even when they did not change.
    const clusters = this.subs.get('clusters');
    const eds = this.subs.get('endpoints');
    if (upserts.has('clusters') && clusters?.sentFrom && eds?.sentFrom) {
      const changed = view.diffFrom(clusters.sentFrom, 'clusters').changed;
      const resend = [...changed].filter((n) => eds.names.has(n));
      const planned = upserts.get('endpoints');
      if (planned !== 'all' && resend.length > 0) {
        upserts.set('endpoints', [...new Set([...(planned ?? []), ...resend])]);
      }
    }
    // New EDS clusters warm until the proxy asks for and gets their endpoints: what may refer
    // to them, and every removal, waits for that (warming-hold.ts).
    const awaited = newEdsClusters(view, addedClusters, eds?.names);
    if (awaited.length > 0 || this.holdingForWarming) this.warming.await(awaited, view);
    const hold = this.holdingForWarming;
    if (hold) this.retainRemoved(removals.get('clusters'));
    const standIns = this.standInsAfterRoutes(view, upserts, hold);

    for (const kind of UPSERT_ORDER) {
      if (hold && HELD_WHILE_WARMING.has(kind)) continue;
      const names = upserts.get(kind);
      if (!names) continue;
      const removed = removals.get(kind);
      const prev = this.subs.get(kind)?.sentFrom;
      const retained = kind === 'clusters' ? this.retained : undefined;
      if (names !== 'all') this.respondPartial(kind, view, names);
      else if ((removed && prev) || retained) {
        // Keep what is going away until the resources referring to it have been replaced.
        const keep = new Map<string, EncodedResource>();
        for (const r of retained ?? []) keep.set(r.name, r);
        for (const n of removed ?? []) {
          const r = prev?.get(kind, n);
          if (r) keep.set(n, r);
        }
        for (const n of keep.keys()) if (view.get(kind, n)) keep.delete(n);
        this.respond(kind, view, sotwBlockOf([...view.all(kind), ...keep.values()]));
      } else {
        this.respondFull(kind, view);
        removals.delete(kind);
      }
    }
    if (!hold) {
      if (this.retained) removals.set('clusters', removals.get('clusters') ?? new Set());
      this.retained = undefined;
      for (const kind of REMOVAL_ORDER) {
        if (kind === 'endpoints' && standIns.length > 0) this.respondPartial(kind, view, standIns);
        if (removals.has(kind)) this.respondFull(kind, view);
      }
    }
    // Types with nothing relevant in this change: the proxy's copy matches the new view too
    // (not those held: their next push is worked out from what the proxy has).
    for (const kind of RESOURCE_KINDS) {
      if (hold && HELD_WHILE_WARMING.has(kind)) continue;
      const sub = this.subs.get(kind);
      if (sub?.sentFrom) sub.sentFrom = view;
    }
  }

  /**
   * The EDS names of this change that have become stand-ins (empty assignments: their cluster
   * is going away), taken out of the upserts. An empty assignment while routes still send
   * requests to the cluster would fail them, so these go out with the removals, after the
   * routes; while a hold lasts they are owed until it ends.
   */
  private standInsAfterRoutes(
    view: ProxyView,
    upserts: Map<ResourceKind, string[] | 'all'>,
    hold: boolean,
  ): readonly string[] {
    const planned = upserts.get('endpoints');
    // Every stream, every change: nothing is copied unless a planned name has become a stand-in.
    let standIns = this.owedStandIns;
    if (Array.isArray(planned) && planned.some((n) => view.get('endpoints', n) === undefined)) {
      const real = planned.filter((n) => view.get('endpoints', n) !== undefined);
      standIns = new Set(standIns);
      for (const n of planned) if (view.get('endpoints', n) === undefined) standIns.add(n);
      if (real.length > 0) upserts.set('endpoints', real);
      else upserts.delete('endpoints');
    }
    if (hold) {
      this.owedStandIns = standIns && standIns.size > 0 ? standIns : undefined;
      return NO_NAMES;
    }
    this.owedStandIns = undefined;
    if (!standIns) return NO_NAMES;
    const names = this.subs.get('endpoints')?.names;
    return [...standIns].filter((n) => names?.has(n) && view.get('endpoints', n) === undefined);
  }

  /**
   * Clusters removed while a hold lasts stay in every CDS response until it ends (routes held
   * meanwhile may still send requests to them).
   */
  private retainRemoved(removed: ReadonlySet<string> | undefined): void {
    const prev = this.subs.get('clusters')?.sentFrom;
    if (!removed || removed.size === 0 || !prev) return;
    const kept = new Map((this.retained ?? []).map((r) => [r.name, r] as const));
    for (const n of removed) {
      const r = prev.get('clusters', n);
      if (r) kept.set(n, r);
    }
    this.retained = [...kept.values()];
  }

  private respondFull(kind: ResourceKind, view: ProxyView): void {
    const sub = this.subs.get(kind);
    if (!sub) return;
    const block = sub.wildcard ? view.wildcardBlock(kind) : view.namedBlock(kind, sub.names);
    const held = sub.heldVersion;
    sub.heldVersion = undefined;
    if (held !== undefined && held === block.digest) {
      // It has exactly this (a digest of every resource in the subscription): say nothing.
      this.alreadyHeld(kind, held);
      sub.sentFrom = view;
    } else this.respond(kind, view, block);
    sub.delivered = sub.names;
  }

  /** Only `names` (named types), versioned as the whole subscribed set. */
  private respondPartial(
    kind: ResourceKind,
    view: ProxyView,
    names: readonly string[],
    shared = true,
  ): void {
    const sub = this.subs.get(kind);
    if (!sub) return;
    const sorted = [...names].sort();
    const part = shared
      ? view.partialBlock(kind, sorted)
      : sotwBlockOf(view.lookupAll(kind, sorted));
    if (part.count === 0) {
      sub.sentFrom = view; // only removals of names that have no stand-in: nothing to say
      return;
    }
    // Versioned as the whole subscribed set, so the proxy's version_info stays meaningful.
    this.respond(kind, view, part, view.namedBlock(kind, sub.names).digest);
    if (sub.delivered !== sub.names)
      sub.delivered = internNames([...sub.delivered.sorted, ...names]);
  }

  private respond(
    kind: ResourceKind,
    view: ProxyView,
    block: SotwBlock,
    version = block.digest,
  ): void {
    const sub = this.subs.get(kind);
    if (!sub) return;
    const typeUrl = TYPE_URLS[kind];
    this.send(
      kind,
      block.shared
        ? sharedSotwResponse(block, version, typeUrl)
        : (nonce) => discoveryResponse(version, typeUrl, nonce, block.parts),
      { version, resources: block.count, removed: [] },
      view,
    );
    sub.sentFrom = view;
  }
}
