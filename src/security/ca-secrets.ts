// The built-in CA as the store's SecretProvider: each service's leaf as its identity secret,
// the CA's roots as the trust bundle. Leaves are issued on first demand (asynchronously), and
// every renewal or bundle change re-pushes secrets only.
import type { LeafManager } from '../ca/leaf-manager.js';
import type { Secret } from '../protos/envoy-types.js';
import type { SecretProvider } from '../snapshot/secrets.js';
import type { Logger } from '../telemetry/logger.js';
import { identitySecret, trustBundleSecret } from '../translate/tls.js';

export class CaSecretProvider implements SecretProvider {
  private readonly listeners = new Set<() => void>();
  private readonly issuing = new Set<string>();

  constructor(
    private readonly leaves: LeafManager,
    private readonly logger: Logger,
  ) {
    leaves.onChange(() => this.notify());
  }

  identity(service: string): Secret | undefined {
    const leaf = this.leaves.peek(service);
    if (leaf) return identitySecret(leaf);
    this.issue(service);
    return undefined;
  }

  trustBundle(): Secret {
    return trustBundleSecret(this.leaves.trustBundlePem());
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private issue(service: string): void {
    if (this.issuing.has(service)) return;
    this.issuing.add(service);
    this.leaves.current(service).then(
      (leaf) => {
        this.issuing.delete(service);
        this.logger.info(
          { service, serial: leaf.serial, notAfter: leaf.notAfter.toISOString() },
          'certificate issued',
        );
        this.notify();
      },
      (err: Error) => {
        this.issuing.delete(service);
        this.logger.error(
          { service, error: err.message },
          'certificate issue failed; retrying on the next request',
        );
      },
    );
  }

  private notify(): void {
    for (const listener of this.listeners) listener();
  }
}
