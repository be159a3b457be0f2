// The empty assignment standing in for an EDS name nothing has. The names are the proxies' to
// choose, so these are kept apart from the encoder's cache and bounded; the content depends on
// the name only, so an entry never goes stale.
import type { ResourceKind } from '../protos/envoy.js';
import { emptyLoadAssignment } from '../translate/endpoints.js';
import { encodeResource, type EncodedResource } from './encoded-resource.js';

/**
 * Placeholders kept at most (Envoy asks for these only in transient states; past this, the
 * oldest goes).
 */
const MAX_PLACEHOLDERS = 1024;

export class Placeholders {
  private readonly kept = new Map<string, EncodedResource>();

  get size(): number {
    return this.kept.size;
  }

  /**
   * The placeholder of `name` (endpoints only), kept. One function every view shares (a closure
   * per view was ~100 B).
   */
  readonly of = (kind: ResourceKind, name: string): EncodedResource | undefined => {
    if (kind !== 'endpoints') return undefined;
    let r = this.kept.get(name);
    if (!r) {
      r = encodeResource('endpoints', name, emptyLoadAssignment(name));
      if (this.kept.size >= MAX_PLACEHOLDERS) {
        this.kept.delete(this.kept.keys().next().value as string);
      }
      this.kept.set(name, r);
    }
    return r;
  };

  /** The same, without keeping a new one (previews of nodes that are not connected). */
  readonly peek = (kind: ResourceKind, name: string): EncodedResource | undefined =>
    kind === 'endpoints'
      ? (this.kept.get(name) ?? encodeResource(kind, name, emptyLoadAssignment(name)))
      : undefined;
}
