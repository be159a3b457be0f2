// What a proxy's own resources are translated from, as one comparable string (store.ts keeps
// it per proxy and skips the translation when it is unchanged). A sidecar with DNS carries the
// mesh's list of service names (~1,000): stringified once per list, not once per proxy (a
// failover brings hundreds of proxies to a replica at once). The whole is kept as a digest.
import type { MeshProxy } from '../mesh/types.js';
import { contentHash } from './encoded-resource.js';

const namesDigests = new WeakMap<readonly string[], string>();

function namesDigest(names: readonly string[]): string {
  let digest = namesDigests.get(names);
  if (digest === undefined) namesDigests.set(names, (digest = contentHash(JSON.stringify(names))));
  return digest;
}

/**
 * A digest of the inputs (96 bits), not the inputs: the store keeps one per connected proxy,
 * and the JSON of a MeshProxy runs to several hundred bytes (W9's heap breakdown).
 */
export function proxyInputs(generation: number, view: MeshProxy): string {
  const { dns, ...rest } = view;
  const json = JSON.stringify(rest);
  if (!dns) return contentHash(`${generation}\u0000${json}`);
  const { names, ...settings } = dns;
  return contentHash(
    `${generation}\u0000${json}\u0000${JSON.stringify(settings)}\u0000${namesDigest(names)}`,
  );
}
