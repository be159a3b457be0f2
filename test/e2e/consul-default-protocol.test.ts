// Consul's default protocol is tcp: a database or cache registered with nothing more works
// through its sidecar at L4. `serve --consul-default-protocol tcp` gives a Consul user that,
// with a real Consul agent and real Envoy: a server that speaks first (a greeting, as Redis,
// MySQL or SMTP do) is reached through the caller's LocalBindPort and its own sidecar, and a
// service whose registration says http keeps HTTP routing.
import { createServer, connect, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import { ConsulSource } from '../../src/sources/consul/consul-source.js';
import { consulSourceOptionsFromFlags } from '../../src/sources/consul/options.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { CONSUL_SETUP_TIMEOUT_MS, startConsul, type ConsulAgent } from '../support/consul.js';
import { startHttpApp, type HttpApp } from '../support/http-app.js';
import { startSidecar, type Sidecar } from '../support/mesh.js';
import { freePorts } from '../support/ports.js';
import { startSourceControlPlane } from '../support/source-control-plane.js';

/** A tcp server that greets first, then echoes lines: not HTTP. */
async function startGreeter(): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => {
    s.write('+READY cache\r\n');
    s.on('data', (d) => s.write(`echo:${d.toString()}`));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as { port: number }).port };
}

/** Connects, reads what the server says first, sends a line, reads the answer. */
function converse(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const socket = connect(port, '127.0.0.1');
    socket.setTimeout(2000, () => socket.destroy(new Error(`127.0.0.1:${port}: timeout (${got})`)));
    socket.on('data', (d) => {
      got += d.toString();
      if (got === '+READY cache\r\n') socket.write('PING\r\n');
      if (got.includes('echo:')) {
        resolve(got);
        socket.end();
      }
    });
    socket.once('error', reject);
    // Envoy closes a connection it has no upstream for (yet): no answer, try again.
    socket.once('close', () =>
      reject(new Error(`127.0.0.1:${port}: closed after ${JSON.stringify(got)}`)),
    );
  });
}

describe('--consul-default-protocol tcp (Consul: every service is tcp until an entry says http)', () => {
  let consul: ConsulAgent;
  let cp: RunningControlPlane;
  let greeter: { server: Server; port: number };
  let web: HttpApp;
  let client: Sidecar, cache: Sidecar;
  let cacheBind: number;

  beforeAll(async () => {
    [greeter, web] = await Promise.all([startGreeter(), startHttpApp('web')]);
    const [clientSidecarPort, cacheSidecarPort, bind] = (await freePorts(3)) as [
      number,
      number,
      number,
    ];
    cacheBind = bind;
    consul = await startConsul();
    const ttl = { TTL: '10m', Status: 'passing' };
    // Registered as Consul users do: no protocol anywhere.
    await consul.register({
      Name: 'cache',
      ID: 'cache-1',
      Address: '127.0.0.1',
      Port: greeter.port,
      Connect: { SidecarService: { Port: cacheSidecarPort, Checks: [ttl] } },
    });
    // Plain, and http by its registration: Host-routed on the outbound port as before.
    await consul.register({
      Name: 'web',
      ID: 'web-1',
      Address: '127.0.0.1',
      Port: web.port,
      Meta: { protocol: 'http' },
    });
    await consul.register({
      Name: 'client',
      ID: 'client-1',
      Address: '127.0.0.1',
      Port: 1,
      Connect: {
        SidecarService: {
          Port: clientSidecarPort,
          Checks: [ttl],
          Proxy: { Upstreams: [{ DestinationName: 'cache', LocalBindPort: cacheBind }] },
        },
      },
    });
    // What `serve --source consul --consul-default-protocol tcp` builds.
    const options = consulSourceOptionsFromFlags(
      {
        consul: consul.address,
        consulDefaultProtocol: 'tcp',
        consulWait: '30s',
        consulBackoffMax: '1s',
      },
      {},
    );
    cp = await startSourceControlPlane(new ConsulSource(options, silentLogger));
    [client, cache] = await Promise.all([
      startSidecar({
        nodeId: 'client-1-sidecar-proxy',
        service: 'client',
        xdsPort: cp.xdsPort,
        mode: 'sotw',
      }),
      startSidecar({
        nodeId: 'cache-1-sidecar-proxy',
        service: 'cache',
        xdsPort: cp.xdsPort,
        mode: 'sotw',
      }),
    ]);
  }, CONSUL_SETUP_TIMEOUT_MS);

  afterAll(async () => {
    await Promise.all([client?.envoy.stop(), cache?.envoy.stop()]);
    await cp?.stop();
    await consul?.stop();
    await web?.close();
    greeter?.server.close();
  });

  it('a server that speaks first is reached through LocalBindPort and its sidecar; http by registration stays http', async () => {
    const said = await client.envoy.waitFor(
      () => converse(cacheBind).catch(() => undefined),
      'client app → 127.0.0.1:<cache bind port> → cache sidecar → cache',
    );
    expect(said).toBe('+READY cache\r\necho:PING\r\n');
    const res = await client.envoy.waitFor(async () => {
      const r = await client.call('web', '/hello').catch(() => undefined);
      return r?.status === 200 ? r : undefined;
    }, 'client → web by Host on the outbound port');
    expect(JSON.parse(res.body)).toMatchObject({ app: 'web', path: '/hello' });
  });

  it('names the flag and the value it refuses', () => {
    expect(() => consulSourceOptionsFromFlags({ consulDefaultProtocol: 'udp' }, {})).toThrow(
      '--consul-default-protocol: expected http | tcp, got "udp"',
    );
  });
});
