// How the Consul catalog source spends its connections (--consul-max-connections, less what
// the traffic config-entry watches hold) across datacenters.
//
// Every blocking query holds one connection. Each datacenter needs a few for itself: its
// service list, its change trigger (`/v1/health/state/any`, only while some of its services
// overflow) and its refetch slots (overflow services, read non-blocking a few at a time). What
// is left is the pool of per-service blocking queries ("dedicated" watches):
// - the local datacenter first: it gets a dedicated watch for every service it has, as far as
//   the pool goes;
// - the remote datacenters share the rest, max-min fair: one that needs less than an equal
//   share leaves the difference to the others;
// - a service without a dedicated watch is an overflow service, refreshed by its own
//   datacenter's change trigger. So a big local datacenter can push remote services into
//   overflow, never the other way round.

/** Overflow services read non-blocking at a time, local datacenter. */
export const LOCAL_REFETCH_CONCURRENCY = 4;
/** Overflow services read non-blocking at a time, each remote datacenter. */
export const REMOTE_REFETCH_CONCURRENCY = 2;
/** The local datacenter's service list, change trigger and refetch slots. */
export const LOCAL_RESERVED_CONNECTIONS = 2 + LOCAL_REFETCH_CONCURRENCY;
/** A remote datacenter's service list, change trigger and refetch slots. */
export const REMOTE_RESERVED_CONNECTIONS = 2 + REMOTE_REFETCH_CONCURRENCY;

/**
 * The fewest connections the catalog works with: every datacenter's reserved ones plus one
 * dedicated watch (remote datacenters can run on their change trigger alone).
 */
export function catalogConnectionsNeeded(remoteDatacenters: number): number {
  return LOCAL_RESERVED_CONNECTIONS + 1 + remoteDatacenters * REMOTE_RESERVED_CONNECTIONS;
}

/** Dedicated watches available to the datacenters, out of the catalog's connections. */
export function dedicatedPool(catalogConnections: number, remoteDatacenters: number): number {
  return Math.max(
    1,
    catalogConnections -
      LOCAL_RESERVED_CONNECTIONS -
      remoteDatacenters * REMOTE_RESERVED_CONNECTIONS,
  );
}

/**
 * Dedicated watches per datacenter: `wanted[0]` is the local datacenter's service count, the
 * others the remote ones' in configured order. The local one gets what it wants (up to the
 * pool); the remote ones share the rest max-min fair (smallest demand served first; a share
 * left over by rounding goes to the later ones).
 */
export function dedicatedLimits(pool: number, wanted: readonly number[]): number[] {
  if (wanted.length === 0) return [];
  const limits = new Array<number>(wanted.length).fill(0);
  limits[0] = Math.max(0, Math.min(pool, wanted[0]!));
  let rest = Math.max(0, pool - limits[0]);
  const remotes = wanted
    .map((w, i) => ({ w: Math.max(0, w), i }))
    .slice(1)
    .sort((a, b) => a.w - b.w || a.i - b.i);
  let left = remotes.length;
  for (const { w, i } of remotes) {
    const give = Math.min(w, Math.floor(rest / left));
    limits[i] = give;
    rest -= give;
    left--;
  }
  return limits;
}
