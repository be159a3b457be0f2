// The mesh model over the admin API of a real control plane (the composition `serve` runs, on a
// catalog file and a watched traffic file): GET /v1/mesh, /v1/config/errors, /v1/route/explain
// and the lucid_mesh_config_errors{kind} gauge. A router naming a missing subset shows in all
// of them and breaks nothing; a rejected traffic file edit shows too, while the last good
// configuration stays in force.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigErrors, MeshDump } from '../../src/admin/mesh-endpoints.js';
import type { RouteExplanation } from '../../src/mesh/explain.js';
import { httpGet } from '../support/http-app.js';
import { parsePrometheusText } from '../support/prometheus.js';
import { waitFor } from '../support/wait.js';
import {
  MISSING_SUBSET,
  TRAFFIC,
  startOperatorMesh,
  type OperatorMesh,
} from './operator-fixture.js';

let m: OperatorMesh;
beforeAll(async () => {
  m = await startOperatorMesh();
  await waitFor(async () => (await httpGet(`${m.server}/ready`)).status === 200, {
    what: 'control plane ready',
  });
});
afterAll(() => m?.close());

async function get<T>(path: string): Promise<{ status: number; body: T }> {
  const r = await httpGet(`${m.server}${path}`);
  return { status: r.status, body: JSON.parse(r.body) as T };
}

async function configErrorsMetric(): Promise<Record<string, number>> {
  const samples = parsePrometheusText((await httpGet(`${m.server}/metrics`)).body);
  const out: Record<string, number> = {};
  for (const [key, value] of samples) {
    const kind = /^lucid_mesh_config_errors\{kind="([^"]+)"\}$/.exec(key)?.[1];
    if (kind) out[kind] = value;
  }
  return out;
}

describe('GET /v1/mesh', () => {
  it('is the mesh model: services with backends and routes, problems, unsupported', async () => {
    const { status, body } = await get<MeshDump>('/v1/mesh');
    expect(status).toBe(200);
    expect(body.snapshotVersion).toMatch(/.+/);
    expect(body.services.map((s) => s.name)).toEqual(['api', 'web']);
    const api = body.services[0]!;
    expect(api).toMatchObject({ protocol: 'http', protocolFrom: 'service-defaults/api' });
    expect(api.backends.map((b) => [b.name, b.localities[0]?.endpoints.map((e) => e.id)])).toEqual([
      ['api', ['api-1', 'api-2']],
      ['api~v1', ['api-1']],
      ['api~v2', ['api-2']],
    ]);
    expect(
      api.routes.map((r) => [r.match.path?.value, r.destinations.map((d) => d.backend)]),
    ).toEqual([
      ['/admin', ['api~v2']],
      [undefined, ['api~v1']],
      [undefined, ['api~v1']],
    ]);
    expect(body.problems).toEqual([MISSING_SUBSET]);
    expect(body.unsupported).toEqual([
      { kind: 'service-defaults', name: 'api', field: 'MaxInboundConnections' },
    ]);
  });

  it('?service=S: that service and the problems naming it; an unknown one is 404', async () => {
    const web = await get<MeshDump>('/v1/mesh?service=web');
    expect(web.body.services.map((s) => s.name)).toEqual(['web']);
    expect(web.body.problems).toEqual([]);
    const missing = await get<{ error: string }>('/v1/mesh?service=nope');
    expect(missing).toEqual({
      status: 404,
      body: { error: 'service: "nope" is not in the mesh (services: api, web)' },
    });
  });
});

describe('GET /v1/route/explain', () => {
  it('explains a request against the live mesh', async () => {
    const { status, body } = await get<RouteExplanation>(
      '/v1/route/explain?from=web&to=api&path=/admin/x&method=get&header=X-Trace:abc',
    );
    expect(status).toBe(200);
    expect(body.request).toEqual({
      method: 'GET',
      path: '/admin/x',
      headers: { 'x-trace': 'abc' },
    });
    expect(body.route).toMatchObject({
      index: 0,
      description: 'PathPrefix /admin',
      timeout: { ms: 500, from: 'route' },
      retry: { numRetries: 3, retryOn: ['5xx'] },
    });
    expect(body.destinations.map((d) => [d.backend, d.weightPercent, d.endpoints])).toEqual([
      ['api~v2', 100, 1],
    ]);
    expect(body.authorization).toMatchObject({ decision: 'allow', enforced: false });
  });

  it('the header naming the missing subset falls back to the default destination', async () => {
    const { body } = await get<RouteExplanation>(
      '/v1/route/explain?from=web&to=api&path=/&header=x-canary:1',
    );
    expect(body.route?.index).toBe(1);
    expect(body.destinations.map((d) => d.backend)).toEqual(['api~v1']);
    expect(body.notes).toContain(`config problem: service-router/api: ${MISSING_SUBSET.message}`);
  });

  it('400 without a required parameter, 404 for an unknown destination', async () => {
    const noPath = await get<{ error: string }>('/v1/route/explain?from=web&to=api');
    expect(noPath.status).toBe(400);
    expect(noPath.body.error).toMatch(/^path: required/);
    const badHeader = await get<{ error: string }>(
      '/v1/route/explain?from=web&to=api&path=/&header=novalue',
    );
    expect(badHeader).toEqual({
      status: 400,
      body: { error: 'header: expected name:value, got "novalue"' },
    });
    const unknown = await get<{ error: string }>('/v1/route/explain?from=web&to=nope&path=/');
    expect(unknown).toEqual({
      status: 404,
      body: { error: 'to: service "nope" is not in the mesh' },
    });
  });
});

describe('config errors: /v1/config/errors and lucid_mesh_config_errors{kind}', () => {
  it('list the missing subset and the unsupported field; the gauge counts per kind', async () => {
    const { status, body } = await get<ConfigErrors>('/v1/config/errors');
    expect(status).toBe(200);
    expect(body).toEqual({
      problems: [MISSING_SUBSET],
      unsupported: [{ kind: 'service-defaults', name: 'api', field: 'MaxInboundConnections' }],
    });
    expect(await configErrorsMetric()).toEqual({
      'proxy-defaults': 0,
      'service-defaults': 0,
      'service-router': 1,
      'service-splitter': 0,
      'service-resolver': 0,
      'service-intentions': 0,
    });
  });

  it('a rejected traffic file edit shows (the last good configuration stays), then clears', async () => {
    m.traffic.write([
      { Kind: 'service-router', Name: 'api', Routes: [{ Destination: { NumRetries: -1 } }] },
    ]);
    const rejected = await waitFor(
      async () => {
        const { body } = await get<ConfigErrors>('/v1/config/errors');
        return body.problems.length === 2 ? body : undefined;
      },
      { what: 'the rejected edit in /v1/config/errors' },
    );
    expect(rejected.problems).toEqual([
      MISSING_SUBSET,
      {
        kind: 'traffic-file',
        name: m.traffic.path,
        message:
          'service-router/api: Routes[0].Destination.NumRetries: expected integer ≥ 0, got -1 (the last good traffic configuration stays in force)',
      },
    ]);
    expect(await configErrorsMetric()).toMatchObject({ 'service-router': 1, 'traffic-file': 1 });
    // Still in force: /admin goes to v2.
    const explained = await get<RouteExplanation>('/v1/route/explain?from=web&to=api&path=/admin');
    expect(explained.body.destinations[0]?.backend).toBe('api~v2');

    // Fixed, and the missing subset too: nothing left.
    const fixed = TRAFFIC.filter((e) => e.Kind !== 'service-router');
    m.traffic.write(fixed);
    await waitFor(
      async () => (await get<ConfigErrors>('/v1/config/errors')).body.problems.length === 0,
      { what: 'no problems left' },
    );
    const metric = await configErrorsMetric();
    expect(metric['service-router']).toBe(0);
    expect(metric['traffic-file']).toBeUndefined();
  });
});
