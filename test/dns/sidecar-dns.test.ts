// Sidecar DNS with real Envoy: the DNS listener the control plane sends over LDS answers
// <service>.lucid.internal with 127.0.0.1 (dig against the sidecar's UDP port), and an app
// that resolves world.lucid.internal through it reaches world through the mesh.
import dgram from 'node:dgram';
import { Resolver } from 'node:dns/promises';
import { request, type IncomingHttpHeaders } from 'node:http';
import type { LookupFunction } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import { renderBootstrap } from '../../src/bootstrap/render.js';
import { dig } from '../support/dig.js';
import { startEnvoy, type EnvoyHandle } from '../support/envoy.js';
import { httpGet, startHttpApp, type HttpApp } from '../support/http-app.js';
import { CatalogFile, startTestControlPlane } from '../support/mesh.js';
import { freePorts } from '../support/ports.js';

let file: CatalogFile;
let cp: RunningControlPlane;
let world: HttpApp;
let helloSidecar: EnvoyHandle;
let worldSidecar: EnvoyHandle;
let dnsPort: number;
let outboundPort: number;

function catalog(worldInbound: number, more: unknown[] = []): unknown {
  return {
    services: [
      { name: 'hello', instances: [{ id: 'hello-1', address: '127.0.0.1', port: 9 }] },
      {
        name: 'world',
        instances: [
          { id: 'world-1', address: '127.0.0.1', port: world.port, sidecarPort: worldInbound },
        ],
      },
      ...more,
    ],
  };
}

let worldInbound: number;

beforeAll(async () => {
  world = await startHttpApp('world');
  let helloAdmin: number, worldAdmin: number, worldOutbound: number;
  [worldInbound, helloAdmin, worldAdmin, outboundPort, worldOutbound, dnsPort] = (await freePorts(
    6,
  )) as [number, number, number, number, number, number];
  file = new CatalogFile();
  file.write(catalog(worldInbound));
  cp = await startTestControlPlane(file);
  // hello's sidecar on delta xDS, world's on state of the world: the listener works in both.
  const bootstrap = (nodeId: string, service: string, admin: number, out: number, dns: number) =>
    renderBootstrap({
      nodeId,
      service,
      mode: nodeId === 'hello-1' ? 'delta' : 'sotw',
      xds: `127.0.0.1:${cp.xdsPort}`,
      adminPort: admin,
      outboundPort: out,
      dnsPort: dns,
    });
  [helloSidecar, worldSidecar] = await Promise.all([
    startEnvoy({
      name: 'hello-1',
      adminPort: helloAdmin,
      bootstrapYaml: bootstrap('hello-1', 'hello', helloAdmin, outboundPort, dnsPort),
    }),
    // dns_port 0: this sidecar gets no DNS listener.
    startEnvoy({
      name: 'world-1',
      adminPort: worldAdmin,
      bootstrapYaml: bootstrap('world-1', 'world', worldAdmin, worldOutbound, 0),
    }),
  ]);
  await helloSidecar.waitFor(
    async () => (await helloSidecar.admin('/listeners')).includes(`dns|${dnsPort}::`),
    'the DNS listener over LDS',
  );
  await worldSidecar.waitFor(
    async () => (await worldSidecar.admin('/listeners')).includes(`inbound|world-1::`),
    'world-1 inbound listener',
  );
}, 60_000);

afterAll(async () => {
  await Promise.all([helloSidecar?.stop(), worldSidecar?.stop()]);
  await cp?.stop();
  await world?.close();
  file?.remove();
});

/** GET url, resolving its host name with the sidecar's DNS only (as an app configured so). */
function getViaSidecarDns(
  url: string,
): Promise<{ status: number; body: string; headers: IncomingHttpHeaders }> {
  const resolver = new Resolver({ timeout: 2000, tries: 1 });
  resolver.setServers([`127.0.0.1:${dnsPort}`]);
  const lookup: LookupFunction = (hostname, options, callback) => {
    resolver.resolve4(hostname).then(
      (addresses) => {
        if (options.all) callback(null, [{ address: addresses[0]!, family: 4 }]);
        else callback(null, addresses[0]!, 4);
      },
      (err: NodeJS.ErrnoException) => callback(err, '', 4),
    );
  };
  return new Promise((resolve, reject) => {
    const req = request(url, { lookup, agent: false, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString(),
          headers: res.headers,
        }),
      );
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: timed out`)));
    req.on('error', reject);
    req.end();
  });
}

describe('sidecar DNS (real Envoy)', () => {
  it('answers <service>.lucid.internal with 127.0.0.1, NXDOMAIN for unknown mesh names', async () => {
    const r = await dig(dnsPort, 'world.lucid.internal', 'A');
    expect(r.status, r.output).toBe('NOERROR');
    expect(r.answers.map((a) => [a.type, a.data])).toEqual([['A', '127.0.0.1']]);
    // AAAA: the same address IPv4-mapped, which a dual-stack socket reaches the listener by.
    const v6 = await dig(dnsPort, 'world.lucid.internal', 'AAAA');
    expect(v6.answers.map((a) => [a.type, a.data])).toEqual([['AAAA', '::ffff:127.0.0.1']]);
    const hello = await dig(dnsPort, 'hello.lucid.internal', 'A');
    expect(hello.answers.map((a) => a.data)).toEqual(['127.0.0.1']);
    const unknown = await dig(dnsPort, 'nope.lucid.internal', 'A');
    expect(unknown.status, unknown.output).toBe('NXDOMAIN');
  });

  it('an app calling http://world.lucid.internal:<outbound port>/ reaches world through the mesh', async () => {
    const hitsBefore = world.hits;
    const res = await getViaSidecarDns(`http://world.lucid.internal:${outboundPort}/hi`);
    expect(res.status, res.body).toBe(200);
    const body = JSON.parse(res.body) as { app: string; path: string; host: string };
    expect(body.app).toBe('world');
    expect(body.path).toBe('/hi');
    // Routed by the outbound virtual host's world.lucid.internal:* domain.
    expect(body.host).toBe(`world.lucid.internal:${outboundPort}`);
    expect(res.headers['x-envoy-upstream-service-time']).toBeDefined();
    expect(world.hits).toBe(hitsBefore + 1);
  });

  it('an app preferring IPv6 reaches world through the AAAA answer too', async () => {
    const resolver = new Resolver({ timeout: 2000, tries: 1 });
    resolver.setServers([`127.0.0.1:${dnsPort}`]);
    const [v6] = await resolver.resolve6('world.lucid.internal');
    const res = await httpGet(`http://[${v6}]:${outboundPort}/`, {
      host: `world.lucid.internal:${outboundPort}`,
    });
    expect(res.status, res.body).toBe(200);
    expect((JSON.parse(res.body) as { app: string }).app).toBe('world');
  });

  it('--dns-forward off: names not in its table are answered NXDOMAIN by the sidecar, never forwarded', async () => {
    // With a host resolver that sends only the mesh domain to the sidecar, a forwarded name
    // comes straight back: one unknown name looped until Envoy's 256 pending lookups ran out.
    const external = (envoy: EnvoyHandle) =>
      envoy.stat('dns_filter.mesh_dns.external_a_record_queries').then((n) => n ?? 0);
    const [admin, out, dns] = (await freePorts(3)) as [number, number, number];
    const local = await startEnvoy({
      name: 'local-dns-1',
      adminPort: admin,
      bootstrapYaml: renderBootstrap({
        nodeId: 'local-dns-1',
        service: 'hello',
        xds: `127.0.0.1:${cp.xdsPort}`,
        adminPort: admin,
        outboundPort: out,
        dnsPort: dns,
        dnsForward: false,
      }),
    });
    try {
      await local.waitFor(
        async () =>
          (await dig(dns, 'world.lucid.internal', 'A').catch(() => null))?.status === 'NOERROR',
        'the no-forward DNS listener answers world',
      );
      const forwardedBefore = await external(helloSidecar);
      for (const name of ['nope.lucid.internal', 'example.com']) {
        const r = await dig(dns, name, 'A');
        expect(r.status, `${name}: ${r.output}`).toBe('NXDOMAIN');
        // The default sidecar sends the same name on to its resolvers.
        await dig(dnsPort, name, 'A');
      }
      expect(await external(local)).toBe(0);
      expect(await external(helloSidecar)).toBe(forwardedBefore + 2);
    } finally {
      await local.stop();
    }
  });

  it('a sidecar bootstrapped with --dns-port 0 has no DNS listener', async () => {
    expect(await worldSidecar.admin('/listeners')).not.toContain('dns|');
  });

  it('follows the catalog: a new service resolves once it is added', async () => {
    const before = await dig(dnsPort, 'later.lucid.internal', 'A');
    expect(before.status).toBe('NXDOMAIN');
    file.write(
      catalog(worldInbound, [
        { name: 'later', instances: [{ id: 'later-1', address: '127.0.0.1', port: 9 }] },
      ]),
    );
    await helloSidecar.waitFor(
      async () => (await dig(dnsPort, 'later.lucid.internal', 'A')).status === 'NOERROR',
      'later.lucid.internal to resolve',
    );
    const r = await dig(dnsPort, 'later.lucid.internal', 'A');
    expect(r.answers.map((a) => a.data)).toEqual(['127.0.0.1']);
  });

  it('garbage packets do not stop it answering', async () => {
    const socket = dgram.createSocket('udp4');
    try {
      for (const bytes of [
        Buffer.from([1, 2, 3]),
        Buffer.alloc(512, 0xff),
        Buffer.from('definitely not a DNS query'),
      ]) {
        await new Promise<void>((resolve, reject) =>
          socket.send(bytes, dnsPort, '127.0.0.1', (err) => (err ? reject(err) : resolve())),
        );
      }
    } finally {
      socket.close();
    }
    const r = await dig(dnsPort, 'world.lucid.internal', 'A');
    expect(r.answers.map((a) => a.data)).toEqual(['127.0.0.1']);
    expect(helloSidecar.running()).toBe(true);
  });
});
