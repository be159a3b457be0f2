// Mesh gateways against real Envoy, mTLS from the built-in CA and token-authenticated xDS. One
// control plane serves two "datacenters" on 127.0.0.1: web (dc1) calls api (dc2) through
// gw-dc1 and gw-dc2, two gateways bootstrapped with `lucid-mesh bootstrap --gateway mesh`.
// A gateway's LAN address is 127.0.0.1 and its WAN address 127.0.0.2 (same port: its listener
// binds 0.0.0.0), so what web's Envoy holds tells the paths apart.
//
// Each phase counts what crossed each hop: requests per endpoint in web's Envoy (/clusters),
// connections and bytes on each gateway's tcp_proxy (`tcp.mesh_gateway_dc_dc2.*` on gw-dc1 for
// dc2-bound traffic, `tcp.mesh_gateway_api.*` on gw-dc2 for api), TLS handshakes on api's
// inbound listener, and the requests api's app answered. Switch times are measured from the
// file write to the change in web's applied EDS, and printed at the end.
//
// The first test has api in dc2 only. From the second on, api also has a critical
// registration in dc1 (no process behind it), so its backend spans datacenters and web's
// dc2 priority is the one that takes the traffic. The decoy (another service's sidecar, in
// dc2) is what a wrong route leads to: web must refuse it by the SAN check.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import { MemoryCaStore, openCa, type OpenedCa } from '../../src/ca/index.js';
import type { EnvoyHandle } from '../support/envoy.js';
import {
  appliedEndpoints,
  certificateUris,
  counters,
  gatewayChains,
  hostCounters,
  showEndpoints,
  startMeshGateway,
  type Counters,
} from '../support/gateway.js';
import { startHttpApp, type HttpApp } from '../support/http-app.js';
import {
  CatalogFile,
  clusterHosts,
  rejectedUpdates,
  startSidecar,
  startTestControlPlane,
  type Sidecar,
} from '../support/mesh.js';
import { freePorts } from '../support/ports.js';
import {
  callMany,
  callThrough,
  envoyCluster,
  hostHealthFlags,
  type Tally,
} from '../support/traffic-app.js';
import { waitFor } from '../support/wait.js';

const TRUST_DOMAIN = 'lucid.internal';
const API_SPIFFE = `spiffe://${TRUST_DOMAIN}/ns/default/svc/api`;
const API_DC2_SNI = `api.default.dc2.${TRUST_DOMAIN}`;
const WAN = '127.0.0.2';

type Mode = 'local' | 'remote' | 'none';

interface CatalogState {
  /** api also registered in dc1, critical (no process): its backend spans datacenters. */
  readonly dc1Api?: boolean;
  /** api-1 (dc2) critical. */
  readonly apiCritical?: boolean;
  /** A second dc2 api instance whose sidecar port is the decoy's sidecar. */
  readonly decoyAsApi?: boolean;
  /** gw-dc2's WAN address and port are the decoy's sidecar. */
  readonly wanToDecoy?: boolean;
  /** gw-dc2's health in the catalog (default passing). */
  readonly gw2Health?: 'passing' | 'critical';
  /** gw-dc2 registered in dc3 instead: dc2 has no gateway in the catalog. */
  readonly gw2InDc3?: boolean;
  /** api-1 tagged v1, and a second dc2 instance tagged v2 (its own app and sidecar). */
  readonly v2?: { appPort: number; sidecarPort: number };
  /** No gateway in the catalog. */
  readonly noGateways?: boolean;
}

describe('mesh gateways: web (dc1) → api (dc2) through gw-dc1 and gw-dc2, mTLS end to end', () => {
  const catalog = new CatalogFile();
  const traffic = new CatalogFile('traffic.yaml');
  const report: Record<string, unknown> = {};
  let ca: OpenedCa | undefined;
  let cp: RunningControlPlane | undefined;
  let apps: HttpApp[] = [];
  let webApp: HttpApp, apiApp: HttpApp, decoyApp: HttpApp;
  let web: Sidecar, api: Sidecar, decoy: Sidecar;
  let gw1: EnvoyHandle, gw2: EnvoyHandle;
  const envoys: EnvoyHandle[] = [];
  let ports: {
    web: number;
    api: number;
    decoy: number;
    gw1: number;
    gw2: number;
    dc1ApiApp: number;
    dc1ApiSidecar: number;
  };

  const catalogDoc = (s: CatalogState = {}) => ({
    services: [
      {
        name: 'web',
        instances: [
          {
            id: 'web-1',
            address: '127.0.0.1',
            port: webApp.port,
            sidecarPort: ports.web,
            datacenter: 'dc1',
          },
        ],
      },
      {
        name: 'api',
        instances: [
          {
            id: 'api-1',
            address: '127.0.0.1',
            port: apiApp.port,
            sidecarPort: ports.api,
            datacenter: 'dc2',
            health: s.apiCritical ? 'critical' : 'passing',
            ...(s.v2 ? { tags: ['v1'] } : {}),
          },
          ...(s.v2
            ? [
                {
                  id: 'api-v2',
                  address: '127.0.0.1',
                  port: s.v2.appPort,
                  sidecarPort: s.v2.sidecarPort,
                  datacenter: 'dc2',
                  tags: ['v2'],
                },
              ]
            : []),
          ...(s.decoyAsApi
            ? [
                {
                  id: 'api-2',
                  address: '127.0.0.1',
                  port: decoyApp.port,
                  sidecarPort: ports.decoy,
                  datacenter: 'dc2',
                },
              ]
            : []),
          ...(s.dc1Api
            ? [
                {
                  id: 'api-dc1',
                  address: '127.0.0.1',
                  port: ports.dc1ApiApp,
                  sidecarPort: ports.dc1ApiSidecar,
                  datacenter: 'dc1',
                  health: 'critical',
                },
              ]
            : []),
        ],
      },
      {
        name: 'decoy',
        instances: [
          {
            id: 'decoy-1',
            address: '127.0.0.1',
            port: decoyApp.port,
            sidecarPort: ports.decoy,
            datacenter: 'dc2',
          },
        ],
      },
    ],
    gateways: s.noGateways
      ? []
      : [
          {
            id: 'gw-dc1',
            datacenter: 'dc1',
            address: '127.0.0.1',
            port: ports.gw1,
            wanAddress: WAN,
            wanPort: ports.gw1,
          },
          {
            id: 'gw-dc2',
            datacenter: s.gw2InDc3 ? 'dc3' : 'dc2',
            address: '127.0.0.1',
            port: ports.gw2,
            wanAddress: s.wanToDecoy ? '127.0.0.1' : WAN,
            wanPort: s.wanToDecoy ? ports.decoy : ports.gw2,
            health: s.gw2Health ?? 'passing',
          },
        ],
  });

  // api takes calls from web only: api's sidecar RBAC counts an allowed request only when
  // the client certificate it verified is web's.
  const trafficDoc = (mode: Mode) => [
    { Kind: 'proxy-defaults', Name: 'global', MeshGateway: { Mode: mode } },
    {
      Kind: 'service-intentions',
      Name: 'api',
      Sources: [
        { Name: 'web', Action: 'allow' },
        { Name: '*', Action: 'deny' },
      ],
    },
  ];

  const apiEds = () => appliedEndpoints(web.envoy, 'api');

  /** Polls `check` every 25 ms after `write()`; the milliseconds until it held. */
  async function timed(what: string, write: () => void, check: () => Promise<boolean>) {
    const started = performance.now();
    write();
    await waitFor(check, { what, timeoutMs: 15_000, intervalMs: 25 });
    return Math.round(performance.now() - started);
  }

  /** Waits until web's Envoy holds no connection for api (pooled ones included). */
  async function noOpenApiConnections(what: string): Promise<void> {
    await web.envoy.waitFor(
      async () => (await counters(web.envoy)).get('cluster.api.upstream_cx_active') === 0,
      `web holds no api connection (${what})`,
    );
  }

  interface Snapshot {
    web: Counters;
    gw1: Counters;
    gw2: Counters;
    api: Counters;
    webHosts: Map<string, Record<string, string>>;
    apiHits: number;
    decoyHits: number;
  }
  async function snapshot(): Promise<Snapshot> {
    const [w, g1, g2, a, webHosts] = await Promise.all([
      counters(web.envoy),
      counters(gw1),
      counters(gw2),
      counters(api.envoy),
      hostCounters(web.envoy, 'api'),
    ]);
    return {
      web: w,
      gw1: g1,
      gw2: g2,
      api: a,
      webHosts,
      apiHits: apiApp.hits,
      decoyHits: decoyApp.hits,
    };
  }
  const rq = (s: Snapshot, host: string) => Number(s.webHosts.get(host)?.rq_total ?? 0);

  /** Per-hop differences between two snapshots. */
  function hops(a: Snapshot, b: Snapshot) {
    const d = (get: (s: Snapshot) => number) => get(b) - get(a);
    const apiListener = `listener.0.0.0.0_${ports.api}`;
    return {
      webUpstreamCx: d((s) => s.web.get('cluster.api.upstream_cx_total')),
      webRequests: d((s) => s.web.get('cluster.api.upstream_rq_total')),
      viaGw1: d((s) => rq(s, `127.0.0.1:${ports.gw1}`)),
      viaGw2Wan: d((s) => rq(s, `${WAN}:${ports.gw2}`)),
      direct: d((s) => rq(s, `127.0.0.1:${ports.api}`)),
      gw1Cx: d((s) => s.gw1.get('tcp.mesh_gateway_dc_dc2.downstream_cx_total')),
      gw1RxBytes: d((s) => s.gw1.get('tcp.mesh_gateway_dc_dc2.downstream_cx_rx_bytes_total')),
      gw2Cx: d((s) => s.gw2.get('tcp.mesh_gateway_api.downstream_cx_total')),
      gw2RxBytes: d((s) => s.gw2.get('tcp.mesh_gateway_api.downstream_cx_rx_bytes_total')),
      apiTlsHandshakes: d((s) => s.api.get(`${apiListener}.ssl.handshake`)),
      apiRbacAllowed: d((s) => s.api.sum(/\.rbac\.allowed$/)),
      apiApp: d((s) => s.apiHits),
      decoyApp: d((s) => s.decoyHits),
    };
  }

  const send = (n: number): Promise<Tally> => callMany(web, 'api', n, { concurrency: 2 });
  /** `n` requests web → api, and what each hop counted meanwhile. */
  async function sendCounted(n: number) {
    const before = await snapshot();
    const tally = await send(n);
    return { tally, hops: hops(before, await snapshot()) };
  }
  /**
   * Requests expected to fail at the TLS handshake: one at a time (one connection each), and
   * fewer than the 5 consecutive failures after which outlier detection (on for failover
   * backends) would eject the endpoint for 30 s.
   */
  const REFUSED = 4;
  async function sendRefused() {
    const decoyListener = `listener.0.0.0.0_${ports.decoy}`;
    const decoyBefore = await counters(decoy.envoy);
    const before = await snapshot();
    const tally = await callMany(web, 'api', REFUSED, { concurrency: 1 });
    const after = await snapshot();
    const decoyAfter = await counters(decoy.envoy);
    const failVerifySan = 'cluster.api.ssl.fail_verify_san';
    const decoyCx = `${decoyListener}.downstream_cx_total`;
    return {
      tally,
      h: hops(before, after),
      failVerifySan: after.web.get(failVerifySan) - before.web.get(failVerifySan),
      decoyCx: decoyAfter.get(decoyCx) - decoyBefore.get(decoyCx),
    };
  }

  beforeAll(async () => {
    apps = await Promise.all([startHttpApp('web'), startHttpApp('api'), startHttpApp('decoy')]);
    [webApp, apiApp, decoyApp] = apps as [HttpApp, HttpApp, HttpApp];
    // Distinct among themselves (held open together while picked); api-dc1 is critical:
    // nothing listens on its two.
    const free = await freePorts(7);
    const [web_, api_, decoy_, gw1_, gw2_, dc1App, dc1Sidecar] = free;
    ports = {
      web: web_!,
      api: api_!,
      decoy: decoy_!,
      gw1: gw1_!,
      gw2: gw2_!,
      dc1ApiApp: dc1App!,
      dc1ApiSidecar: dc1Sidecar!,
    };
    catalog.write(catalogDoc());
    traffic.write(trafficDoc('local'));
    ca = await openCa({ store: new MemoryCaStore() });
    cp = await startTestControlPlane(
      catalog,
      {},
      { security: { ca, mtls: true, auth: 'token' }, traffic },
    );
    const xdsPort = cp.xdsPort;
    const token = (service: string) => ca!.tokens.issue(service);
    const started = await Promise.allSettled([
      startSidecar({
        nodeId: 'web-1',
        service: 'web',
        xdsPort,
        mode: 'delta',
        token: await token('web'),
      }),
      startSidecar({
        nodeId: 'api-1',
        service: 'api',
        xdsPort,
        mode: 'sotw',
        token: await token('api'),
      }),
      startSidecar({
        nodeId: 'decoy-1',
        service: 'decoy',
        xdsPort,
        mode: 'delta',
        token: await token('decoy'),
      }),
      startMeshGateway({
        id: 'gw-dc1',
        datacenter: 'dc1',
        xdsPort,
        mode: 'delta',
        token: await token('mesh-gateway'),
      }),
      startMeshGateway({
        id: 'gw-dc2',
        datacenter: 'dc2',
        xdsPort,
        mode: 'sotw',
        token: await token('mesh-gateway'),
      }),
    ]);
    for (const s of started) {
      if (s.status === 'fulfilled') envoys.push('envoy' in s.value ? s.value.envoy : s.value);
    }
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) throw (failed as PromiseRejectedResult).reason;
    [web, api, decoy] = started
      .slice(0, 3)
      .map((s) => (s as PromiseFulfilledResult<Sidecar>).value) as [Sidecar, Sidecar, Sidecar];
    [gw1, gw2] = started.slice(3).map((s) => (s as PromiseFulfilledResult<EnvoyHandle>).value) as [
      EnvoyHandle,
      EnvoyHandle,
    ];
    // Ready: both gateways listen, api's sidecar terminates mesh TLS, web has api's endpoints.
    await Promise.all([
      gw1.waitFor(
        async () => (await gw1.admin('/listeners')).includes(`:${ports.gw1}`),
        'gw-dc1 listener',
      ),
      gw2.waitFor(
        async () => (await gw2.admin('/listeners')).includes(`:${ports.gw2}`),
        'gw-dc2 listener',
      ),
      api.envoy.waitFor(
        async () => (await api.envoy.admin('/listeners')).includes(`:${ports.api}`),
        'api inbound listener',
      ),
      web.envoy.waitFor(async () => (await apiEds()).length > 0, 'web has endpoints for api'),
    ]);
  });

  afterAll(async () => {
    console.log(`mesh-gateways measurements:\n${JSON.stringify(report, null, 2)}`);
    await Promise.allSettled(envoys.map((e) => e.stop()));
    await cp?.stop().catch(() => undefined);
    ca?.stop();
    await Promise.allSettled(apps.map((a) => a.close()));
    catalog.remove();
    traffic.remove();
  });

  it('api only in dc2, mode local: web holds no dc2 instance address, only gw-dc1, and its requests cross both gateways', async () => {
    const eds = await apiEds();
    const cluster = await envoyCluster(web.envoy, 'api');
    const matches = (cluster?.transport_socket_matches ?? []).map((m: { name: string }) => m.name);
    report.dc2OnlyWebEds = showEndpoints(eds);
    report.dc2OnlyTransportSocketMatches = matches;
    const { tally, hops: h } = await sendCounted(10);
    report.dc2OnlyHops = h;
    const what =
      `web's applied EDS for api: ${JSON.stringify(showEndpoints(eds))}; ` +
      `its transport_socket_matches: ${JSON.stringify(matches)}; hops: ${JSON.stringify(h)}`;
    expect.soft(tally.statuses, what).toEqual({ 200: 10 });
    // The only endpoint: gw-dc1 (LAN address), marked for the dc2 SNI.
    expect
      .soft(showEndpoints(eds), what)
      .toEqual([`p0 gw-dc1@127.0.0.1:${ports.gw1} HEALTHY {"dc":"dc2","mtls":true}`]);
    expect
      .soft(
        eds.map((e) => e.address),
        what,
      )
      .not.toContain(`127.0.0.1:${ports.api}`);
    expect.soft(matches, what).toContain('mtls-dc2');
    expect.soft(h.gw1Cx, what).toBeGreaterThan(0);
    expect.soft(h.gw2Cx, what).toBeGreaterThan(0);
  });

  it('the SAN check is end to end: gw-dc2 sending the api SNI to the decoy sidecar fails web’s verification', async () => {
    // api spans datacenters from here on (a critical dc1 registration), so web's dc2 priority
    // goes through gateways. api-1 critical first: gw-dc2 drops its api chain, which closes any
    // connection web still pools for api.
    traffic.write(trafficDoc('local'));
    await timed(
      'web: dc2 reached through gw-dc1, nothing healthy',
      () => catalog.write(catalogDoc({ dc1Api: true, apiCritical: true })),
      async () =>
        showEndpoints(await apiEds()).some((e) =>
          e.startsWith(`p1 gw-dc1@127.0.0.1:${ports.gw1} UNHEALTHY`),
        ),
    );
    // gw-dc2 has no api instance to send to any more: its api chain and cluster go.
    const gone = await waitFor(
      async () => !(await gatewayChains(gw2)).some((c) => c.startsWith(API_DC2_SNI)),
      { what: 'gw-dc2 drops its api chain', timeoutMs: 5_000 },
    ).catch(() => false);
    const held = {
      chains: await gatewayChains(gw2),
      apiHosts: await clusterHosts(gw2, 'mesh-gateway|api'),
    };
    report.gw2WithApiCritical = held;
    expect(
      gone,
      `api-1 is critical in the catalog (web already holds gw-dc1 UNHEALTHY), but gw-dc2 still ` +
        `holds ${JSON.stringify(held)}`,
    ).toBe(true);
    await noOpenApiConnections('api-1 critical');
    // Now api-2: registered as api in dc2, but its sidecar port is the decoy's sidecar, which
    // presents the decoy's certificate.
    report.decoySwitchMs = await timed(
      'gw-dc2 routes api to the decoy sidecar, web sees dc2 healthy',
      () => catalog.write(catalogDoc({ dc1Api: true, apiCritical: true, decoyAsApi: true })),
      async () =>
        JSON.stringify(await clusterHosts(gw2, 'mesh-gateway|api')) ===
          JSON.stringify([`127.0.0.1:${ports.decoy}`]) &&
        showEndpoints(await apiEds()).includes(
          `p1 gw-dc1@127.0.0.1:${ports.gw1} HEALTHY {"dc":"dc2","mtls":true}`,
        ),
    );
    const { tally, failVerifySan, decoyCx, h } = await sendRefused();
    report.decoy = { statuses: tally.statuses, failVerifySan, decoyCx, hops: h };
    expect(tally.statuses).toEqual({ 503: REFUSED });
    // Each request's connection went web → gw-dc1 → gw-dc2 → decoy's sidecar ...
    expect(h.webUpstreamCx).toBe(REFUSED);
    expect(h.gw1Cx).toBe(REFUSED);
    expect(h.gw2Cx).toBe(REFUSED);
    expect(decoyCx).toBe(REFUSED);
    // ... and web refused the decoy's certificate because it does not name api.
    expect(failVerifySan).toBe(REFUSED);
    expect(h.decoyApp + h.apiApp).toBe(0);
    await timed(
      'api-1 back',
      () => catalog.write(catalogDoc({ dc1Api: true })),
      async () =>
        JSON.stringify(await clusterHosts(gw2, 'mesh-gateway|api')) ===
        JSON.stringify([`127.0.0.1:${ports.api}`]),
    );
  });

  it('mode local: web holds only gw-dc1 for dc2; every request crosses gw-dc1 and gw-dc2 and api’s sidecar verifies web’s certificate', async () => {
    traffic.write(trafficDoc('local'));
    report.localReadyMs = await timed(
      'web: dc2 through gw-dc1, healthy',
      () => catalog.write(catalogDoc({ dc1Api: true })),
      async () =>
        showEndpoints(await apiEds()).includes(
          `p1 gw-dc1@127.0.0.1:${ports.gw1} HEALTHY {"dc":"dc2","mtls":true}`,
        ),
    );
    const eds = await apiEds();
    report.localWebEds = showEndpoints(eds);
    expect(showEndpoints(eds)).toEqual([
      `p0 api-dc1@127.0.0.1:${ports.dc1ApiSidecar} UNHEALTHY {"mtls":true}`,
      `p1 gw-dc1@127.0.0.1:${ports.gw1} HEALTHY {"dc":"dc2","mtls":true}`,
    ]);
    expect(JSON.stringify(await web.envoy.configDump())).not.toContain(`"port_value":${ports.api}`);
    expect(await web.envoy.clusters()).not.toContain(`:${ports.api}::`);
    // web's dc2 transport socket: the gateways' SNI, and the SAN check names api.
    const cluster = await envoyCluster(web.envoy, 'api');
    const dc2 = (cluster?.transport_socket_matches ?? []).find(
      (m: { name: string }) => m.name === 'mtls-dc2',
    );
    expect(dc2?.match).toEqual({ dc: 'dc2', mtls: true });
    const tls = dc2?.transport_socket?.typed_config;
    expect(tls?.sni).toBe(API_DC2_SNI);
    expect(
      tls?.common_tls_context?.combined_validation_context?.default_validation_context
        ?.match_typed_subject_alt_names ??
        tls?.common_tls_context?.validation_context?.match_typed_subject_alt_names,
    ).toEqual([{ san_type: 'URI', matcher: { exact: API_SPIFFE } }]);

    const { tally, hops: h } = await sendCounted(20);
    report.local = { statuses: tally.statuses, hops: h };
    expect(tally.statuses).toEqual({ 200: 20 });
    expect(h.apiApp).toBe(20);
    expect(h.viaGw1).toBe(20);
    expect(h.direct).toBe(0);
    // One connection per hop for each of web's (new) connections: web → gw-dc1 → gw-dc2 →
    // api's sidecar, TLS only at the ends; the bytes show every request crossed both gateways.
    expect(h.gw1Cx).toBe(h.webUpstreamCx);
    expect(h.gw2Cx).toBe(h.webUpstreamCx);
    expect(h.apiTlsHandshakes).toBe(h.webUpstreamCx);
    expect(h.gw1RxBytes).toBeGreaterThan(0);
    expect(h.gw2RxBytes).toBeGreaterThan(0);
    // api's RBAC allows only web's SPIFFE ID: every request was allowed, so the client
    // certificate api's sidecar verified was web's, not a gateway's.
    expect(h.apiRbacAllowed).toBe(20);
    // The gateways cannot terminate: no chain has a transport socket, no TLS handshake
    // happened on them, and no certificate they hold names api.
    const gw1Chains = await gatewayChains(gw1);
    const gw2Chains = await gatewayChains(gw2);
    report.gatewayChains = { 'gw-dc1': gw1Chains, 'gw-dc2': gw2Chains };
    expect(gw1Chains).toContain(`*.default.dc2.${TRUST_DOMAIN} → mesh-gateway|dc|dc2`);
    expect(gw2Chains).toContain(`${API_DC2_SNI} → mesh-gateway|api`);
    report.gatewayCertificates = {};
    for (const gw of [gw1, gw2]) {
      expect((await gatewayChains(gw)).filter((c) => c.endsWith('+tls'))).toEqual([]);
      const c = await counters(gw);
      expect(c.nonzero(/\.ssl\.(handshake|connection_error|no_certificate|fail_verify)/)).toEqual(
        {},
      );
      const uris = await certificateUris(gw);
      (report.gatewayCertificates as Record<string, string[]>)[gw.name] = uris;
      expect(uris).not.toContain(API_SPIFFE);
    }
  });

  it('mode remote (live): web holds gw-dc2’s WAN address and gw-dc1 carries nothing', async () => {
    catalog.write(catalogDoc({ dc1Api: true }));
    report.remoteSwitchMs = await timed(
      'web: dc2 through gw-dc2 WAN',
      () => traffic.write(trafficDoc('remote')),
      async () =>
        JSON.stringify(showEndpoints(await apiEds())) ===
        JSON.stringify([
          `p0 api-dc1@127.0.0.1:${ports.dc1ApiSidecar} UNHEALTHY {"mtls":true}`,
          `p1 gw-dc2@${WAN}:${ports.gw2} HEALTHY {"dc":"dc2","mtls":true}`,
        ]),
    );
    await noOpenApiConnections('after the switch to remote');
    const { tally, hops: h } = await sendCounted(20);
    report.remote = { statuses: tally.statuses, hops: h };
    expect(tally.statuses).toEqual({ 200: 20 });
    expect(h.apiApp).toBe(20);
    expect(h.viaGw2Wan).toBe(20);
    expect(h.viaGw1).toBe(0);
    expect(h.gw1Cx).toBe(0);
    expect(h.gw1RxBytes).toBe(0);
    expect(h.webUpstreamCx).toBeGreaterThan(0);
    expect(h.gw2Cx).toBe(h.webUpstreamCx);
    expect(h.apiTlsHandshakes).toBe(h.webUpstreamCx);
    expect(h.apiRbacAllowed).toBe(20);
  });

  it('mode remote, gw-dc2’s WAN address leading to the decoy sidecar: web’s dc2 transport socket refuses it (SAN check)', async () => {
    traffic.write(trafficDoc('remote'));
    report.wanToDecoyMs = await timed(
      'web: gw-dc2 endpoint at the decoy sidecar',
      () => catalog.write(catalogDoc({ dc1Api: true, wanToDecoy: true })),
      async () =>
        showEndpoints(await apiEds()).includes(
          `p1 gw-dc2@127.0.0.1:${ports.decoy} HEALTHY {"dc":"dc2","mtls":true}`,
        ),
    );
    await noOpenApiConnections('gw-dc2 WAN at the decoy');
    const { tally, failVerifySan, decoyCx, h } = await sendRefused();
    report.wanToDecoy = { statuses: tally.statuses, failVerifySan, decoyCx, hops: h };
    expect(tally.statuses).toEqual({ 503: REFUSED });
    // Every connection web opened reached the decoy's sidecar, which presented the decoy's
    // certificate; web refused each one because it does not name api.
    expect(h.webUpstreamCx).toBe(REFUSED);
    expect(decoyCx).toBe(REFUSED);
    expect(failVerifySan).toBe(REFUSED);
    expect(h.gw1Cx + h.gw2Cx + h.decoyApp + h.apiApp).toBe(0);
  });

  it('mode none (live): web holds the dc2 instance address and no gateway carries anything', async () => {
    catalog.write(catalogDoc({ dc1Api: true }));
    report.noneSwitchMs = await timed(
      'web: dc2 direct',
      () => traffic.write(trafficDoc('none')),
      async () =>
        JSON.stringify(showEndpoints(await apiEds())) ===
        JSON.stringify([
          `p0 api-dc1@127.0.0.1:${ports.dc1ApiSidecar} UNHEALTHY {"mtls":true}`,
          `p1 api-1@127.0.0.1:${ports.api} HEALTHY {"mtls":true}`,
        ]),
    );
    await noOpenApiConnections('after the switch to none');
    const { tally, hops: h } = await sendCounted(20);
    report.none = { statuses: tally.statuses, hops: h };
    expect(tally.statuses).toEqual({ 200: 20 });
    expect(h.apiApp).toBe(20);
    expect(h.direct).toBe(20);
    expect(h.gw1Cx + h.gw2Cx + h.gw1RxBytes + h.gw2RxBytes).toBe(0);
    expect(h.apiTlsHandshakes).toBe(h.webUpstreamCx);
    expect(h.apiRbacAllowed).toBe(20);
  });

  it('mode local again; api-1 critical → the gateway endpoint is unhealthy (503 no healthy upstream); restored → served again', async () => {
    catalog.write(catalogDoc({ dc1Api: true }));
    report.backToLocalMs = await timed(
      'web: dc2 through gw-dc1 again',
      () => traffic.write(trafficDoc('local')),
      async () =>
        showEndpoints(await apiEds()).includes(
          `p1 gw-dc1@127.0.0.1:${ports.gw1} HEALTHY {"dc":"dc2","mtls":true}`,
        ),
    );
    expect((await send(4)).statuses).toEqual({ 200: 4 });

    report.criticalMs = await timed(
      'web: gw-dc1 endpoint unhealthy',
      () => catalog.write(catalogDoc({ dc1Api: true, apiCritical: true })),
      async () =>
        showEndpoints(await apiEds()).includes(
          `p1 gw-dc1@127.0.0.1:${ports.gw1} UNHEALTHY {"dc":"dc2","mtls":true}`,
        ),
    );
    // Unhealthy because EDS says so (the catalog), not because web's Envoy ejected it.
    expect(await hostHealthFlags(web.envoy, 'api', `127.0.0.1:${ports.gw1}`)).toBe(
      '/failed_eds_health',
    );
    const before = await snapshot();
    const down = await send(6);
    const one = await callThrough(web, 'api');
    const after = await snapshot();
    const h = hops(before, after);
    report.critical = { statuses: down.statuses, body: one.body, hops: h };
    expect(down.statuses).toEqual({ 503: 6 });
    expect(one.status).toBe(503);
    expect(one.body).toBe('no healthy upstream');
    // web decides on its own: nothing was sent to a gateway.
    expect(h.webUpstreamCx + h.gw1Cx + h.gw2Cx + h.apiApp).toBe(0);

    let firstOk = 0;
    report.restoredMs = await timed(
      'web → api served again',
      () => catalog.write(catalogDoc({ dc1Api: true })),
      async () => {
        const t = await callMany(web, 'api', 1);
        if (t.statuses[200] === 1) firstOk = performance.now();
        return t.statuses[200] === 1;
      },
    );
    expect(firstOk).toBeGreaterThan(0);
    const up = await send(10);
    report.restored = { statuses: up.statuses };
    expect(up.statuses).toEqual({ 200: 10 });
  });

  it('mode local, dc2’s gateway down: web’s dc2 endpoint is unhealthy (as with mode remote); no dc2 gateway in the catalog: dc2 reached directly, as reported', async () => {
    const viaGw1 = (health: string) =>
      `p1 gw-dc1@127.0.0.1:${ports.gw1} ${health} {"dc":"dc2","mtls":true}`;
    catalog.write(catalogDoc({ dc1Api: true }));
    await waitFor(async () => showEndpoints(await apiEds()).includes(viaGw1('HEALTHY')), {
      what: 'web: dc2 through gw-dc1',
    });
    // gw-dc2 critical: gw-dc1 has nowhere to send dc2's SNI, so web must not count on it.
    catalog.write(catalogDoc({ dc1Api: true, gw2Health: 'critical' }));
    let seen: string[] = [];
    await waitFor(
      async () => (seen = showEndpoints(await apiEds())).includes(viaGw1('UNHEALTHY')),
      {
        what: 'web: gw-dc1 unhealthy for dc2 while gw-dc2 is critical',
        details: () => JSON.stringify(seen),
      },
    );
    const before = await snapshot();
    const down = await callMany(web, 'api', REFUSED, { concurrency: 1 });
    const h = hops(before, await snapshot());
    expect(down.statuses).toEqual({ 503: REFUSED });
    expect(h.webUpstreamCx + h.gw1Cx).toBe(0);

    // dc2 without a gateway: reported as "reached directly", and so it is.
    catalog.write(catalogDoc({ dc1Api: true, gw2InDc3: true }));
    const problem = `MeshGateway: datacenter "dc2" has no mesh gateway in the catalog; its instances are reached directly`;
    await waitFor(
      async () =>
        JSON.stringify((seen = showEndpoints(await apiEds()))) ===
        JSON.stringify([
          `p0 api-dc1@127.0.0.1:${ports.dc1ApiSidecar} UNHEALTHY {"mtls":true}`,
          `p1 api-1@127.0.0.1:${ports.api} HEALTHY {"mtls":true}`,
        ]),
      { what: 'web: dc2 reached directly', details: () => JSON.stringify(seen) },
    );
    expect(cp!.store.mesh?.problems.map((p) => p.message)).toContain(problem);
    await noOpenApiConnections('after dc2 lost its gateway');
    const { tally, hops: direct } = await sendCounted(10);
    expect(tally.statuses).toEqual({ 200: 10 });
    expect(direct.direct).toBe(10);
    expect(direct.gw1Cx + direct.gw2Cx).toBe(0);

    catalog.write(catalogDoc({ dc1Api: true }));
    await waitFor(async () => showEndpoints(await apiEds()).includes(viaGw1('HEALTHY')), {
      what: 'web: dc2 through gw-dc1 again',
    });
    expect((await send(4)).statuses).toEqual({ 200: 4 });
  });

  it('a route to a subset reaches that subset’s instances through the gateways, not any instance of the service', async () => {
    const v2App = await startHttpApp('api-v2');
    apps.push(v2App);
    const [v2SidecarPort] = await freePorts(1);
    const v2 = { appPort: v2App.port, sidecarPort: v2SidecarPort! };
    catalog.write(catalogDoc({ v2 }));
    // The subset's own SNI, which the sidecar sends and gw-dc2 routes on.
    traffic.write([
      ...trafficDoc('local'),
      {
        Kind: 'service-resolver',
        Name: 'api',
        Subsets: { v1: { Filter: '"v1" in Service.Tags' }, v2: { Filter: '"v2" in Service.Tags' } },
      },
      {
        Kind: 'service-router',
        Name: 'api',
        Routes: [{ Match: { HTTP: { PathPrefix: '/v2' } }, Destination: { ServiceSubset: 'v2' } }],
      },
    ]);
    const v2Sidecar = await startSidecar({
      nodeId: 'api-v2',
      service: 'api',
      xdsPort: cp!.xdsPort,
      mode: 'sotw',
      token: await ca!.tokens.issue('api'),
    });
    envoys.push(v2Sidecar.envoy);
    await v2Sidecar.envoy.waitFor(
      async () => (await v2Sidecar.envoy.admin('/listeners')).includes(`:${v2.sidecarPort}`),
      'api-v2 inbound listener',
    );
    await gw2.waitFor(
      async () => JSON.stringify(await gatewayChains(gw2)).includes(`v2.${API_DC2_SNI}`),
      'gw-dc2 routes the v2 subset’s SNI',
    );
    await web.envoy.waitFor(
      async () =>
        (await callThrough(web, 'api', { path: '/v2/x' }).catch(() => undefined))?.app === 'api-v2',
      'web → api /v2 answered by api-v2',
    );
    const toV2 = await callMany(web, 'api', 20, { path: '/v2/x' });
    expect(toV2.apps).toEqual({ 'api-v2': 20 });

    await v2Sidecar.envoy.stop();
    envoys.splice(envoys.indexOf(v2Sidecar.envoy), 1);
    catalog.write(catalogDoc());
    traffic.write(trafficDoc('local'));
  });

  it('a caller with its own upstream settings (service-defaults UpstreamConfig) still reaches dc2 through the gateways, also when they appear later', async () => {
    // First without gateways (dc2 reached directly), then they are registered.
    catalog.write(catalogDoc({ noGateways: true }));
    traffic.write([
      ...trafficDoc('local'),
      {
        Kind: 'service-defaults',
        Name: 'web',
        UpstreamConfig: { Defaults: { ConnectTimeoutMs: 3000 } },
      },
    ]);
    // web's own api cluster, with its connect timeout, gets the gateway's SNI for dc2.
    await web.envoy.waitFor(
      async () => (await envoyCluster(web.envoy, 'api'))?.connect_timeout === '3s',
      'web’s own api cluster (connect timeout 3 s)',
    );
    await waitFor(
      async () => showEndpoints(await apiEds()).some((e) => e.startsWith('p0 api-1@')),
      { what: 'web: dc2 reached directly while there is no gateway' },
    );
    catalog.write(catalogDoc());
    await waitFor(
      async () => showEndpoints(await apiEds()).some((e) => e.startsWith('p0 gw-dc1@')),
      { what: 'web: dc2 through gw-dc1 once the gateways are registered' },
    );
    await noOpenApiConnections('after web’s api cluster changed');
    const { tally, hops: h } = await sendCounted(10);
    expect(tally.statuses).toEqual({ 200: 10 });
    expect(h.gw1Cx + h.gw2Cx).toBeGreaterThan(0);
    const cluster = await envoyCluster(web.envoy, 'api');
    expect(JSON.stringify(cluster?.transport_socket_matches)).toContain(API_DC2_SNI);
    traffic.write(trafficDoc('local'));
    await web.envoy.waitFor(
      async () => (await envoyCluster(web.envoy, 'api'))?.connect_timeout === '5s',
      'web’s api cluster back to the shared one',
    );
  });

  it('every proxy accepted every update', async () => {
    await sleep(100);
    const rejected = await Promise.all(envoys.map((e) => rejectedUpdates(e)));
    expect(rejected).toEqual(envoys.map(() => 0));
    expect(cp!.counters.nacks).toBe(0);
  });
});
