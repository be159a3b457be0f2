// Where SDS secrets come from. The store asks; the provider (the built-in CA) answers with
// Envoy Secret resources and says when they change (rotation), which re-pushes only secrets.
import type { ResourceMessage } from '../translate/types.js';

export interface SecretProvider {
  /**
   * The identity secret for proxies of `service`, or undefined while it is being issued
   * (the provider calls its change listeners once it is ready).
   */
  identity(service: string): ResourceMessage | undefined;
  /** The trust bundle secret every proxy validates peers with. */
  trustBundle(): ResourceMessage;
  onChange(listener: () => void): () => void;
}
