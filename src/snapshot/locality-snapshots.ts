// Snapshots of callers elsewhere: with failover backends, a proxy's endpoints of those backends
// depend on its locality and on how it reaches other datacenters (its gateway mode). One
// snapshot per locality and mode, encoded once and shared by its proxies, for the current build.
import type { ProxyIdentity } from '../catalog/model.js';
import { localityKey, meshService } from '../mesh/index.js';
import type { Mesh, MeshGatewayMode, PlacedLocality } from '../mesh/types.js';
import { failoverBackends, homeOf, translateLocality } from '../translate/index.js';
import { encodeResource } from './encoded-resource.js';
import type { ResourceEncoder } from './encoder.js';
import type { Snapshot } from './snapshot.js';

/**
 * Snapshots of distinct localities kept per build. Proxies' nodes carry their locality, so any
 * client can vary it: a mesh has a handful; past this, a locality's snapshot is built for each
 * use and not kept.
 */
const MAX_LOCALITY_SNAPSHOTS = 256;

/** How `proxy` reaches other datacenters: its service's gateway mode, else the mesh's. */
export function gatewayModeOf(mesh: Mesh, proxy: ProxyIdentity): MeshGatewayMode {
  return (
    (proxy.service ? meshService(mesh, proxy.service)?.gatewayMode : undefined) ?? mesh.gatewayMode
  );
}

export class LocalitySnapshots {
  /** This build's snapshots, by locality group key. */
  private readonly kept = new Map<string, Snapshot>();
  /** The group key of each kept snapshot. */
  private readonly keys = new WeakMap<Snapshot, string>();

  constructor(private readonly encoder: ResourceEncoder) {}

  get size(): number {
    return this.kept.size;
  }

  /** The group key of a snapshot made (and kept) here, else undefined. */
  groupOf(snapshot: Snapshot): string | undefined {
    return this.keys.get(snapshot);
  }

  /** A new build: the snapshots of the last one go. */
  clear(): void {
    this.kept.clear();
  }

  /**
   * The snapshot of callers in `locality` reaching other datacenters in `mode`: `base`, with
   * the endpoints of failover backends as that locality sees them. Meshes without failover
   * backends, and callers in the mesh's own datacenter with no region or zone, use `base`
   * itself. `keep` false (a preview): nothing is kept or cached.
   */
  of(base: Snapshot, locality: PlacedLocality, mode: MeshGatewayMode, keep: boolean): Snapshot {
    if (failoverBackends(base.mesh).length === 0) return base;
    const key = `${localityKey(locality)}|${mode}`;
    if (key === `${localityKey(homeOf(base.mesh.settings))}|${base.mesh.gatewayMode}`) return base;
    let snapshot = this.kept.get(key);
    if (snapshot) return snapshot;
    // Localities come from the proxies' nodes: past a bound, or for a preview, nothing is kept.
    const cache = keep && this.kept.size < MAX_LOCALITY_SNAPSHOTS;
    const endpoints = new Map(base.shared.endpoints);
    for (const [name, cla] of translateLocality(base.mesh, locality, mode)) {
      endpoints.set(
        name,
        cache
          ? this.encoder.encode('endpoints', name, cla, `${name}@${key}`)
          : encodeResource('endpoints', name, cla),
      );
    }
    const shared = { ...base.shared, endpoints };
    snapshot = base.narrowed(shared);
    if (cache) {
      this.kept.set(key, snapshot);
      this.keys.set(snapshot, key);
    }
    return snapshot;
  }
}
