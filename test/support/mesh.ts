// A real mesh for end-to-end tests: the control plane (same composition as `lucid-mesh serve`)
// on a watched catalog file, real Envoy sidecars bootstrapped by our own renderer, tiny apps.
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { ControlPlaneOptions, RunningControlPlane, SecurityOptions } from '../../src/app.js';
import { TrafficFile } from '../../src/traffic/traffic-file.js';
import { renderBootstrap, type XdsMode } from '../../src/bootstrap/render.js';
import { FileSource } from '../../src/sources/file-source.js';
import { silentLogger, type Logger } from '../../src/telemetry/logger.js';
import { startEnvoy, type EnvoyHandle } from './envoy.js';
import { httpGet, type HttpResult } from './http-app.js';
import { freePort } from './ports.js';
import { QUICK_DEBOUNCE, startSourceControlPlane } from './source-control-plane.js';

/** A watched input file (catalog, traffic entries) in a directory of its own. */
export class CatalogFile {
  readonly dir = mkdtempSync(join(tmpdir(), 'lucid-mesh-e2e-'));
  readonly path: string;
  private seq = 0;

  constructor(name = 'catalog.yaml') {
    this.path = join(this.dir, name);
  }

  /** Replaces the file atomically, as an editor or a ConfigMap update would. */
  write(doc: unknown): void {
    const tmp = join(this.dir, `.catalog.${this.seq++}.tmp`);
    writeFileSync(
      tmp,
      typeof doc === 'string' ? doc : stringify(doc, { aliasDuplicateObjects: false }),
    );
    renameSync(tmp, this.path);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function startTestControlPlane(
  catalog: CatalogFile,
  ports: { xds?: number; admin?: number } = {},
  extra: {
    security?: SecurityOptions;
    logger?: Logger;
    xdsTls?: ControlPlaneOptions['xdsTls'];
    xdsTransport?: ControlPlaneOptions['xdsTransport'];
    /** A traffic file (config entries), watched as `serve --traffic` does. */
    traffic?: CatalogFile;
    mesh?: ControlPlaneOptions['mesh'];
    /** Control-plane traces to this OTLP collector (serve --tracing-otlp). */
    controlPlaneTracing?: ControlPlaneOptions['controlPlaneTracing'];
  } = {},
): Promise<RunningControlPlane> {
  const logger = extra.logger ?? silentLogger;
  return startSourceControlPlane(new FileSource(catalog.path, logger), {
    traffic: extra.traffic ? new TrafficFile(extra.traffic.path, logger) : undefined,
    mesh: extra.mesh,
    ...(extra.controlPlaneTracing ? { controlPlaneTracing: extra.controlPlaneTracing } : {}),
    logger,
    security: extra.security,
    xdsTls: extra.xdsTls,
    xdsTransport: extra.xdsTransport,
    xdsPort: ports.xds ?? 0,
    adminPort: ports.admin ?? 0,
    ...QUICK_DEBOUNCE,
  });
}

export interface Sidecar {
  readonly envoy: EnvoyHandle;
  readonly outboundPort: number;
  /** GET through this sidecar's outbound listener to `service`. */
  call(service: string, path?: string): Promise<HttpResult>;
}

export async function startSidecar(opts: {
  nodeId: string;
  service: string;
  xdsPort: number;
  mode: XdsMode;
  /** Proxy token, for control planes that authenticate streams. */
  token?: string;
  /** CA of the control plane's TLS certificate: ADS over TLS. */
  xdsCaPem?: string;
  /** bootstrap --prometheus-bind: a listener serving only /stats/prometheus there. */
  prometheusBind?: string;
  /**
   * UDP port of its DNS listener. Default: a free one of its own, not the product's 15053, so
   * that Envoys of test files running in parallel never share one DNS socket.
   */
  dnsPort?: number;
}): Promise<Sidecar> {
  const adminPort = await freePort();
  const outboundPort = await freePort();
  const dnsPort = opts.dnsPort ?? (await freePort());
  const envoy = await startEnvoy({
    name: opts.nodeId,
    adminPort,
    bootstrapYaml: renderBootstrap({
      nodeId: opts.nodeId,
      service: opts.service,
      xds: `127.0.0.1:${opts.xdsPort}`,
      mode: opts.mode,
      adminPort,
      outboundPort,
      token: opts.token,
      xdsCaPem: opts.xdsCaPem,
      prometheusBind: opts.prometheusBind,
      dnsPort,
    }),
  });
  return {
    envoy,
    outboundPort,
    call: (service, path = '/') =>
      httpGet(`http://127.0.0.1:${outboundPort}${path}`, { host: service }, 3000),
  };
}

/** Waits until a GET through `from` to `service` answers 200: config delivered, path up. */
export function waitReaches(
  from: Sidecar,
  service: string,
  what: string,
  timeoutMs?: number,
): Promise<unknown> {
  return from.envoy.waitFor(
    async () => (await from.call(service).catch(() => undefined))?.status === 200,
    what,
    timeoutMs,
  );
}

/** Sum of every `*.update_rejected` counter: config Envoy refused. */
export async function rejectedUpdates(envoy: EnvoyHandle): Promise<number> {
  let total = 0;
  for (const [name, value] of await envoy.stats())
    if (name.endsWith('.update_rejected')) total += Number(value);
  return total;
}

/** host:port entries of a cluster in Envoy's /clusters output. */
export async function clusterHosts(envoy: EnvoyHandle, cluster: string): Promise<string[]> {
  const hosts = new Set<string>();
  for (const line of (await envoy.clusters()).split('\n')) {
    const parts = line.split('::');
    if (parts[0] === cluster && parts.length >= 3 && /:\d+$/.test(parts[1]!)) hosts.add(parts[1]!);
  }
  return [...hosts].sort();
}

export async function hasCluster(envoy: EnvoyHandle, cluster: string): Promise<boolean> {
  return (await envoy.clusters()).split('\n').some((l) => l.startsWith(`${cluster}::`));
}

/**
 * The two-sidecar pair the outage tests run their loop through: web (SotW) and api (delta)
 * sidecars on `xdsPort`, returned once web reaches api and api's only endpoint in web's Envoy
 * is api's sidecar (so requests cross both Envoys).
 */
export async function startWebApiPair(opts: {
  xdsPort: number;
  webNodeId: string;
  apiNodeId: string;
  apiSidecarPort: number;
  timeoutMs: number;
  /** Proxy tokens, for a control plane that authenticates streams. */
  tokens?: { web: string; api: string };
}): Promise<[web: Sidecar, api: Sidecar]> {
  const { xdsPort, tokens } = opts;
  const pair = await Promise.all([
    startSidecar({
      nodeId: opts.webNodeId,
      service: 'web',
      xdsPort,
      mode: 'sotw',
      token: tokens?.web,
    }),
    startSidecar({
      nodeId: opts.apiNodeId,
      service: 'api',
      xdsPort,
      mode: 'delta',
      token: tokens?.api,
    }),
  ]);
  const [web] = pair;
  try {
    await waitReaches(web, 'api', 'web → api', opts.timeoutMs);
    const hosts = await clusterHosts(web.envoy, 'api');
    if (hosts.length !== 1 || hosts[0] !== `127.0.0.1:${opts.apiSidecarPort}`) {
      throw new Error(`web's api endpoints are ${hosts.join(', ')}, not api's sidecar`);
    }
  } catch (err) {
    // The caller never gets the pair to stop: stop it here.
    await Promise.all(pair.map((s) => s.envoy.stop()));
    throw err;
  }
  return pair;
}
