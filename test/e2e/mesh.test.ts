// The whole product against real Envoy, in SotW and in delta mode: two sidecars, two apps,
// live catalog edits, health changes, service removal, a control plane restart.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import type { XdsMode } from '../../src/bootstrap/render.js';
import { startHttpApp, type HttpApp } from '../support/http-app.js';
import {
  CatalogFile,
  clusterHosts,
  hasCluster,
  rejectedUpdates,
  startSidecar,
  startTestControlPlane,
  type Sidecar,
  waitReaches,
} from '../support/mesh.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

describe.each<XdsMode>(['sotw', 'delta'])('real Envoy mesh (%s)', (mode) => {
  const catalog = new CatalogFile();
  let cp: RunningControlPlane;
  let xdsPort: number;
  let hello: HttpApp, world: HttpApp, world2: HttpApp;
  let a: Sidecar, b: Sidecar;
  let helloSidecarPort: number, worldSidecarPort: number;

  const doc = (
    opts: { world2?: 'passing' | 'critical'; extra?: boolean; withWorld?: boolean } = {},
  ) => ({
    services: [
      {
        name: 'hello',
        protocol: 'http',
        instances: [
          { id: 'hello-1', address: '127.0.0.1', port: hello.port, sidecarPort: helloSidecarPort },
        ],
      },
      ...(opts.withWorld === false
        ? []
        : [
            {
              name: 'world',
              protocol: 'http',
              instances: [
                {
                  id: 'world-1',
                  address: '127.0.0.1',
                  port: world.port,
                  sidecarPort: worldSidecarPort,
                },
                // Not meshed: peers reach it directly.
                ...(opts.world2
                  ? [
                      {
                        id: 'world-2',
                        address: '127.0.0.1',
                        port: world2.port,
                        health: opts.world2,
                      },
                    ]
                  : []),
              ],
            },
          ]),
      ...(opts.extra
        ? [
            {
              name: 'extra',
              instances: [{ id: 'extra-1', address: '127.0.0.1', port: world2.port }],
            },
          ]
        : []),
    ],
  });

  /** Waits until `times` consecutive requests from sidecar A to world succeed; returns the apps that answered. */
  async function callWorld(times: number): Promise<string[]> {
    const answered: string[] = [];
    for (let i = 0; i < times; i++) {
      const res = await a.call('world');
      expect(res.status, res.body).toBe(200);
      answered.push((JSON.parse(res.body) as { app: string }).app);
    }
    return answered;
  }

  beforeAll(async () => {
    [hello, world, world2] = await Promise.all([
      startHttpApp('hello'),
      startHttpApp('world'),
      startHttpApp('world-2'),
    ]);
    [helloSidecarPort, worldSidecarPort, xdsPort] = [
      await freePort(),
      await freePort(),
      await freePort(),
    ];
    catalog.write(doc());
    cp = await startTestControlPlane(catalog, { xds: xdsPort });
    [a, b] = await Promise.all([
      startSidecar({ nodeId: 'hello-1', service: 'hello', xdsPort, mode }),
      startSidecar({ nodeId: 'world-1', service: 'world', xdsPort, mode }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([a?.envoy.stop(), b?.envoy.stop()]);
    await cp?.stop();
    await Promise.all([hello?.close(), world?.close(), world2?.close()]);
    catalog.remove();
  });

  it('routes a request from sidecar A through sidecar B to app B, and back the other way', async () => {
    await waitReaches(a, 'world', 'A → world', 20_000);
    const res = await a.call('world', '/greet');
    expect(JSON.parse(res.body)).toMatchObject({ app: 'world', path: '/greet' });
    // It went through B's sidecar: world's endpoint in A is B's inbound port.
    expect(await clusterHosts(a.envoy, 'world')).toEqual([`127.0.0.1:${worldSidecarPort}`]);
    await waitReaches(b, 'hello', 'B → hello', 20_000);
    expect(JSON.parse((await b.call('hello.lucid.internal')).body)).toMatchObject({ app: 'hello' });
    expect(await a.envoy.stat('control_plane.connected_state')).toBe(1);
  });

  it('applies an added instance: Envoy lists it and traffic reaches it', async () => {
    const before = world2.hits;
    catalog.write(doc({ world2: 'passing' }));
    await a.envoy.waitFor(
      async () => (await clusterHosts(a.envoy, 'world')).includes(`127.0.0.1:${world2.port}`),
      'world-2 in A /clusters',
    );
    const answered = await callWorld(12);
    expect(answered).toContain('world-2');
    expect(world2.hits).toBeGreaterThan(before);
  });

  it('stops sending traffic to an instance marked critical', async () => {
    catalog.write(doc({ world2: 'critical' }));
    await a.envoy.waitFor(
      async () => !(await clusterHosts(a.envoy, 'world')).includes(`127.0.0.1:${world2.port}`),
      'world-2 gone from A /clusters',
    );
    const before = world2.hits;
    const answered = await callWorld(12);
    expect(answered.every((app) => app === 'world')).toBe(true);
    expect(world2.hits).toBe(before);
  });

  it('rejects an invalid catalog edit and keeps serving the last good one', async () => {
    const version = cp.store.snapshot?.version;
    catalog.write(
      'services:\n  - name: world\n    instances:\n      - { id: w, address: 127.0.0.1, port: "80a" }\n',
    );
    const sourceErrors = () =>
      cp.metrics.registry.getSingleMetricAsString('lucid_mesh_source_errors_total');
    await waitFor(async () => (await sourceErrors()).includes('{source="file"} 1'), {
      what: 'the rejected edit counted',
    });
    expect(cp.store.snapshot?.version).toBe(version);
    expect((await a.call('world')).status).toBe(200);
    catalog.write(doc({ world2: 'critical' }));
  });

  it('removes the cluster of a removed service', async () => {
    catalog.write(doc({ world2: 'critical', extra: true }));
    await a.envoy.waitFor(async () => hasCluster(a.envoy, 'extra'), 'cluster extra added');
    expect((await a.call('extra')).status).toBe(200);
    catalog.write(doc({ world2: 'critical' }));
    await a.envoy.waitFor(
      async () => !(await hasCluster(a.envoy, 'extra')),
      'cluster extra removed',
    );
    expect((await a.call('extra')).status).toBe(404); // no virtual host any more
    expect((await a.call('world')).status).toBe(200);
  });

  it('keeps serving while the control plane restarts, and sees no change for unchanged resources', async () => {
    const modifiedBefore = {
      clusters: await a.envoy.stat('cluster_manager.cluster_modified'),
      listeners: await a.envoy.stat('listener_manager.listener_modified'),
    };
    const dumpVersions = async () => {
      const dump = await a.envoy.configDump();
      const versions: Record<string, string> = {};
      for (const section of dump.configs as Array<Record<string, unknown>>) {
        for (const key of [
          'dynamic_active_clusters',
          'dynamic_listeners',
          'dynamic_route_configs',
        ]) {
          for (const entry of (section[key] as Array<Record<string, unknown>> | undefined) ?? []) {
            const e = entry as {
              version_info?: string;
              active_state?: { version_info?: string; listener?: { name: string } };
              cluster?: { name: string };
              route_config?: { name: string };
            };
            const name =
              e.cluster?.name ?? e.active_state?.listener?.name ?? e.route_config?.name ?? '?';
            versions[`${key}/${name}`] = e.version_info ?? e.active_state?.version_info ?? '';
          }
        }
      }
      return versions;
    };
    const versionsBefore = await dumpVersions();
    expect(Object.keys(versionsBefore).length).toBeGreaterThan(3);

    await cp.stop();
    await a.envoy.waitFor(
      async () => (await a.envoy.stat('control_plane.connected_state')) === 0,
      'A notices the control plane is gone',
    );
    expect(JSON.parse((await a.call('world')).body)).toMatchObject({ app: 'world' }); // data plane unaffected

    cp = await startTestControlPlane(catalog, { xds: xdsPort });
    await a.envoy.waitFor(
      async () => (await a.envoy.stat('control_plane.connected_state')) === 1,
      'A reconnects',
      20_000,
    );
    // Give the reconnected stream time to deliver everything it would deliver.
    await a.envoy.waitFor(async () => {
      const streams = [...cp.xds.connected.values()].filter((s) => s.proxy?.nodeId === 'hello-1');
      return (
        streams.length === 1 &&
        [...streams[0]!.types.values()].every((t) => t.ackedNonce === t.sentNonce) &&
        streams[0]!.types.size >= 4
      );
    }, 'A has ACKed everything after reconnect');
    expect(await dumpVersions()).toEqual(versionsBefore);
    expect(await a.envoy.stat('cluster_manager.cluster_modified')).toBe(modifiedBefore.clusters);
    expect(await a.envoy.stat('listener_manager.listener_modified')).toBe(modifiedBefore.listeners);
    expect((await a.call('world')).status).toBe(200);
  });

  it('never had an update rejected', async () => {
    expect(await rejectedUpdates(a.envoy)).toBe(0);
    expect(await rejectedUpdates(b.envoy)).toBe(0);
    expect(cp.counters.nacks).toBe(0);
  });
});
