// State-of-the-world ADS (StreamAggregatedResources).
// LDS/CDS: every response carries the full set; a missing name means "delete".
// RDS/EDS/SDS: named subscriptions; a response carries the subscribed names.
import { TYPE_URLS, isWildcardKind, type ResourceKind } from '../protos/envoy.js';
import { discoveryResponse } from '../protos/wire.js';
import type { EncodedResource } from '../snapshot/encoded-resource.js';
import type { ProxyView } from '../snapshot/proxy-view.js';
import { sotwBlockOf, type SotwBlock } from '../snapshot/snapshot.js';
import { AdsStream } from './ads-stream.js';
import type { DiscoveryRequest } from './messages.js';
import { REMOVAL_ORDER, UPSERT_ORDER } from './push-order.js';

interface Subscription {
  wildcard: boolean;
  names: ReadonlySet<string>;
  /** The view the last response of this type was built from. */
  sentFrom?: ProxyView;
}

export class SotwStream extends AdsStream<DiscoveryRequest> {
  private readonly subs = new Map<ResourceKind, Subscription>();

  protected onRequest(kind: ResourceKind, req: DiscoveryRequest): void {
    const ack = this.settle(kind, req);
    // A stale request describes a subscription Envoy has already replaced; a newer request
    // follows, so acting on this one could only send outdated data.
    if (ack === 'stale') return;
    const names = (req.resourceNames ?? []).filter((n) => n !== '*');
    const wildcard =
      isWildcardKind(kind) &&
      ((req.resourceNames ?? []).length === 0 || (req.resourceNames ?? []).includes('*'));
    const prev = this.subs.get(kind);
    const sub: Subscription = { wildcard, names: new Set(names), sentFrom: prev?.sentFrom };
    this.subs.set(kind, sub);
    if (!this.view) return; // answered when the first snapshot arrives
    // The first request of a type, or a changed subscription, gets an answer; an ACK/NACK
    // that changes nothing does not (a NACK must never start a resend loop).
    if (!prev || ack === 'none' || !sameSubscription(prev, sub)) this.respond(kind, this.view);
  }

  protected onView(view: ProxyView): void {
    const upserts = new Set<ResourceKind>();
    const removals = new Map<ResourceKind, ReadonlySet<string>>();
    for (const [kind, sub] of this.subs) {
      if (!sub.sentFrom) {
        upserts.add(kind);
        continue;
      }
      const diff = view.diffFrom(sub.sentFrom, kind);
      const relevant = (n: string) => sub.wildcard || sub.names.has(n);
      if ([...diff.changed].some(relevant)) upserts.add(kind);
      if (sub.wildcard && diff.removed.size > 0) removals.set(kind, diff.removed);
      else if (!sub.wildcard && [...diff.removed].some(relevant)) upserts.add(kind); // now a placeholder or gone
    }
    // Envoy issue 13009: a cluster changed by CDS waits for its endpoints again, so EDS is
    // resent after any CDS change even when the assignments themselves did not change.
    if (upserts.has('clusters') && this.subs.has('endpoints')) upserts.add('endpoints');

    for (const kind of UPSERT_ORDER) {
      if (!upserts.has(kind)) continue;
      const removed = removals.get(kind);
      const prev = this.subs.get(kind)?.sentFrom;
      if (removed && prev) {
        // Keep what is going away until the resources referring to it have been replaced.
        const keep = [...removed]
          .map((n) => prev.get(kind, n))
          .filter((r): r is EncodedResource => !!r);
        this.respond(kind, view, keep);
      } else {
        this.respond(kind, view);
        removals.delete(kind);
      }
    }
    for (const kind of REMOVAL_ORDER) if (removals.has(kind)) this.respond(kind, view);
  }

  private respond(kind: ResourceKind, view: ProxyView, alsoKeep: EncodedResource[] = []): void {
    const sub = this.subs.get(kind);
    if (!sub) return;
    let block: SotwBlock;
    if (sub.wildcard) {
      block =
        alsoKeep.length === 0
          ? view.wildcardBlock(kind)
          : sotwBlockOf([...view.all(kind), ...alsoKeep]);
    } else {
      const found: EncodedResource[] = [];
      for (const name of [...sub.names].sort()) {
        const r = view.lookup(kind, name);
        if (r) found.push(r);
      }
      block = sotwBlockOf(found);
    }
    const typeUrl = TYPE_URLS[kind];
    this.send(
      kind,
      (nonce) => discoveryResponse(block.digest, typeUrl, nonce, [block.entries]),
      { version: block.digest, resources: block.count, removed: [] },
      view,
    );
    sub.sentFrom = view;
  }
}

function sameSubscription(a: Subscription, b: Subscription): boolean {
  if (a.wildcard !== b.wildcard || a.names.size !== b.names.size) return false;
  for (const n of a.names) if (!b.names.has(n)) return false;
  return true;
}
