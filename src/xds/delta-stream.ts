// Incremental ADS (DeltaAggregatedResources): per-resource versions, only what changed is
// sent, deletions travel in removed_resources.
import { TYPE_URLS, isWildcardKind, type ResourceKind } from '../protos/envoy.js';
import { deltaDiscoveryResponse } from '../protos/wire.js';
import type { EncodedResource } from '../snapshot/encoded-resource.js';
import type { ProxyView } from '../snapshot/proxy-view.js';
import { AdsStream } from './ads-stream.js';
import type { DeltaDiscoveryRequest } from './messages.js';
import { REMOVAL_ORDER, UPSERT_ORDER } from './push-order.js';

interface Subscription {
  wildcard: boolean;
  names: Set<string>;
  /** name → version the proxy has, as far as we know (seeded by initial_resource_versions). */
  known: Map<string, string>;
}

interface Delta {
  upserts: EncodedResource[];
  removed: string[];
}

export class DeltaStream extends AdsStream<DeltaDiscoveryRequest> {
  private readonly subs = new Map<ResourceKind, Subscription>();

  protected onRequest(kind: ResourceKind, req: DeltaDiscoveryRequest): void {
    // Stale or not, the subscription changes in a delta request are deltas and must be
    // applied; only its ACK/NACK meaning is discarded when stale.
    this.settle(kind, req);
    const subscribe = req.resourceNamesSubscribe ?? [];
    const unsubscribe = req.resourceNamesUnsubscribe ?? [];
    let sub = this.subs.get(kind);
    const first = !sub;
    if (!sub) {
      // On reconnect Envoy says what it already has; honouring it avoids resending
      // unchanged resources and lets us tell it about deletions it missed (Istio #41494).
      sub = {
        wildcard: isWildcardKind(kind) && subscribe.length === 0,
        names: new Set(),
        known: new Map(Object.entries(req.initialResourceVersions ?? {})),
      };
      this.subs.set(kind, sub);
    }
    for (const name of subscribe) {
      if (name === '*') sub.wildcard = true;
      else {
        sub.names.add(name);
        // An explicit (re)subscription asks for the resource: send it even if we think the
        // proxy has it (go-control-plane #431: resubscribe after unsubscribe got nothing).
        if (!first) sub.known.delete(name);
      }
    }
    for (const name of unsubscribe) {
      if (name === '*') sub.wildcard = false;
      else {
        sub.names.delete(name);
        sub.known.delete(name);
      }
    }
    if (!this.view) return;
    if (first || subscribe.length > 0 || unsubscribe.length > 0) {
      const delta = this.deltaFor(kind, this.view);
      // The first request is always answered, even with nothing, so Envoy finishes
      // initialising that type (an empty mesh is a valid mesh).
      if (first || delta.upserts.length > 0 || delta.removed.length > 0) {
        this.respond(kind, this.view, delta.upserts, delta.removed);
      }
    }
  }

  protected onView(view: ProxyView): void {
    const deltas = new Map<ResourceKind, Delta>();
    for (const kind of UPSERT_ORDER) {
      if (!this.subs.has(kind)) continue;
      if (kind === 'endpoints') this.forgetEndpointsOfChangedClusters(deltas.get('clusters'));
      const delta = this.deltaFor(kind, view);
      deltas.set(kind, delta);
      if (delta.upserts.length > 0) this.respond(kind, view, delta.upserts, []);
    }
    for (const kind of REMOVAL_ORDER) {
      const delta = deltas.get(kind);
      if (delta && delta.removed.length > 0) this.respond(kind, view, [], delta.removed);
    }
  }

  /**
   * Envoy issue 13009: a cluster updated via CDS waits for its ClusterLoadAssignment again.
   * Our assignments are named after their clusters, so forget those to resend them.
   */
  private forgetEndpointsOfChangedClusters(clusters: Delta | undefined): void {
    const eds = this.subs.get('endpoints');
    if (!clusters || !eds) return;
    for (const c of clusters.upserts) eds.known.delete(c.name);
  }

  private deltaFor(kind: ResourceKind, view: ProxyView): Delta {
    const sub = this.subs.get(kind)!;
    const desired = new Map<string, EncodedResource>();
    if (sub.wildcard) for (const r of view.all(kind)) desired.set(r.name, r);
    for (const name of sub.names) {
      const r = view.lookup(kind, name);
      if (r) desired.set(name, r);
    }
    const upserts: EncodedResource[] = [];
    for (const r of desired.values()) if (sub.known.get(r.name) !== r.version) upserts.push(r);
    const removed: string[] = [];
    for (const name of sub.known.keys()) if (!desired.has(name)) removed.push(name);
    return { upserts, removed };
  }

  private respond(
    kind: ResourceKind,
    view: ProxyView,
    upserts: readonly EncodedResource[],
    removed: readonly string[],
  ): void {
    const sub = this.subs.get(kind)!;
    for (const r of upserts) sub.known.set(r.name, r.version);
    for (const name of removed) sub.known.delete(name);
    const typeUrl = TYPE_URLS[kind];
    const entries = upserts.map((r) => r.deltaEntry);
    this.send(
      kind,
      (nonce) => deltaDiscoveryResponse(view.version, typeUrl, nonce, entries, removed),
      {
        version: view.version,
        resources: upserts.length,
        upserted: upserts.map((r) => r.name),
        removed,
      },
      view,
    );
  }
}
