// Two sidecars on one host given the same outbound port (real Envoy). Bootstrapped by
// `lucid-mesh bootstrap` (node.metadata.exclusive_ports), their own listeners are bound without
// SO_REUSEPORT: the second one's listener fails to bind, Envoy NACKs it, and `lucid-mesh status`
// says so, instead of both sharing the port and the kernel handing an app's connections to
// either (so to another service's identity). A sidecar bootstrapped before, without the key,
// keeps Envoy's default: Envoy refuses to change the option on a running listener.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProxyRow } from '../../src/admin/proxies.js';
import type { RunningControlPlane } from '../../src/app.js';
import { renderBootstrap, type XdsMode } from '../../src/bootstrap/render.js';
import { renderStatus } from '../../src/cli/status-command.js';
import { startEnvoy, type EnvoyHandle } from '../support/envoy.js';
import { httpGet, startHttpApp, type HttpApp } from '../support/http-app.js';
import { CatalogFile, startTestControlPlane } from '../support/mesh.js';
import { freePorts } from '../support/ports.js';

describe('sidecars on one host sharing an outbound port (real Envoy)', () => {
  const catalog = new CatalogFile();
  let cp: RunningControlPlane;
  let world: HttpApp;
  const envoys: EnvoyHandle[] = [];

  async function sidecar(
    nodeId: string,
    outboundPort: number,
    mode: XdsMode,
    bootstrapped: 'now' | 'before' = 'now',
  ): Promise<EnvoyHandle> {
    const [adminPort, dnsPort] = await freePorts(2);
    let yaml = renderBootstrap({
      nodeId,
      service: nodeId.replace(/-\d+$/, ''),
      xds: `127.0.0.1:${cp.xdsPort}`,
      mode,
      adminPort,
      outboundPort,
      dnsPort,
    });
    if (bootstrapped === 'before') {
      // What `lucid-mesh bootstrap` wrote before exclusive_ports existed.
      expect(yaml).toMatch(/^ {4}exclusive_ports: true\n/m);
      yaml = yaml.replace(/^ {4}exclusive_ports: true\n/m, '');
    }
    const envoy = await startEnvoy({ name: nodeId, adminPort: adminPort!, bootstrapYaml: yaml });
    envoys.push(envoy);
    return envoy;
  }

  const rows = async (): Promise<ProxyRow[]> =>
    (
      JSON.parse((await httpGet(`http://127.0.0.1:${cp.adminPort}/v1/proxies`, {}, 3000)).body) as {
        proxies: ProxyRow[];
      }
    ).proxies;

  /** The outbound listener as the Envoy holds it (config_dump). */
  async function outboundListener(envoy: EnvoyHandle, port: number): Promise<unknown> {
    const dump = await envoy.configDump();
    const listeners = dump.configs.find((c: { '@type': string }) =>
      c['@type'].endsWith('ListenersConfigDump'),
    );
    return (listeners?.dynamic_listeners ?? []).find(
      (l: { name: string }) => l.name === `outbound|http|${port}`,
    )?.active_state?.listener;
  }

  beforeAll(async () => {
    world = await startHttpApp('world');
    catalog.write({
      services: [
        { name: 'web', instances: [] },
        { name: 'api', instances: [] },
        { name: 'old', instances: [] },
        { name: 'world', instances: [{ id: 'world-1', address: '127.0.0.1', port: world.port }] },
      ],
    });
    cp = await startTestControlPlane(catalog);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    await cp?.stop();
    await world?.close();
    catalog.remove();
  });

  it('the second sidecar on a port NACKs its listener ("Address already in use"), shown in status; the app reaches the first', async () => {
    const [shared] = await freePorts(1);
    const web = await sidecar('web-1', shared!, 'sotw');
    await web.waitFor(
      async () =>
        (await httpGet(`http://127.0.0.1:${shared}/`, { host: 'world' }, 2000).catch(() => null))
          ?.status === 200,
      'web-1 → world through its outbound listener',
    );
    expect(await outboundListener(web, shared!)).toMatchObject({ enable_reuse_port: false });

    const api = await sidecar('api-1', shared!, 'delta');
    const row = await api.waitFor(async () => {
      const r = (await rows()).find((p) => p.nodeId === 'api-1');
      return r?.types.listeners?.nackError ? r : undefined;
    }, 'api-1 NACKs its outbound listener');
    const nack = row.types.listeners!.nackError!;
    expect(nack).toContain(`outbound|http|${shared}`);
    expect(nack).toContain(`cannot bind '127.0.0.1:${shared}': Address already in use`);
    expect(renderStatus(await rows())).toMatch(
      new RegExp(`api-1 listeners NACKED .*cannot bind '127\\.0\\.0\\.1:${shared}'`),
    );
    // Envoy keeps the rest of the update: api-1 holds its clusters, not the clashing listener.
    expect(await outboundListener(api, shared!)).toBeUndefined();
    // Every connection to the port lands in web-1's Envoy, none in api-1's.
    const before = (await web.stat('http.outbound_http.downstream_rq_total')) ?? 0;
    for (let i = 0; i < 10; i++) {
      const r = await httpGet(`http://127.0.0.1:${shared}/`, { host: 'world' }, 2000);
      expect(r.status).toBe(200);
    }
    expect(await web.stat('http.outbound_http.downstream_rq_total')).toBe(before + 10);
    expect(await api.stat('http.outbound_http.downstream_rq_total')).toBeUndefined();
  });

  it('a sidecar bootstrapped before exclusive_ports keeps SO_REUSEPORT and is not NACKed', async () => {
    const [port] = await freePorts(1);
    const old = await sidecar('old-1', port!, 'sotw', 'before');
    await old.waitFor(
      async () =>
        (await httpGet(`http://127.0.0.1:${port}/`, { host: 'world' }, 2000).catch(() => null))
          ?.status === 200,
      'old-1 → world',
    );
    const listener = (await outboundListener(old, port!)) as Record<string, unknown>;
    expect(listener).toBeDefined();
    expect(listener).not.toHaveProperty('enable_reuse_port');
    const row = (await rows()).find((p) => p.nodeId === 'old-1')!;
    expect(row.types.listeners).toMatchObject({ status: 'SYNCED' });
  });
});
