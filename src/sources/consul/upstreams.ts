// Consul's explicit upstreams: a sidecar registration's Proxy.Upstreams, which Consul Connect
// users already write, become the service's declared upstreams (docs/scoping.md).
import type { Upstream } from '../../catalog/model.js';
import { bindAddressOf } from '../../catalog/bind-address.js';
import { bindClash, show, upstreamSchema } from '../../catalog/schema.js';
import type { ConsulHealthEntry } from './client.js';

/** The fields of one Consul upstream that lucid-mesh reads. */
interface ConsulUpstream {
  readonly DestinationType?: string;
  readonly DestinationName?: unknown;
  readonly LocalBindAddress?: unknown;
  readonly LocalBindPort?: unknown;
  readonly LocalBindSocketPath?: unknown;
  readonly Datacenter?: unknown;
  readonly DestinationPeer?: unknown;
  readonly DestinationPartition?: unknown;
  readonly DestinationNamespace?: unknown;
}

/**
 * Fields that name a service elsewhere than this mesh (a cluster peer, an admin partition or a
 * namespace other than the default): the local service of the same name is another service, so
 * such an entry is skipped rather than sent there.
 */
const ELSEWHERE = [
  ['DestinationPeer', () => true],
  ['DestinationPartition', (v: string) => v !== 'default'],
  ['DestinationNamespace', (v: string) => v !== 'default'],
] as const;

/**
 * The upstreams one sidecar registration declares; undefined when it declares none. A bad
 * entry is skipped and reported (the others still count).
 */
export function sidecarUpstreams(
  sidecar: ConsulHealthEntry | undefined,
  where: string,
  problems: string[],
): Upstream[] | undefined {
  const proxy = sidecar?.Service.Proxy as { Upstreams?: unknown } | null | undefined;
  const raw = proxy?.Upstreams;
  if (!Array.isArray(raw) || raw.length === 0) return undefined;
  const out: Upstream[] = [];
  raw.forEach((entry: ConsulUpstream, i) => {
    const at = `${where}: Proxy.Upstreams[${i}]`;
    if (entry?.DestinationType === 'prepared_query') {
      problems.push(`${at}: DestinationType prepared_query is not supported; upstream ignored`);
      return;
    }
    const elsewhere = ELSEWHERE.find(([field, counts]) => {
      const v = entry?.[field];
      return typeof v === 'string' && v !== '' && counts(v);
    });
    if (elsewhere) {
      const [field] = elsewhere;
      problems.push(
        `${at}: ${field} ${show(entry[field])} is not supported (lucid-mesh reaches only services of its own mesh, and its "${String(entry.DestinationName)}" is another service); upstream ignored`,
      );
      return;
    }
    // Consul sends 0 / "" for fields left unset.
    const parsed = upstreamSchema.safeParse({
      name: entry?.DestinationName,
      ...(entry?.LocalBindPort ? { localBindPort: entry.LocalBindPort } : {}),
      ...(entry?.LocalBindAddress ? { localBindAddress: entry.LocalBindAddress } : {}),
    });
    if (!parsed.success) {
      problems.push(
        `${at}: expected DestinationName (a service name), LocalBindPort 1-65535 and LocalBindAddress an IP, got ${show(entry)}; upstream ignored`,
      );
      return;
    }
    // Kept as declared upstreams; what lucid-mesh does not do is said, not silently dropped.
    if (typeof entry.LocalBindSocketPath === 'string' && entry.LocalBindSocketPath !== '') {
      problems.push(
        `${at}: LocalBindSocketPath is not supported (no unix socket listener for "${parsed.data.name}"); use LocalBindPort`,
      );
    }
    if (typeof entry.Datacenter === 'string' && entry.Datacenter !== '') {
      problems.push(
        `${at}: Datacenter ${show(entry.Datacenter)} is not read; "${parsed.data.name}" is reached in the mesh's locality and failover order`,
      );
    }
    out.push(parsed.data);
  });
  return out;
}

/**
 * A service's upstreams: those of its instances' sidecars together (by name; the first
 * sidecar naming a bind port for a name decides it). Undefined when no sidecar declares any.
 */
export function mergeUpstreams(
  lists: ReadonlyArray<readonly Upstream[] | undefined>,
  where: string,
  problems: string[],
): Upstream[] | undefined {
  if (lists.every((l) => l === undefined)) return undefined;
  const byName = new Map<string, Upstream>();
  for (const list of lists) {
    for (const u of list ?? []) {
      const known = byName.get(u.name);
      if (!known || (known.localBindPort === undefined && u.localBindPort !== undefined)) {
        byName.set(u.name, u);
      } else if (u.localBindPort !== undefined && u.localBindPort !== known.localBindPort) {
        problems.push(
          `${where}: sidecars disagree on the LocalBindPort of upstream "${u.name}" (${known.localBindPort} and ${u.localBindPort}); using ${known.localBindPort}`,
        );
      }
    }
  }
  // Two upstreams on one bind address would be a catalog error and skip the whole service:
  // the later name's bind port goes instead, reported.
  const taken: Array<{ address: string; port: number; name: string }> = [];
  return [...byName.values()].map((u) => {
    if (u.localBindPort === undefined) return u;
    const clash = bindClash(taken, u);
    if (clash === undefined) {
      taken.push({ address: bindAddressOf(u), port: u.localBindPort, name: u.name });
      return u;
    }
    problems.push(
      `${where}: upstream "${u.name}": LocalBindPort ${clash}; "${u.name}" gets no local listener`,
    );
    return { name: u.name };
  });
}
