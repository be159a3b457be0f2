// Config scoping against a real Envoy (docs/scoping.md): a sidecar whose service declares its
// upstreams receives only those; taking one out of the declaration removes its cluster and
// virtual host there (make-before-break: no update rejected, the rest keeps working), and a
// declared upstream with a local bind port is reachable at 127.0.0.1:<port>.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigErrors } from '../../src/admin/mesh-endpoints.js';
import type { RunningControlPlane } from '../../src/app.js';
import type { RouteExplanation } from '../../src/mesh/explain.js';
import { dig } from '../support/dig.js';
import { httpGet, startHttpApp, type HttpApp } from '../support/http-app.js';
import {
  CatalogFile,
  hasCluster,
  rejectedUpdates,
  startSidecar,
  startTestControlPlane,
  type Sidecar,
  waitReaches,
} from '../support/mesh.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

describe('scoped sidecar (real Envoy)', () => {
  const file = new CatalogFile();
  let cp: RunningControlPlane;
  let hello: HttpApp, world: HttpApp, other: HttpApp;
  let client: Sidecar;
  let bindPort: number;
  let dnsPort: number;

  const catalog = (upstreams: unknown[]) => ({
    services: [
      { name: 'client', instances: [], upstreams },
      ...[
        ['hello', () => hello],
        ['world', () => world],
        ['other', () => other],
      ].map(([name, app]) => ({
        name: name as string,
        instances: [
          { id: `${name as string}-1`, address: '127.0.0.1', port: (app as () => HttpApp)().port },
        ],
      })),
    ],
  });

  /** Virtual host names of the outbound route configuration Envoy holds. */
  const outboundHosts = async (): Promise<string[]> => {
    const dump = (await client.envoy.configDump()) as {
      configs: Array<{ dynamic_route_configs?: Array<{ route_config: Record<string, unknown> }> }>;
    };
    for (const c of dump.configs) {
      for (const r of c.dynamic_route_configs ?? []) {
        const config = r.route_config as { name: string; virtual_hosts?: Array<{ name: string }> };
        // Over VHDS (delta) a host is named `outbound/<service>` (translate/vhds.ts).
        if (config.name === 'outbound')
          return (config.virtual_hosts ?? []).map((h) => h.name.replace(/^outbound\//, ''));
      }
    }
    return [];
  };

  beforeAll(async () => {
    [hello, world, other] = await Promise.all([
      startHttpApp('hello'),
      startHttpApp('world'),
      startHttpApp('other'),
    ]);
    bindPort = await freePort();
    dnsPort = await freePort();
    file.write(catalog(['hello', { name: 'world', localBindPort: bindPort }]));
    cp = await startTestControlPlane(file, {}, { mesh: { scope: 'declared' } });
    client = await startSidecar({
      nodeId: 'client-1',
      service: 'client',
      xdsPort: cp.xdsPort,
      mode: 'delta',
      dnsPort,
    });
  }, 60_000);

  afterAll(async () => {
    await client?.envoy.stop();
    await cp?.stop();
    await Promise.all([hello?.close(), world?.close(), other?.close()]);
    file.remove();
  });

  it('receives only its declared upstreams; the bind port reaches its upstream', async () => {
    await waitReaches(client, 'hello', 'client → hello');
    expect(await hasCluster(client.envoy, 'world')).toBe(true);
    expect(await hasCluster(client.envoy, 'other')).toBe(false);
    expect(await outboundHosts()).toEqual(['hello', 'world']);
    // The app calls the upstream at its local bind port, with whatever Host it likes.
    const res = await httpGet(`http://127.0.0.1:${bindPort}/x`, {}, 3000);
    expect(res.status, res.body).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ app: 'world', path: '/x' });
    // Outside its scope: the outbound listener has no route there.
    expect((await client.call('other')).status).toBe(404);
    // Its DNS listener answers the names of its scope only (docs/dns.md).
    const world = await dig(dnsPort, 'world.lucid.internal');
    expect(
      world.answers.map((a) => a.data),
      world.output,
    ).toEqual(['127.0.0.1']);
    expect((await dig(dnsPort, 'other.lucid.internal')).status).toBe('NXDOMAIN');
  });

  it('route explain says a service outside the caller scope gets 404 from its sidecar', async () => {
    const explain = async (to: string) => {
      const r = await httpGet(
        `http://127.0.0.1:${cp.adminPort}/v1/route/explain?from=client&to=${to}&path=/`,
      );
      expect(r.status, r.body).toBe(200);
      return JSON.parse(r.body) as RouteExplanation;
    };
    // What the real sidecar does: no virtual host for `other` (the first test), so 404.
    expect((await client.call('other')).status).toBe(404);
    const out = await explain('other');
    expect(out.notes).toContain(
      'other is outside the scope of client (its declared upstreams and what they route to: ' +
        'hello, world): ' +
        "client's sidecar has no route for other and answers 404",
    );
    expect(out.scope).toEqual({ from: 'declared', reachable: false });
    const inScope = await explain('hello');
    expect(inScope.scope).toEqual({ from: 'declared', reachable: true });
    expect(inScope.notes.join('\n')).not.toContain('outside the scope');
  });

  it('taking a service out of the declaration removes its cluster and route there', async () => {
    file.write(catalog(['hello', 'other']));
    await client.envoy.waitFor(
      async () => !(await hasCluster(client.envoy, 'world')),
      'world cluster removed',
    );
    expect(await outboundHosts()).toEqual(['hello', 'other']);
    expect(await rejectedUpdates(client.envoy)).toBe(0);
    expect((await client.call('world')).status).toBe(404);
    // The bind listener went with the declaration.
    await expect(httpGet(`http://127.0.0.1:${bindPort}/`, {}, 1000)).rejects.toThrow();
    const res = await client.call('other');
    expect(JSON.parse(res.body)).toMatchObject({ app: 'other' });
    expect((await client.call('hello')).status).toBe(200);
    // Nothing was left waiting for a resource it lost (make-before-break order).
    expect(await client.envoy.stat('cluster_manager.warming_clusters')).toBe(0);
    expect(await client.envoy.stat('listener_manager.total_listeners_warming')).toBe(0);
  });

  it('a declared upstream the catalog does not have (a typo) is reported', async () => {
    file.write(catalog(['hello', 'helo', { name: 'wrold', localBindPort: bindPort }]));
    const errors = async () => {
      const r = await httpGet(`http://127.0.0.1:${cp.adminPort}/v1/config/errors`);
      return (JSON.parse(r.body) as ConfigErrors).problems;
    };
    const found = await waitFor(
      async () => {
        const p = await errors();
        return p.length > 0 ? p : undefined;
      },
      { what: 'the unknown upstreams in /v1/config/errors' },
    );
    expect(found).toEqual([
      {
        kind: 'catalog',
        name: 'client',
        message:
          'upstream "helo" is not in the catalog: client\'s sidecars get no route for it until it is',
      },
      {
        kind: 'catalog',
        name: 'client',
        message:
          'upstream "wrold" is not in the catalog: client\'s sidecars get no route for it until it is (its local bind port answers 503 meanwhile)',
      },
    ]);
    // What the sidecar does meanwhile: the bind port answers 503 naming it.
    await client.envoy.waitFor(
      async () =>
        (await httpGet(`http://127.0.0.1:${bindPort}/`, {}, 1000).catch(() => null))?.status ===
        503,
      'wrold bind port answering 503',
    );
    expect((await client.call('hello')).status).toBe(200);
    // The typos fixed: the problems go.
    file.write(catalog(['hello']));
    await waitFor(async () => ((await errors()).length === 0 ? true : undefined), {
      what: 'no problem left',
    });
  });
});
