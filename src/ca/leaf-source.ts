// What the xDS side needs from a CA backend: each service's current leaf, the trust bundle,
// change events (renewals, root changes) and expiries for metrics. The built-in CA's
// LeafManager and Consul Connect's agent (consul-connect.ts) both provide it.
import type { CaChangeListener, LeafIssuedListener } from './leaf-manager.js';
import type { ExpiryReport, IssuedLeaf } from './types.js';

export interface LeafSource {
  /** The service's current leaf; fetched or issued on first request. */
  current(service: string): Promise<IssuedLeaf>;
  /** The current leaf if there is one; never fetches. */
  peek(service: string): IssuedLeaf | undefined;
  /** PEM of every trusted CA certificate. */
  trustBundlePem(): string;
  onChange(listener: CaChangeListener): () => void;
  /** A leaf arrived: `renewed` when it replaced one (the event stream's cert events). */
  onIssued(listener: LeafIssuedListener): () => void;
  expiries(): ExpiryReport;
}
