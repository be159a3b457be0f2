// Mesh: services with their instances (health, locality), protocol, subsets, routes and splits,
// and who may call whom (GET /v1/mesh, /v1/mesh/calls).
import { ApiError, api, type MeshDump } from '../api.js';
import { percent } from '../format.js';
import { usePoll } from '../use-poll.js';
import { CallGraphView } from './call-graph.js';

type Service = MeshDump['services'][number];
type Route = Service['routes'][number];

function describeMatch(route: Route): string {
  const m = route.match;
  const parts = [m.path ? `${m.path.kind} ${m.path.value}` : 'any path'];
  if (m.methods.length > 0) parts.push(m.methods.join('|'));
  for (const h of m.headers) parts.push(`header ${JSON.stringify(h)}`);
  for (const q of m.queryParams) parts.push(`query ${JSON.stringify(q)}`);
  return parts.join(', ');
}

function locality(l: Service['instances'][number]['locality']): string {
  return [l.datacenter, l.region, l.zone].filter(Boolean).join(' / ') || '—';
}

function ServiceCard({ service }: { service: Service }) {
  const subsets = service.backends.filter((b) => b.subset !== undefined);
  return (
    <section class="card service" data-service={service.name}>
      <h3>
        {service.name} <span class="tag">{service.protocol}</span>
        <span class="muted"> from {service.protocolFrom}</span>
        {service.gatewayMode && (
          <span class="muted"> · mesh gateway mode {service.gatewayMode} (service-defaults)</span>
        )}
      </h3>
      <table>
        <thead>
          <tr>
            <th>instance</th>
            <th>address</th>
            <th>health</th>
            <th>locality</th>
            <th>sidecar</th>
          </tr>
        </thead>
        <tbody>
          {service.instances.map((i) => (
            <tr data-instance={i.id}>
              <td>{i.id}</td>
              <td>
                {i.address}:{i.port}
              </td>
              <td class={`health ${i.health}`}>{i.health}</td>
              <td>{locality(i.locality)}</td>
              <td>{i.sidecarPort ?? '—'}</td>
            </tr>
          ))}
          {service.instances.length === 0 && (
            <tr>
              <td colSpan={5} class="muted">
                no instances
              </td>
            </tr>
          )}
        </tbody>
      </table>
      {subsets.length > 0 && (
        <p class="subsets">
          subsets:{' '}
          {subsets.map((b) => (
            <span class="tag">{b.subset}</span>
          ))}
        </p>
      )}
      {service.routes.length > 0 && (
        <table class="routes">
          <thead>
            <tr>
              <th>route</th>
              <th>to</th>
            </tr>
          </thead>
          <tbody>
            {service.routes.map((r) => (
              <tr>
                <td>{describeMatch(r)}</td>
                <td>
                  {r.destinations.map((d) => (
                    <span class="tag">
                      {d.backend} {r.destinations.length > 1 ? percent(d.weight) : ''}
                    </span>
                  ))}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** The catalog's mesh gateways and the mode sidecars use to reach other datacenters. */
function GatewaysCard({ mesh }: { mesh: MeshDump }) {
  // `?? []`: a control plane from before /v1/mesh listed them.
  const gateways = mesh.gateways ?? [];
  const mode = mesh.gatewayMode ?? 'none';
  if (gateways.length === 0 && mode === 'none') return null;
  return (
    <section class="card gateways">
      <h3>
        Mesh gateways <span class="muted">mode {mode} (proxy-defaults)</span>
      </h3>
      <table>
        <thead>
          <tr>
            <th>gateway</th>
            <th>datacenter</th>
            <th>address</th>
            <th>WAN address</th>
            <th>health</th>
          </tr>
        </thead>
        <tbody>
          {gateways.map((g) => (
            <tr data-gateway={g.id}>
              <td>{g.id}</td>
              <td>{g.datacenter}</td>
              <td>
                {g.address}:{g.port}
              </td>
              <td>
                {g.wanAddress}:{g.wanPort}
              </td>
              <td class={`health ${g.healthy ? 'passing' : 'critical'}`}>
                {g.healthy ? 'healthy' : 'critical'}
              </td>
            </tr>
          ))}
          {gateways.length === 0 && (
            <tr>
              <td colSpan={5} class="muted">
                none in the catalog
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </section>
  );
}

/** 413: the mesh has more services than the call graph is drawn for. */
const tooBig = (err: Error): boolean => err instanceof ApiError && err.status === 413;

/**
 * Who may call whom. Refused for a big mesh: that answer stands until the mesh changes size,
 * so it is asked again only then (polling it every 5 s was a 413 and a devtools error each).
 */
function CallsSection({ services }: { services: number }) {
  const calls = usePoll(api.calls, 5000, String(services), tooBig);
  if (calls.data) return <CallGraphView graph={calls.data} />;
  return <p class="muted graph-unavailable">{calls.error ?? 'Loading…'}</p>;
}

export function MeshView() {
  const mesh = usePoll(api.mesh, 2000);
  if (!mesh.data) return <main>{mesh.error ? <p class="error">{mesh.error}</p> : 'Loading…'}</main>;
  const m = mesh.data;
  return (
    <main id="mesh-view">
      <h2>
        Mesh <span class="muted">snapshot {m.snapshotVersion || '—'}</span>
      </h2>
      {mesh.error && <p class="error">{mesh.error}</p>}
      <p class="muted">
        datacenter {m.settings.datacenter}; mTLS {m.settings.mtls ? 'on' : 'off'};{' '}
        {m.services.length} services
      </p>
      {m.problems.length > 0 && (
        <section class="card problems">
          <h3>Configuration problems</h3>
          <ul>
            {m.problems.map((p) => (
              <li>
                {p.kind}/{p.name}: {p.message}
              </li>
            ))}
          </ul>
        </section>
      )}
      <GatewaysCard mesh={m} />
      <div class="services">
        {m.services.map((s) => (
          <ServiceCard service={s} />
        ))}
      </div>
      <h2>Who may call whom</h2>
      <CallsSection services={m.services.length} />
    </main>
  );
}
