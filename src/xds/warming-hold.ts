// Make-before-break for new clusters. Envoy keeps a new EDS cluster warming, outside the set
// requests can use, until its ClusterLoadAssignment arrives; and it can only ask for that
// assignment after it has the cluster. A route sent in the same push as the cluster is applied
// at once, so requests it sends to the cluster fail (503, flag NC, `no_cluster`) for the few
// ms until the assignment is there: every canary to a new subset dropped requests. Envoy's
// xDS docs leave this to the control plane ("clusters referenced by a route are in place
// before pushing the updates for a route"). So a stream holds its listener, route and secret
// updates, and every removal, until the proxy has been sent the endpoints of each new EDS
// cluster; then the held part goes out as one more push of the same view.
import type { ResourceKind } from '../protos/envoy.js';
import type { ProxyView } from '../snapshot/proxy-view.js';

/** Kinds whose updates wait while a new cluster warms (they may refer to it). */
export const HELD_WHILE_WARMING: ReadonlySet<ResourceKind> = new Set<ResourceKind>([
  'listeners',
  'routes',
  'virtualHosts',
  'secrets',
]);

/**
 * How long a hold lasts at most: Envoy asks for a new cluster's endpoints within ms; if it
 * never does (it rejected the clusters, or is stuck) the held updates go out anyway.
 */
export const MAX_WARMING_HOLD_MS = 2000;

/**
 * The clusters of `added` whose endpoints the proxy does not subscribe to yet: EDS clusters
 * (the view has an assignment of the same name) it cannot have been sent endpoints for.
 */
export function newEdsClusters(
  view: ProxyView,
  added: Iterable<string>,
  subscribed: { has(name: string): boolean } | undefined,
): string[] {
  const out: string[] = [];
  for (const name of added) {
    if (subscribed?.has(name)) continue;
    if (view.get('endpoints', name) !== undefined) out.push(name);
  }
  return out;
}

/** The EDS cluster names one stream waits for, and the deadline of the wait. */
export class WarmingHold {
  private readonly awaited = new Set<string>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly onRelease: () => void) {}

  get active(): boolean {
    return this.awaited.size > 0;
  }

  /** Waits for `names` too; clusters the current view no longer has are not waited for. */
  await(names: readonly string[], view: ProxyView): void {
    for (const name of this.awaited)
      if (view.get('clusters', name) === undefined) this.awaited.delete(name);
    for (const name of names) this.awaited.add(name);
    if (this.awaited.size === 0) this.clearTimer();
    else if (!this.timer) {
      this.timer = setTimeout(() => this.release(), MAX_WARMING_HOLD_MS);
      this.timer.unref();
    }
  }

  /** The proxy has been sent the endpoints `sent` says it has: released when that is all. */
  sent(sent: { has(name: string): boolean }): void {
    if (!this.active) return;
    for (const name of this.awaited) if (sent.has(name)) this.awaited.delete(name);
    if (!this.active) this.end();
  }

  /** Stops waiting (the proxy rejected the clusters, or the deadline passed) and releases. */
  release(): void {
    if (!this.active) return;
    this.awaited.clear();
    this.end();
  }

  private end(): void {
    this.clearTimer();
    this.onRelease();
  }

  /** The stream closed: nothing more is sent. */
  dispose(): void {
    this.awaited.clear();
    this.clearTimer();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
