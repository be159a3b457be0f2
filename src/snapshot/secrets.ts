// Where SDS secrets come from. The store asks; the provider (the built-in CA) answers with
// Envoy Secret resources and says when they change (rotation), which re-pushes only secrets.
import type { Secret } from '../protos/envoy-types.js';

export interface SecretProvider {
  /**
   * The identity secret for proxies of `service`, or undefined while it is being issued
   * (the provider calls its change listeners once it is ready).
   */
  identity(service: string): Secret | undefined;
  /** The trust bundle secret every proxy validates peers with. */
  trustBundle(): Secret;
  onChange(listener: () => void): () => void;
}
