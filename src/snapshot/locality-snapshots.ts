// Snapshots of callers elsewhere: with failover backends, a proxy's endpoints of those backends
// depend on its locality and on how it reaches other datacenters (its gateway mode). One
// snapshot per locality and mode, encoded once and shared by its proxies, for the current build.
import type { ProxyIdentity } from '../catalog/model.js';
import { localityKey, meshService } from '../mesh/index.js';
import type { Backend, Mesh, MeshGatewayMode, PlacedLocality } from '../mesh/types.js';
import type { ClusterLoadAssignment } from '../protos/envoy-types.js';
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

/**
 * A locality group's assignments of the last builds, by backend: a backend object (kept while
 * its service is unchanged) gets the same assignment object again while the settings and the
 * gateways (the rest of what it is made of) are the same objects, so the encoder finds it
 * without comparing contents. Every build made one for each failover backend and group: at
 * 1,000 services in two datacenters, most of an endpoint change's fan-out (~15 ms).
 */
interface GroupAssignments {
  readonly settings: Mesh['settings'];
  readonly gateways: Mesh['gateways'];
  readonly byBackend: WeakMap<Backend, ClusterLoadAssignment>;
  /** Used by the current build (groups unused for a whole build go). */
  used: boolean;
}

export class LocalitySnapshots {
  /** This build's snapshots, by locality group key. */
  private readonly kept = new Map<string, Snapshot>();
  private readonly assignments = new Map<string, GroupAssignments>();
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
    for (const [key, group] of this.assignments) {
      if (!group.used) this.assignments.delete(key);
      group.used = false;
    }
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
    for (const [name, cla] of this.translate(base.mesh, locality, mode, key, cache)) {
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

  /**
   * The endpoints callers in `locality` get for the failover backends (translateLocality),
   * reusing the last builds' objects for unchanged backends when `keep`.
   */
  private translate(
    mesh: Mesh,
    locality: PlacedLocality,
    mode: MeshGatewayMode,
    key: string,
    keep: boolean,
  ): Map<string, ClusterLoadAssignment> {
    const { settings, gateways } = mesh;
    let group = keep ? this.assignments.get(key) : undefined;
    if (keep && (!group || group.settings !== settings || group.gateways !== gateways)) {
      group = { settings, gateways, byBackend: new WeakMap(), used: true };
      this.assignments.set(key, group);
    }
    if (group) group.used = true;
    return translateLocality(mesh, locality, mode, group?.byBackend);
  }
}
