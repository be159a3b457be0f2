// A Consul upstream in a cluster peer (Proxy.Upstreams[].DestinationPeer), with a real Consul
// agent and a real Envoy: lucid-mesh does not implement cluster peering, and the local service
// of the same name is another service. The entry is skipped (and logged): the app's call to
// the peer's bind port must not reach the local `api`, and the sidecar gets no `api`.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import { CONSUL_SETUP_TIMEOUT_MS, startConsul, type ConsulAgent } from '../support/consul.js';
import { httpGet, startHttpApp, type HttpApp } from '../support/http-app.js';
import { hasCluster, startSidecar, type Sidecar } from '../support/mesh.js';
import { freePorts } from '../support/ports.js';
import { consulTestSource, startSourceControlPlane } from '../support/source-control-plane.js';

describe('Consul upstream in a cluster peer (real Consul, real Envoy)', () => {
  let consul: ConsulAgent;
  let cp: RunningControlPlane;
  let api: HttpApp, search: HttpApp;
  let web: Sidecar;
  let peerBind: number, searchBind: number, sidecarPort: number, xdsPort: number;

  beforeAll(async () => {
    [api, search] = await Promise.all([startHttpApp('local-api'), startHttpApp('search')]);
    [peerBind, searchBind, sidecarPort, xdsPort] = (await freePorts(4)) as [
      number,
      number,
      number,
      number,
    ];
    consul = await startConsul();
    await consul.register({ Name: 'api', ID: 'api-1', Address: '127.0.0.1', Port: api.port });
    await consul.register({
      Name: 'search',
      ID: 'search-1',
      Address: '127.0.0.1',
      Port: search.port,
    });
    await consul.register({
      Name: 'web',
      ID: 'web-1',
      Address: '127.0.0.1',
      Port: 1,
      Connect: {
        SidecarService: {
          Port: sidecarPort,
          Proxy: {
            Upstreams: [
              { DestinationName: 'api', DestinationPeer: 'cluster-02', LocalBindPort: peerBind },
              { DestinationName: 'search', LocalBindPort: searchBind },
            ],
          },
        },
      },
    });
    cp = await startSourceControlPlane(consulTestSource(consul, 30_000), {
      mesh: { scope: 'declared' },
      xdsPort,
    });
    web = await startSidecar({
      nodeId: 'web-1-sidecar-proxy',
      service: 'web',
      xdsPort,
      mode: 'sotw',
    });
  }, CONSUL_SETUP_TIMEOUT_MS);

  afterAll(async () => {
    await web?.envoy.stop();
    await cp?.stop();
    await consul?.stop();
    await Promise.all([api?.close(), search?.close()]);
  });

  it("the peer's upstream reaches nothing local; the other upstream works", async () => {
    await web.envoy.waitFor(
      async () =>
        (await httpGet(`http://127.0.0.1:${searchBind}/`, {}, 1000).catch(() => null))?.status ===
        200,
      'web → search at its bind port',
      30_000,
    );
    expect(await hasCluster(web.envoy, 'api')).toBe(false);
    // Not the local api, whatever the answer (no listener: refused).
    const peer = await httpGet(`http://127.0.0.1:${peerBind}/`, {}, 1000).catch(
      (e: Error) => e.message,
    );
    expect(typeof peer === 'string' ? peer : peer.body).not.toContain('local-api');
  });
});
