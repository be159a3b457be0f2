// Localities: where instances and proxies run, with the datacenter settled, and the order in
// which a caller prefers them (its zone, its region, its datacenter, then other datacenters).
import type { Locality } from '../catalog/model.js';
import { compareStrings } from '../text-order.js';
import type { MeshSettings, PlacedLocality } from './types.js';

/** A locality with the mesh's own datacenter where it names none. */
export function placed(l: Locality | undefined, settings: MeshSettings): PlacedLocality {
  return {
    datacenter: l?.datacenter ?? settings.datacenter,
    ...(l?.region !== undefined ? { region: l.region } : {}),
    ...(l?.zone !== undefined ? { zone: l.zone } : {}),
  };
}

export function localityKey(l: PlacedLocality): string {
  return `${l.datacenter}/${l.region ?? ''}/${l.zone ?? ''}`;
}

export function compareLocalities(a: PlacedLocality, b: PlacedLocality): number {
  return compareStrings(localityKey(a), localityKey(b));
}

/**
 * Datacenters a caller in `own` may use, in failover order: its own, then `listed` (the
 * resolver's failover datacenters) — or, without a list, every datacenter in `present`, the
 * configured order (serve --datacenters) first and the rest by name.
 */
export function datacenterOrder(
  own: string,
  present: Iterable<string>,
  configured: readonly string[],
  listed?: readonly string[],
): string[] {
  const order = [own, ...(listed ?? configured)];
  if (!listed) order.push(...[...present].sort(compareStrings));
  return [...new Set(order)];
}

/**
 * The caller's preference for an endpoint locality, as a sortable rank (lower is nearer), or
 * undefined when the caller may not use it: same zone, same region, same datacenter, then
 * each further datacenter in `order`.
 */
export function localityRank(
  caller: PlacedLocality,
  endpoint: PlacedLocality,
  order: readonly string[],
): number | undefined {
  const dc = order.indexOf(endpoint.datacenter);
  if (dc < 0) return undefined;
  if (dc > 0) return 2 + dc;
  if (endpoint.region !== caller.region) return 2;
  return endpoint.zone === caller.zone ? 0 : 1;
}
