// The CA backend (built-in, or Consul Connect) as the store's SecretProvider: each service's leaf as its identity secret,
// the CA's roots as the trust bundle. Leaves are issued on first demand (asynchronously), and
// every renewal or bundle change re-pushes secrets only.
import type { LeafSource } from '../ca/leaf-source.js';
import type { Secret } from '../protos/envoy-types.js';
import type { SecretProvider } from '../snapshot/secrets.js';
import type { Logger } from '../telemetry/logger.js';
import { identitySecret, trustBundleSecret } from '../translate/tls.js';

/**
 * Services a replica issues leaves for, at most. The service is what a node claims: with
 * `--auth none` any client could make the CA issue (and keep renewing) a leaf per name it
 * invents; with tokens it is bounded by the tokens issued. Far above any real mesh.
 */
export const DEFAULT_MAX_LEAF_SERVICES = 10_000;

export class CaSecretProvider implements SecretProvider {
  private readonly listeners = new Set<() => void>();
  private readonly issuing = new Set<string>();
  /** Services this provider has had leaves issued for (bounded by maxServices). */
  private readonly issued = new Set<string>();
  private refusedLogged = false;

  constructor(
    private readonly leaves: LeafSource,
    private readonly logger: Logger,
    private readonly maxServices = DEFAULT_MAX_LEAF_SERVICES,
  ) {
    leaves.onChange(() => this.notify());
  }

  identity(service: string): Secret | undefined {
    const leaf = this.leaves.peek(service);
    if (leaf) return identitySecret(leaf);
    this.issue(service);
    return undefined;
  }

  /** Services with a leaf issued or being issued (at most maxServices). */
  get serviceCount(): number {
    return this.issued.size + this.issuing.size;
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
    if (!this.issued.has(service) && this.issued.size + this.issuing.size >= this.maxServices) {
      if (!this.refusedLogged) {
        this.refusedLogged = true;
        this.logger.warn(
          { service, maxServices: this.maxServices },
          'certificate not issued: leaves for this many services already; more nodes claim new services than a mesh has (use --auth token)',
        );
      }
      return;
    }
    this.issuing.add(service);
    this.leaves.current(service).then(
      (leaf) => {
        this.issuing.delete(service);
        this.issued.add(service);
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
