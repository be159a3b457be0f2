// Apps written for Consul Connect call each upstream at LocalBindAddress:LocalBindPort. With a
// real Consul agent and real Envoy: the sidecar registration's Proxy.Upstreams scope the
// sidecar to those services and give each a local listener there (HTTP routed like the shared
// outbound listener, tcp proxied), so such an app moves to lucid-mesh unchanged.
import { createServer as createHttpServer } from 'node:http';
import { createServer, connect, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProxyRow } from '../../src/admin/proxies.js';
import type { RunningControlPlane } from '../../src/app.js';
import { renderStatus } from '../../src/cli/status-command.js';
import { CONSUL_SETUP_TIMEOUT_MS, startConsul, type ConsulAgent } from '../support/consul.js';
import { httpGet, startHttpApp, type HttpApp } from '../support/http-app.js';
import { hasCluster, startSidecar, type Sidecar } from '../support/mesh.js';
import { freePorts } from '../support/ports.js';
import { consulTestSource, startSourceControlPlane } from '../support/source-control-plane.js';

/** A tcp server that answers every line with "db:<line>". */
async function startEcho(): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => s.on('data', (d) => s.write(`db:${d.toString()}`)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port };
}

function tcpRoundTrip(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(text));
    socket.setTimeout(3000, () => socket.destroy(new Error(`tcp 127.0.0.1:${port}: timeout`)));
    socket.once('data', (d) => {
      resolve(d.toString());
      socket.end();
    });
    socket.once('error', reject);
  });
}

describe('Consul Proxy.Upstreams with local bind ports (real Consul, real Envoy)', () => {
  let consul: ConsulAgent;
  let cp: RunningControlPlane;
  let world: HttpApp, other: HttpApp;
  let db: { server: Server; port: number };
  let client: Sidecar;
  let worldBind: number, dbBind: number, lateBind: number, sidecarPort: number, xdsPort: number;
  let innerBind: number, innerSidecarPort: number;
  let inner: Sidecar;
  // inner's app listens on 127.0.0.2 only (its Proxy.LocalServiceAddress).
  const innerApp = createHttpServer((_req, res) => res.end('inner on 127.0.0.2'));

  beforeAll(async () => {
    [world, other, db] = await Promise.all([
      startHttpApp('world'),
      startHttpApp('other'),
      startEcho(),
    ]);
    [worldBind, dbBind, lateBind, sidecarPort, xdsPort, innerBind, innerSidecarPort] =
      (await freePorts(7)) as [number, number, number, number, number, number, number];
    await new Promise<void>((resolve) => innerApp.listen(0, '127.0.0.2', resolve));
    const innerPort = (innerApp.address() as { port: number }).port;
    consul = await startConsul();
    await consul.register({ Name: 'world', ID: 'world-1', Address: '127.0.0.1', Port: world.port });
    await consul.register({ Name: 'other', ID: 'other-1', Address: '127.0.0.1', Port: other.port });
    await consul.register({
      Name: 'db',
      ID: 'db-1',
      Address: '127.0.0.1',
      Port: db.port,
      Meta: { protocol: 'tcp' },
    });
    // What a Consul Connect user writes for the app: its sidecar and explicit upstreams.
    await consul.register({
      Name: 'client',
      ID: 'client-1',
      Address: '127.0.0.1',
      Port: 1,
      Connect: {
        SidecarService: {
          Port: sidecarPort,
          Proxy: {
            Upstreams: [
              { DestinationName: 'world', LocalBindPort: worldBind },
              { DestinationName: 'db', LocalBindPort: dbBind },
              // Not registered until the last test: an upstream started after its caller.
              { DestinationName: 'late', LocalBindPort: lateBind },
              { DestinationName: 'inner', LocalBindPort: innerBind },
            ],
          },
        },
      },
    });
    await consul.register({
      Name: 'inner',
      ID: 'inner-1',
      Address: '127.0.0.1',
      Port: innerPort,
      Connect: {
        SidecarService: {
          Port: innerSidecarPort,
          Proxy: { LocalServiceAddress: '127.0.0.2' },
          // Passing at once, not after Consul's default TCP check first runs (up to 10 s).
          Checks: [{ TTL: '10m', Status: 'passing' }],
        },
      },
    });
    cp = await startSourceControlPlane(consulTestSource(consul, 30_000), {
      mesh: { scope: 'declared' },
      xdsPort,
    });
    [client, inner] = await Promise.all([
      startSidecar({ nodeId: 'client-1-sidecar-proxy', service: 'client', xdsPort, mode: 'sotw' }),
      startSidecar({ nodeId: 'inner-1-sidecar-proxy', service: 'inner', xdsPort, mode: 'sotw' }),
    ]);
  }, CONSUL_SETUP_TIMEOUT_MS);

  afterAll(async () => {
    await Promise.all([client?.envoy.stop(), inner?.envoy.stop()]);
    innerApp.closeAllConnections();
    innerApp.close();
    await cp?.stop();
    await consul?.stop();
    await Promise.all([world?.close(), other?.close()]);
    db?.server.close();
  });

  it('an app calling 127.0.0.1:<LocalBindPort> reaches the upstream (HTTP and tcp)', async () => {
    const res = await client.envoy.waitFor(
      async () => {
        const r = await httpGet(`http://127.0.0.1:${worldBind}/pay`, {}, 2000).catch(
          () => undefined,
        );
        return r?.status === 200 ? r : undefined;
      },
      'client app → 127.0.0.1:<world bind port>',
      30_000,
    );
    expect(JSON.parse(res.body)).toMatchObject({ app: 'world', path: '/pay' });
    expect(await tcpRoundTrip(dbBind, 'ping')).toBe('db:ping');
    // Scoped to its upstreams: no cluster for a service it did not declare.
    expect(await hasCluster(client.envoy, 'world')).toBe(true);
    expect(await hasCluster(client.envoy, 'other')).toBe(false);
    // The control plane's view of the proxy names its scope: /v1/snapshot and lucid-mesh status.
    const base = `http://127.0.0.1:${cp.adminPort}`;
    const dump = JSON.parse(
      (await httpGet(`${base}/v1/snapshot?node=client-1-sidecar-proxy`, {}, 3000)).body,
    ) as { scope: unknown };
    expect(dump.scope).toEqual({ from: 'declared', services: ['db', 'inner', 'world'] });
    const { proxies } = JSON.parse((await httpGet(`${base}/v1/proxies`, {}, 3000)).body) as {
      proxies: ProxyRow[];
    };
    expect(renderStatus(proxies)).toContain(
      'client-1-sidecar-proxy scope (declared): db, inner, world',
    );
  });

  it('a bind port listens before its upstream is registered and after it is gone: 503, never a refused connection', async () => {
    // What an app sees at 127.0.0.1:<port> (a refused connection throws ECONNREFUSED).
    const call = async (): Promise<string> => {
      try {
        const r = await httpGet(`http://127.0.0.1:${lateBind}/x`, {}, 2000);
        return `${r.status} ${r.body.trim()}`;
      } catch (err) {
        return (err as NodeJS.ErrnoException).code ?? String(err);
      }
    };
    const answers = (want: RegExp, what: string): Promise<string> =>
      client.envoy.waitFor(async () => {
        const got = await call();
        return want.test(got) ? got : undefined;
      }, what);
    // Consul's sidecar keeps an upstream's listener whatever the catalog holds; so does ours.
    expect(await answers(/^503 /, 'late not registered: 503')).toBe(
      '503 upstream "late": no such service in the mesh',
    );
    const late = await startHttpApp('late');
    try {
      await consul.register({ Name: 'late', ID: 'late-1', Address: '127.0.0.1', Port: late.port });
      expect(await answers(/^200 /, 'late registered: 200')).toContain('"app":"late"');
      // Its only instance goes (a redeploy): requests fail with 503, the port stays open.
      await consul.deregister('late-1');
      const seen = new Set<string>();
      await client.envoy.waitFor(async () => {
        const got = await call();
        seen.add(got.split(' ')[0]!);
        return got.startsWith('503 ') ? got : undefined;
      }, 'late deregistered: 503');
      expect([...seen].filter((s) => s !== '200' && s !== '503')).toEqual([]);
    } finally {
      await late.close();
    }
  });

  it("the sidecar reaches its app at the registration's Proxy.LocalServiceAddress", async () => {
    // Consul's sidecar forwards to LocalServiceAddress:LocalServicePort; an app bound to
    // 127.0.0.2 alone is unreachable at 127.0.0.1.
    const res = await client.envoy.waitFor(async () => {
      const r = await httpGet(`http://127.0.0.1:${innerBind}/`, {}, 2000).catch(() => undefined);
      return r?.status === 200 ? r : undefined;
    }, 'client app → inner sidecar → inner app on 127.0.0.2');
    expect(res.body).toBe('inner on 127.0.0.2');
  });
});
