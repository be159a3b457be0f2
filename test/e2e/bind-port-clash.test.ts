// Local bind ports that overlap a port the sidecar already listens on (docs/scoping.md), against
// a real Envoy whose bootstrap binds its ports exclusively (no SO_REUSEPORT). 0.0.0.0:P covers
// every IPv4 address on P, so 127.0.0.1:P next to it cannot bind: Envoy would refuse the
// sidecar's whole listener update (NACK) and keep refusing each new one. Such a bind port is a
// catalog error naming the field (two upstreams), or gets no listener and is reported (the
// sidecar's own inbound port); the sidecar's other listeners keep following the catalog.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConfigErrors } from '../../src/admin/mesh-endpoints.js';
import type { RunningControlPlane } from '../../src/app.js';
import { httpGet, startHttpApp, type HttpApp } from '../support/http-app.js';
import {
  CatalogFile,
  hasCluster,
  rejectedUpdates,
  startSidecar,
  startTestControlPlane,
  type Sidecar,
} from '../support/mesh.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

describe('local bind ports that overlap (real Envoy, exclusive ports)', () => {
  const file = new CatalogFile();
  let cp: RunningControlPlane;
  let hello: HttpApp, world: HttpApp, other: HttpApp;
  let client: Sidecar;
  let helloPort: number, sidecarPort: number;

  const catalog = (upstreams: unknown[], secondSidecarPort?: number) => ({
    services: [
      {
        name: 'client',
        upstreams,
        instances: [
          { id: 'client-1', address: '127.0.0.1', port: hello.port, sidecarPort },
          ...(secondSidecarPort !== undefined
            ? [
                {
                  id: 'client-2',
                  address: '127.0.0.2',
                  port: hello.port,
                  sidecarPort: secondSidecarPort,
                },
              ]
            : []),
        ],
      },
      ...(
        [
          ['hello', hello],
          ['world', world],
          ['other', other],
        ] as const
      ).map(([name, app]) => ({
        name,
        instances: [{ id: `${name}-1`, address: '127.0.0.1', port: app.port }],
      })),
    ],
  });

  const problems = async (): Promise<string[]> => {
    const r = await httpGet(`http://127.0.0.1:${cp.adminPort}/v1/config/errors`);
    return (JSON.parse(r.body) as ConfigErrors).problems.map((p) => p.message);
  };

  /** The bind port of hello answers with hello's app: the sidecar's listeners work. */
  const helloAnswers = async () => {
    const res = await httpGet(`http://127.0.0.1:${helloPort}/`, {}, 3000);
    expect(JSON.parse(res.body)).toMatchObject({ app: 'hello' });
  };

  beforeAll(async () => {
    [hello, world, other] = await Promise.all([
      startHttpApp('hello'),
      startHttpApp('world'),
      startHttpApp('other'),
    ]);
    helloPort = await freePort();
    sidecarPort = await freePort();
    file.write(catalog([{ name: 'hello', localBindPort: helloPort }]));
    cp = await startTestControlPlane(file, {}, { mesh: { scope: 'declared' } });
    client = await startSidecar({
      nodeId: 'client-1',
      service: 'client',
      xdsPort: cp.xdsPort,
      mode: 'sotw',
    });
    await client.envoy.waitFor(
      async () =>
        (await httpGet(`http://127.0.0.1:${helloPort}/`, {}, 1000).catch(() => null))?.status ===
        200,
      'hello at its bind port',
    );
  }, 60_000);

  afterAll(async () => {
    await client?.envoy.stop();
    await cp?.stop();
    await Promise.all([hello?.close(), world?.close(), other?.close()]);
    file.remove();
  });

  it('two upstreams on one port, one at 0.0.0.0: a catalog error naming the field', async () => {
    file.write(
      catalog([
        { name: 'hello', localBindPort: helloPort },
        { name: 'world', localBindPort: helloPort, localBindAddress: '0.0.0.0' },
      ]),
    );
    const found = await waitFor(
      async () => (await problems()).find((m) => m.includes('localBindPort')),
      { what: 'the overlapping bind port in /v1/config/errors' },
    );
    expect(found).toContain(
      `services[0].upstreams[1].localBindPort: 0.0.0.0:${helloPort} overlaps 127.0.0.1:${helloPort}, the local bind address of upstream "hello"`,
    );
    expect(await rejectedUpdates(client.envoy)).toBe(0);
    await helloAnswers();
  });

  it("a bind port on the sidecar's own inbound port gets no listener and is reported", async () => {
    // `other` comes with it: once its cluster is there, the listener update has been sent.
    file.write(
      catalog([
        { name: 'hello', localBindPort: helloPort },
        { name: 'world', localBindPort: sidecarPort },
        'other',
      ]),
    );
    await client.envoy.waitFor(() => hasCluster(client.envoy, 'other'), 'other cluster');
    const message = await waitFor(
      async () => (await problems()).find((m) => m.includes('sidecar port')),
      { what: 'the clash in /v1/config/errors' },
    );
    expect(message).toBe(
      `upstream "world": localBindPort ${sidecarPort} is the sidecar port of instance client-1 (its inbound listener, on 0.0.0.0); no listener there for "world" on that sidecar`,
    );
    // Give a refused listener update time to be counted, then check none was.
    await new Promise((r) => setTimeout(r, 1000));
    expect(await rejectedUpdates(client.envoy)).toBe(0);
    await helloAnswers();
  });

  it("a bind port at 0.0.0.0 on the sidecar's outbound port gets no listener there", async () => {
    // `world` goes with it: once its cluster is gone, the listener update has been sent.
    file.write(
      catalog([
        { name: 'hello', localBindPort: helloPort },
        { name: 'other', localBindPort: client.outboundPort, localBindAddress: '0.0.0.0' },
      ]),
    );
    await client.envoy.waitFor(async () => !(await hasCluster(client.envoy, 'world')), 'no world');
    await new Promise((r) => setTimeout(r, 1000));
    expect(await rejectedUpdates(client.envoy)).toBe(0);
    await helloAnswers();
    expect(JSON.parse((await client.call('other')).body)).toMatchObject({ app: 'other' });
  });

  it('an instance added on a bind port of its service is reported too', async () => {
    const worldPort = await freePort();
    const upstreams = [
      { name: 'hello', localBindPort: helloPort },
      { name: 'world', localBindPort: worldPort },
    ];
    file.write(catalog(upstreams));
    await client.envoy.waitFor(async () => !(await hasCluster(client.envoy, 'other')), 'no other');
    expect((await problems()).filter((m) => m.includes('sidecar port'))).toEqual([]);
    // Only the service's instances change: client-2, whose sidecar would listen on world's
    // bind port (client-1's sidecar is not concerned).
    file.write(catalog(upstreams, worldPort));
    const message = await waitFor(
      async () => (await problems()).find((m) => m.includes('sidecar port')),
      { what: 'the clash in /v1/config/errors' },
    );
    expect(message).toContain(
      `localBindPort ${worldPort} is the sidecar port of instance client-2`,
    );
    expect(await rejectedUpdates(client.envoy)).toBe(0);
    await helloAnswers();
  });
});
