// GET /v1/proxies: one row per connected proxy and its sync state per resource type.
import { proxyScope } from '../mesh/index.js';
import type { Mesh } from '../mesh/types.js';
import type { StreamInfo } from '../xds/type-status.js';
import { syncState, type SyncState } from '../xds/type-status.js';
import { compareStrings } from '../text-order.js';

export interface TypeRow {
  sentVersion?: string;
  sentNonce?: string;
  sentAt?: string;
  ackedVersion?: string;
  ackedAt?: string;
  status: SyncState;
  nackError?: string;
  nackAt?: string;
}

export interface ProxyRow {
  nodeId: string;
  service: string;
  mode: string;
  peer: string;
  connectedSince: string;
  /** What the node says of where it runs (datacenter, region, zone), when it says. */
  locality?: { datacenter?: string; region?: string; zone?: string };
  types: Record<string, TypeRow>;
  /** Its own resources fail to build: it keeps the last config it was sent (or has none yet). */
  buildError?: { message: string; since: string };
  /** Requests held back because it sent faster than --request-rate (when any were). */
  throttledRequests?: number;
  /** The services it receives, when scoped (docs/scoping.md); absent: every service. */
  scope?: { from: string; services: string[] };
  /** When its proxy token expires: the stream stays open, its next reconnect is refused. */
  tokenExpiresAt?: string;
}

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

export function proxyRows(streams: Iterable<StreamInfo>, mesh?: Mesh): ProxyRow[] {
  const rows: ProxyRow[] = [];
  for (const s of streams) {
    if (!s.proxy) continue; // not identified yet
    const types: Record<string, TypeRow> = {};
    for (const [kind, t] of [...s.types].sort(([a], [b]) => compareStrings(a, b))) {
      const status = syncState(t);
      types[kind] = dropUndefined({
        sentVersion: t.sentVersion,
        sentNonce: t.sentNonce,
        sentAt: iso(t.sentAt),
        ackedVersion: t.ackedVersion,
        ackedAt: iso(t.ackedAt),
        status,
        nackError: t.nack?.message,
        nackAt: iso(t.nack?.at),
      });
    }
    rows.push({
      nodeId: s.proxy.nodeId,
      service: s.proxy.service,
      mode: s.mode,
      peer: s.peer,
      connectedSince: new Date(s.connectedAt).toISOString(),
      ...(s.proxy.locality ? { locality: { ...s.proxy.locality } } : {}),
      types,
      ...(s.buildError
        ? { buildError: { message: s.buildError.message, since: iso(s.buildError.at)! } }
        : {}),
      ...(s.throttled > 0 ? { throttledRequests: s.throttled } : {}),
      ...(s.tokenExpiresAt !== undefined ? { tokenExpiresAt: iso(s.tokenExpiresAt) } : {}),
      ...scopeRow(mesh, s.proxy.service),
    });
  }
  return rows.sort(
    (a, b) =>
      compareStrings(a.nodeId, b.nodeId) || compareStrings(a.connectedSince, b.connectedSince),
  );
}

function scopeRow(mesh: Mesh | undefined, service: string): Pick<ProxyRow, 'scope'> {
  const scope = mesh ? proxyScope(mesh, service) : undefined;
  return scope?.services ? { scope: { from: scope.from, services: [...scope.services] } } : {};
}

function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
