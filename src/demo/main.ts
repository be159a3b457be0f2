#!/usr/bin/env node
// `npm run demo`: the control plane on a catalog (default examples/catalog.yaml), a tiny HTTP
// app for every instance, a real Envoy sidecar for every meshed one and a real Envoy for every
// mesh gateway of the catalog. Prints the curl that sends a request across the mesh. Edit the
// catalog while it runs and watch Envoy follow.
//
// `npm run demo -- --multi-dc`: two datacenters on one machine (examples/multi-dc): web in dc1
// calls api, which runs in dc1 and dc2, with a mesh gateway per datacenter; the control plane
// runs in dc1 and fails over to dc2. With --once it checks that itself on a copy of the files.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command, Option } from 'commander';
import { isSeq, parseDocument, type Document } from 'yaml';
import { startControlPlane, type RunningControlPlane } from '../app.js';
import { renderBootstrap, XDS_MODES, type XdsMode } from '../bootstrap/render.js';
import { isJsonFile, parseCatalogText } from '../catalog/load-document.js';
import type { Catalog, Health, Instance } from '../catalog/model.js';
import { choiceOption, portOption } from '../cli/options.js';
import { installOutputClosedRule } from '../cli/stdout-closed.js';
import { openCa, type OpenedCa } from '../ca/open.js';
import { MESH_GATEWAY_SERVICE } from '../mesh/index.js';
import { packageRoot } from '../package-root.js';
import { FileSource } from '../sources/file-source.js';
import { createLogger, LOG_LEVELS, type LogLevel } from '../telemetry/logger.js';
import { TrafficFile } from '../traffic/traffic-file.js';
import {
  envoyBinary,
  freeLocalPorts,
  killEnvoysNow,
  removeEnvoyFiles,
  startApp,
  startEnvoyProcess,
  stopEnvoys,
  type EnvoyProcess,
} from './processes.js';

interface Flags {
  catalog?: string;
  traffic?: string;
  multiDc: boolean;
  mode: XdsMode;
  xdsPort: number;
  adminPort: number;
  envoyPortBase: number;
  catalogPortBase?: number;
  once: boolean;
  insecure: boolean;
  logLevel: LogLevel;
}

/** The datacenter the control plane runs in with --multi-dc (`serve --datacenter dc1`). */
const LOCAL_DC = 'dc1';
const WAIT_MS = 30_000;

const flags = new Command('lucid-mesh-demo')
  .description(
    'Run the control plane, one app per catalog instance, one real Envoy per meshed instance ' +
      'and one per mesh gateway.',
  )
  .addOption(
    new Option(
      '--catalog <file>',
      'catalog to serve (watched) (default: "examples/catalog.yaml"; with --multi-dc "examples/multi-dc/catalog.yaml")',
    ),
  )
  .addOption(
    new Option(
      '--traffic <file>',
      'traffic configuration to serve (Consul config entries, watched) (default: none; with --multi-dc "examples/multi-dc/traffic.yaml")',
    ),
  )
  .addOption(
    new Option(
      '--multi-dc',
      'two datacenters on one machine: web in dc1 calls api in dc1 and dc2 through mesh ' +
        'gateways; the control plane runs in dc1 and fails over to dc2 (docs/multi-dc.md)',
    ).default(false),
  )
  .addOption(
    new Option('--mode <mode>', 'xDS variant the sidecars use')
      .default('sotw')
      .argParser(choiceOption('--mode', XDS_MODES)),
  )
  .addOption(
    new Option('--xds-port <port>', 'control plane gRPC port')
      .default(8081)
      .argParser(portOption('--xds-port')),
  )
  .addOption(
    new Option('--admin-port <port>', 'control plane HTTP port')
      .default(8080)
      .argParser(portOption('--admin-port')),
  )
  .addOption(
    new Option(
      '--envoy-port-base <port>',
      'Envoy i (sidecars, then gateways) gets admin port BASE+100*i and outbound port BASE+100*i+1',
    )
      .default(15000)
      .argParser(portOption('--envoy-port-base')),
  )
  .addOption(
    new Option(
      '--catalog-port-base <port>',
      "with --once: the copied catalog's ports (apps, sidecars, gateways; each distinct one, in " +
        'file order) become BASE, BASE+1, ... (default with --multi-dc: free ports the system picks)',
    ).argParser(portOption('--catalog-port-base')),
  )
  .addOption(
    new Option(
      '--once',
      'send one request across the mesh, print it, and exit (0 on success); with --multi-dc ' +
        'also fail over to dc2 and back on a temporary copy of the catalog',
    ).default(false),
  )
  .addOption(
    new Option('--log-level <level>', 'control plane log level')
      .default('warn')
      .argParser(choiceOption('--log-level', LOG_LEVELS)),
  )
  .parse()
  .opts<Flags>();

// ---- everything started, and stopping it on every way out ----------------------------------

const started: {
  servers: Server[];
  ca?: OpenedCa;
  traffic?: TrafficFile;
  cp?: RunningControlPlane;
  caDir?: string;
  copyDir?: string;
} = { servers: [] };
let stopping: Promise<never> | undefined;

/** Stops every Envoy, app and the control plane, then exits with `code`. */
function stop(code: number, message?: string): Promise<never> {
  stopping ??= (async (): Promise<never> => {
    if (message !== undefined) console.error(message);
    await stopEnvoys();
    for (const s of started.servers) {
      s.closeAllConnections();
      s.close();
    }
    try {
      if (started.cp) await started.cp.stop();
      else await started.traffic?.stop();
    } catch (err) {
      console.error(`stopping the control plane: ${(err as Error).message}`);
    }
    started.ca?.stop();
    // The demo's own files go with it, but what a failure message points to stays for a look.
    const remove = (dir: string | undefined) =>
      dir !== undefined && rmSync(dir, { recursive: true, force: true });
    remove(started.caDir);
    if (code !== 1) {
      remove(started.copyDir);
      removeEnvoyFiles();
    }
    process.exit(code);
  })();
  return stopping;
}
// Whatever else happens, no Envoy outlives the demo.
process.on('exit', killEnvoysNow);
process.once('SIGINT', () => void stop(0));
process.once('SIGTERM', () => void stop(0));
process.once('SIGHUP', () => void stop(0));
// Its reader gone (`npm run demo -- --once | grep -m1 world`): stopped as by Ctrl-C, not
// killed by EPIPE with the Envoys, the control plane and the CA's directory left behind. Noticed
// at the demo's next line: a reader that goes after the last one leaves it running (Ctrl-C).
installOutputClosedRule('lucid-mesh demo', (code) => void stop(code));
process.on('uncaughtException', (err) => void stop(1, `demo failed: ${err.stack ?? err.message}`));
process.on('unhandledRejection', (err) => void stop(1, `demo failed: ${String(err)}`));

// ---- the files ------------------------------------------------------------------------------

/** An example file as the user would type it: relative to the current directory. */
function example(path: string): string {
  return relative(process.cwd(), join(packageRoot(), path)) || path;
}

const catalogArg =
  flags.catalog ??
  example(flags.multiDc ? 'examples/multi-dc/catalog.yaml' : 'examples/catalog.yaml');
const trafficArg =
  flags.traffic ?? (flags.multiDc ? example('examples/multi-dc/traffic.yaml') : undefined);

if (flags.catalogPortBase !== undefined && !flags.once) {
  await stop(2, '--catalog-port-base: only with --once (the demo never rewrites your catalog)');
}

function readText(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(`${flag}: cannot read ${JSON.stringify(path)}: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** Reads a catalog or traffic document for editing (YAML keeps its comments; JSON is YAML). */
function readDocument(path: string): Document {
  return parseDocument(readFileSync(path, 'utf8'));
}

function writeDocument(path: string, doc: Document): void {
  writeFileSync(
    path,
    isJsonFile(path) ? `${JSON.stringify(doc.toJS(), null, 2)}\n` : doc.toString(),
  );
}

/** Paths of every port in a catalog document: apps, sidecars, tcp outbound ports, gateways. */
function portPaths(doc: Document): (string | number)[][] {
  const paths: (string | number)[][] = [];
  const items = (path: (string | number)[]): number[] => {
    const node = doc.getIn(path, true);
    return isSeq(node) ? node.items.map((_, i) => i) : [];
  };
  for (const s of items(['services'])) {
    if (doc.hasIn(['services', s, 'outboundPort'])) paths.push(['services', s, 'outboundPort']);
    for (const i of items(['services', s, 'instances'])) {
      for (const key of ['port', 'sidecarPort']) {
        const path = ['services', s, 'instances', i, key];
        if (doc.hasIn(path)) paths.push(path);
      }
    }
  }
  for (const g of items(['gateways'])) {
    for (const key of ['port', 'wanPort']) {
      if (doc.hasIn(['gateways', g, key])) paths.push(['gateways', g, key]);
    }
  }
  return paths;
}

/** Sets an instance's health in a catalog file, as a user editing it would. */
function setHealth(path: string, instanceId: string, health: Health): void {
  const doc = readDocument(path);
  const services = doc.getIn(['services'], true);
  if (!isSeq(services)) throw new Error(`${path}: no services`);
  for (let s = 0; s < services.items.length; s++) {
    const instances = doc.getIn(['services', s, 'instances'], true);
    if (!isSeq(instances)) continue;
    for (let i = 0; i < instances.items.length; i++) {
      if (doc.getIn(['services', s, 'instances', i, 'id']) !== instanceId) continue;
      doc.setIn(['services', s, 'instances', i, 'health'], health);
      writeDocument(path, doc);
      return;
    }
  }
  throw new Error(`${path}: no instance ${instanceId}`);
}

/**
 * With --once the demo works on copies in a temporary directory, never on the user's files;
 * the catalog's ports move to free ones (from --catalog-port-base on, or with --multi-dc picked
 * by the system), so a check can run next to a demo that is up.
 */
async function onceCopies(): Promise<{ catalog: string; traffic?: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'lucid-mesh-demo-files-'));
  started.copyDir = dir;
  const catalog = join(dir, basename(catalogArg));
  writeFileSync(catalog, readText(catalogArg, '--catalog'));
  let traffic: string | undefined;
  if (trafficArg !== undefined) {
    traffic = join(dir, `traffic-${basename(trafficArg)}`);
    writeFileSync(traffic, readText(trafficArg, '--traffic'));
  }
  if (flags.catalogPortBase !== undefined || flags.multiDc) {
    const doc = readDocument(catalog);
    const paths = portPaths(doc);
    // One new port per old one: a gateway's wanPort equal to its port stays equal.
    const old = [...new Set(paths.map((path) => doc.getIn(path)))];
    const base = flags.catalogPortBase;
    const ports =
      base !== undefined ? old.map((_, i) => base + i) : await freeLocalPorts(old.length);
    if (ports.some((p) => p > 65535)) {
      await stop(2, `--catalog-port-base: ${base} + ${old.length} ports goes past 65535`);
    }
    for (const path of paths) doc.setIn(path, ports[old.indexOf(doc.getIn(path))]);
    writeDocument(catalog, doc);
  }
  return { catalog, traffic };
}

let files: { catalog: string; traffic?: string };
let catalog: Catalog;
try {
  files = flags.once ? await onceCopies() : { catalog: catalogArg, traffic: trafficArg };
  if (files.traffic !== undefined) readText(files.traffic, '--traffic');
  catalog = parseCatalogText(readText(files.catalog, '--catalog'), catalogArg);
} catch (err) {
  await stop(2, (err as Error).message);
  throw err;
}

// ---- what runs ------------------------------------------------------------------------------

const meshed = catalog.services.flatMap((s) =>
  s.instances
    .filter((i) => i.sidecarPort !== undefined)
    .map((instance) => ({ service: s.name, instance })),
);
if (meshed.length < 2) {
  await stop(2, `${catalogArg}: the demo needs at least two instances with a sidecarPort`);
}
const gateways = catalog.gateways ?? [];
const dcOf = (x: { datacenter?: string }): string => x.datacenter ?? LOCAL_DC;

/** With --multi-dc: who calls whom, where, and through which gateways. */
interface Roles {
  readonly target: string;
  readonly caller: string;
  readonly local: Instance;
  readonly remote: Instance;
  readonly remoteDc: string;
  readonly localGateway: string;
  readonly remoteGateway: string;
  readonly otherDatacenters: string[];
}

function multiDcRoles(): Roles | undefined {
  const target = catalog.services.find((s) => {
    const dcs = s.instances.filter((i) => i.sidecarPort !== undefined).map(dcOf);
    return dcs.includes(LOCAL_DC) && dcs.some((d) => d !== LOCAL_DC);
  });
  const meshedOf = (dc: (d: string) => boolean) =>
    target?.instances.find((i) => i.sidecarPort !== undefined && dc(dcOf(i)));
  const local = meshedOf((d) => d === LOCAL_DC);
  const remote = meshedOf((d) => d !== LOCAL_DC);
  const caller = meshed.find((m) => m.service !== target?.name && dcOf(m.instance) === LOCAL_DC);
  if (!target || !local || !remote || !caller) return undefined;
  const remoteDc = dcOf(remote);
  const localGateway = gateways.find((g) => dcOf(g) === LOCAL_DC);
  const remoteGateway = gateways.find((g) => dcOf(g) === remoteDc);
  if (!localGateway || !remoteGateway) return undefined;
  const others = new Set(
    [...catalog.services.flatMap((s) => s.instances), ...gateways]
      .map(dcOf)
      .filter((d) => d !== LOCAL_DC && d !== remoteDc),
  );
  return {
    target: target.name,
    caller: caller.instance.id,
    local,
    remote,
    remoteDc,
    localGateway: localGateway.id,
    remoteGateway: remoteGateway.id,
    otherDatacenters: [remoteDc, ...[...others].sort()],
  };
}

const roles = flags.multiDc ? multiDcRoles() : undefined;
if (flags.multiDc && !roles) {
  await stop(
    2,
    `${catalogArg}: --multi-dc needs a service with meshed instances in ${LOCAL_DC} and in ` +
      `another datacenter, a meshed instance of another service in ${LOCAL_DC} to call it, and ` +
      `a mesh gateway in each of the two datacenters (see examples/multi-dc/catalog.yaml)`,
  );
}
if (flags.once && roles?.local.health === 'critical') {
  await stop(
    2,
    `${catalogArg}: ${roles.local.id} is critical; the check starts from a passing ${LOCAL_DC} instance`,
  );
}

// The caller's sidecar first: it gets the first ports (admin BASE, outbound BASE+1).
const callerFirst = roles
  ? [...meshed].sort(
      (a, b) => Number(b.instance.id === roles.caller) - Number(a.instance.id === roles.caller),
    )
  : meshed;

const envoy = envoyBinary();
const logger = createLogger(flags.logLevel);

interface Sidecar {
  readonly service: string;
  readonly id: string;
  readonly datacenter?: string;
  readonly adminPort: number;
  readonly outboundPort: number;
  /** UDP port of its DNS listener (docs/dns.md). */
  readonly dnsPort: number;
  readonly process: EnvoyProcess;
}
interface GatewayEnvoy {
  readonly id: string;
  readonly datacenter: string;
  readonly address: string;
  readonly port: number;
  readonly adminPort: number;
  readonly process: EnvoyProcess;
}

let cp: RunningControlPlane;
let ca: OpenedCa | undefined;
let sidecars: Sidecar[];
let gatewayEnvoys: GatewayEnvoy[];
try {
  for (const s of catalog.services) {
    // A tcp service stands for a server of the user's (a RabbitMQ, a database): no HTTP stand-in.
    if (s.protocol === 'tcp') continue;
    for (const i of s.instances) started.servers.push(await startApp(i.id, s.name, i.port));
  }
  // The demo's CA lives in a temporary directory: it shows the mesh, not the operator's CA.
  if (!flags.insecure) {
    started.caDir = mkdtempSync(join(tmpdir(), 'lucid-mesh-demo-ca-'));
    ca = await openCa({ dataDir: started.caDir, logger });
  }
  started.ca = ca;
  if (gateways.length > 0 && !ca) throw new Error('mesh gateways need mTLS (they route by SNI)');
  started.traffic =
    files.traffic !== undefined ? new TrafficFile(files.traffic, logger) : undefined;
  cp = await startControlPlane({
    source: new FileSource(files.catalog, logger),
    logger,
    host: '127.0.0.1',
    xdsPort: flags.xdsPort,
    adminPort: flags.adminPort,
    security: ca ? { ca, mtls: true, auth: 'token' } : undefined,
    traffic: started.traffic,
    mesh: roles ? { datacenter: LOCAL_DC, datacenters: roles.otherDatacenters } : undefined,
  });
  started.cp = cp;
  if (started.traffic && !started.traffic.current()) {
    const why = started.traffic.lastError()?.message ?? 'not loaded';
    await stop(2, `--traffic ${trafficArg}: ${why}`);
  }

  // A proxy token names the service the node may claim: a gateway's is mesh-gateway.
  const tokens = new Map<string, string>();
  const tokenFor = async (service: string): Promise<string | undefined> => {
    if (!ca) return undefined;
    if (!tokens.has(service)) tokens.set(service, await ca.tokens.issue(service));
    return tokens.get(service);
  };
  const xds = `127.0.0.1:${cp.xdsPort}`;
  sidecars = [];
  for (const [i, { service, instance }] of callerFirst.entries()) {
    const adminPort = flags.envoyPortBase + 100 * i;
    const outboundPort = adminPort + 1;
    // Each its own: the default 15053 would be shared by every sidecar on this host.
    const dnsPort = adminPort + 2;
    // No --datacenter: the control plane places a sidecar by its catalog registration.
    const yaml = renderBootstrap({
      nodeId: instance.id,
      service,
      xds,
      mode: flags.mode,
      adminPort,
      outboundPort,
      dnsPort,
      token: await tokenFor(service),
    });
    sidecars.push({
      service,
      id: instance.id,
      datacenter: instance.datacenter,
      adminPort,
      outboundPort,
      dnsPort,
      process: startEnvoyProcess(envoy, instance.id, yaml),
    });
  }
  gatewayEnvoys = [];
  for (const [j, g] of gateways.entries()) {
    const adminPort = flags.envoyPortBase + 100 * (meshed.length + j);
    const datacenter = dcOf(g);
    const yaml = renderBootstrap({
      nodeId: g.id,
      service: MESH_GATEWAY_SERVICE,
      datacenter,
      xds,
      mode: flags.mode,
      adminPort,
      outboundPort: adminPort + 1,
      token: await tokenFor(MESH_GATEWAY_SERVICE),
    });
    gatewayEnvoys.push({
      id: g.id,
      datacenter,
      address: g.address,
      port: g.port,
      adminPort,
      process: startEnvoyProcess(envoy, g.id, yaml),
    });
  }
} catch (err) {
  await stop(1, `the demo could not start: ${(err as Error).message}`);
  throw err;
}

const envoys = [...sidecars, ...gatewayEnvoys];
const envoyLogs = (): string => envoys.map((e) => e.process.logFile).join(' ');
for (const e of envoys) {
  e.process.child.once('exit', (code, signal) => {
    if (stopping) return;
    void stop(1, `Envoy ${e.id} exited (${code ?? signal}); its log: ${e.process.logFile}`);
  });
  e.process.child.once('error', (err) => {
    if (stopping) return;
    void stop(1, `Envoy ${e.id} could not start: ${err.message}`);
  });
}

// ---- requests -------------------------------------------------------------------------------

interface Answer {
  readonly status: number;
  readonly body: string;
  /** The instance that answered (the apps say who they are). */
  readonly instance?: string;
}

function get(port: number, host: string, path = '/'): Promise<Answer> {
  return new Promise((resolve) => {
    const req = request(
      { host: '127.0.0.1', port, path, headers: { host }, agent: false, timeout: 2000 },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => {
          let instance: string | undefined;
          try {
            instance = (JSON.parse(body) as { instance?: string }).instance;
          } catch {
            instance = undefined;
          }
          resolve({ status: res.statusCode ?? 0, body: body.trim(), instance });
        });
        res.on('error', (err) => resolve({ status: 0, body: err.message }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ status: 0, body: err.message }));
    req.end();
  });
}

/**
 * Sends requests until one is answered (by `instance`, when given); how long that took and how
 * many requests meanwhile were not answered by anyone. undefined after WAIT_MS.
 */
async function until(
  port: number,
  host: string,
  instance?: string,
): Promise<{ answer: Answer; ms: number; failed: number; last: Answer }> {
  const startedAt = performance.now();
  let failed = 0;
  let last: Answer = { status: 0, body: 'no request sent' };
  while (performance.now() - startedAt < WAIT_MS) {
    last = await get(port, host);
    if (last.status === 200 && (instance === undefined || last.instance === instance)) {
      return { answer: last, ms: Math.round(performance.now() - startedAt), failed, last };
    }
    if (last.status !== 200) failed++;
    await sleep(50);
  }
  return { answer: { status: 0, body: '' }, ms: -1, failed, last };
}

// ---- up -------------------------------------------------------------------------------------

// The request shown goes between two http services (a tcp one, e.g. RabbitMQ, has no Host).
const httpSidecars = sidecars.filter(
  (s) => catalog.services.find((x) => x.name === s.service)?.protocol !== 'tcp',
);
const from = roles
  ? sidecars.find((s) => s.id === roles.caller)!
  : (httpSidecars[0] ?? sidecars[0]!);
const to = roles
  ? roles.target
  : (httpSidecars.find((s) => s.service !== from.service) ?? sidecars[1]!).service;
const first = await until(from.outboundPort, to, roles?.local.id);
if (first.ms < 0) {
  const wanted = roles ? ` by ${roles.local.id}` : '';
  await stop(
    1,
    `the mesh did not answer ${from.service}'s request to ${to}${wanted} within ${WAIT_MS / 1000} s ` +
      `(last answer: ${first.last.status} ${first.last.body})\nEnvoy logs: ${envoyLogs()}`,
  );
}

// A gateway whose port is taken gets no listener (Envoy rejects it and keeps running): say so
// now rather than let the failover walkthrough fail for no visible reason.
if (roles) {
  for (const g of gatewayEnvoys) {
    const deadline = performance.now() + WAIT_MS;
    const listening = async () =>
      (await get(g.adminPort, '127.0.0.1', '/listeners')).body
        .split('\n')
        .some((l) => l.startsWith(`mesh-gateway|${g.id}::`) && l.endsWith(`:${g.port}`));
    while (!(await listening())) {
      if (performance.now() > deadline) {
        await stop(
          1,
          `mesh gateway ${g.id} does not listen on port ${g.port} after ${WAIT_MS / 1000} s ` +
            `(is the port taken?); its log: ${g.process.logFile}`,
        );
      }
      await sleep(100);
    }
  }
}

const line = (s: string) => console.log(s);
const adminUrl = `http://127.0.0.1:${cp.adminPort}`;
// The operator API needs a token (read scope is enough for status, mesh, snapshot, tail).
const operatorToken = ca ? await ca.tokens.issueOperator({ name: 'demo' }) : undefined;
const curl = `curl -H 'Host: ${to}' http://127.0.0.1:${from.outboundPort}/`;
line('');
line(
  `lucid-mesh demo is up (${flags.mode}, ${ca ? 'mTLS between sidecars, token-authenticated xDS' : 'plaintext'}): control plane xDS 127.0.0.1:${cp.xdsPort}, admin ${adminUrl}`,
);
if (roles) {
  line(
    `  datacenters: ${LOCAL_DC} (the control plane's), then ${roles.otherDatacenters.join(', ')}; ` +
      `catalog ${catalogArg}, traffic ${trafficArg}${flags.once ? ` (copied to ${started.copyDir})` : ''}`,
  );
} else if (trafficArg !== undefined) {
  line(`  traffic configuration: ${trafficArg}`);
}
const where = (dc: string | undefined) => (roles || dc !== undefined ? `, ${dc ?? LOCAL_DC}` : '');
for (const s of sidecars) {
  line(
    `  sidecar ${s.id} (${s.service}${where(s.datacenter)}): outbound 127.0.0.1:${s.outboundPort}, DNS 127.0.0.1:${s.dnsPort} (udp), Envoy admin http://127.0.0.1:${s.adminPort}`,
  );
}
for (const g of gatewayEnvoys) {
  line(
    `  mesh gateway ${g.id} (${g.datacenter}): listens on ${g.address}:${g.port}, Envoy admin http://127.0.0.1:${g.adminPort}`,
  );
}
for (const s of catalog.services.filter((x) => x.protocol === 'tcp')) {
  const to = s.instances.map((i) => `${i.id} at ${i.address}:${i.port}`).join(', ') || 'none';
  line(
    `  tcp service ${s.name}: 127.0.0.1:${s.outboundPort} on every sidecar → ${to} (not started by the demo: run it there yourself)`,
  );
}
line('');
line(`A request from ${from.service}'s sidecar to ${to}, across the mesh:`);
line(`  ${curl}`);
line(`  → ${first.answer.body}`);
line(`By name, resolved by that sidecar's DNS listener (docs/dns.md):`);
line(
  `  curl http://${to}.lucid.internal:${from.outboundPort}/ --resolve ${to}.lucid.internal:${from.outboundPort}:$(dig +short @127.0.0.1 -p ${from.dnsPort} ${to}.lucid.internal)`,
);
line('');

// ---- the walkthrough, or the scripted failover check -----------------------------------------

/** A counter of a gateway's /stats (0 when it has none yet). */
async function gatewayCounter(g: GatewayEnvoy, name: string): Promise<number> {
  const res = await get(g.adminPort, '127.0.0.1', '/stats?filter=mesh_gateway');
  for (const l of res.body.split('\n')) {
    const [key, value] = l.split(': ');
    if (key === name) return Number(value) || 0;
  }
  return 0;
}

async function failoverCheck(r: Roles): Promise<never> {
  const gw1 = gatewayEnvoys.find((g) => g.id === r.localGateway)!;
  const gw2 = gatewayEnvoys.find((g) => g.id === r.remoteGateway)!;
  // gw-dc1 hands dc2-bound connections to dc2's gateways; gw-dc2 hands them to api's sidecars.
  // Bytes, not connections: a connection through both may already be open (a retry at
  // start-up can reach dc2), and web's sidecar then sends this request over it.
  const stat1 = `tcp.mesh_gateway_dc_${r.remoteDc}.downstream_cx_rx_bytes_total`;
  const stat2 = `tcp.mesh_gateway_${r.target}.downstream_cx_rx_bytes_total`;
  const before = [await gatewayCounter(gw1, stat1), await gatewayCounter(gw2, stat2)];
  const fail = (what: string) =>
    stop(
      1,
      `failover check failed: ${what}\nEnvoy logs: ${envoyLogs()}\ncatalog copy: ${files.catalog}`,
    );

  line(`Failover check, on the copy ${files.catalog}:`);
  setHealth(files.catalog, r.local.id, 'critical');
  const moved = await until(from.outboundPort, r.target, r.remote.id);
  if (moved.ms < 0) {
    await fail(
      `${r.local.id} marked critical, but no request was answered by ${r.remote.id} within ` +
        `${WAIT_MS / 1000} s (last answer: ${moved.last.status} ${moved.last.body})`,
    );
  }
  line(
    `  ${r.local.id} marked critical → answered by ${r.remote.id} (${r.remoteDc}) after ${moved.ms} ms, ${moved.failed} failed meanwhile:`,
  );
  line(`  → ${moved.answer.body}`);

  // Envoy counts bytes as they pass; give the admin endpoint a moment anyway.
  let after = before;
  const deadline = performance.now() + 5000;
  while (performance.now() < deadline) {
    after = [await gatewayCounter(gw1, stat1), await gatewayCounter(gw2, stat2)];
    if (after[0]! > before[0]! && after[1]! > before[1]!) break;
    await sleep(100);
  }
  const counted = `${gw1.id} ${stat1} ${before[0]} → ${after[0]}, ${gw2.id} ${stat2} ${before[1]} → ${after[1]}`;
  if (!(after[0]! > before[0]! && after[1]! > before[1]!)) {
    await fail(`the request answered in ${r.remoteDc} did not cross both gateways: ${counted}`);
  }
  line(`  through both gateways: ${counted}`);

  setHealth(files.catalog, r.local.id, 'passing');
  const back = await until(from.outboundPort, r.target, r.local.id);
  if (back.ms < 0) {
    await fail(
      `${r.local.id} passing again, but no request was answered by it within ${WAIT_MS / 1000} s ` +
        `(last answer: ${back.last.status} ${back.last.body})`,
    );
  }
  line(
    `  ${r.local.id} passing again → answered by ${r.local.id} (${LOCAL_DC}) after ${back.ms} ms, ${back.failed} failed meanwhile`,
  );
  line('Failover check passed.');
  return stop(0);
}

if (flags.once) {
  if (roles) await failoverCheck(roles);
  await stop(0);
}

if (operatorToken) {
  line(`Operator commands need a token (this one is the demo's, read-only, 24 h):`);
  line(`  export LUCID_OPERATOR_TOKEN=${operatorToken}`);
}
if (roles) {
  const gw1 = gatewayEnvoys.find((g) => g.id === roles.localGateway)!;
  const gw2 = gatewayEnvoys.find((g) => g.id === roles.remoteGateway)!;
  const edit = (a: string, b: string) =>
    `sed -i '/id: ${roles.local.id}/,/health:/ s/health: ${a}/health: ${b}/' ${catalogArg}`;
  line(`Fail over to ${roles.remoteDc} and back (walkthrough: docs/multi-dc.md):`);
  line(
    `  1. Take ${roles.local.id} out: set its \`health: critical\` in ${catalogArg} and save, e.g.`,
  );
  line(`       ${edit('passing', 'critical')}`);
  line(`  2. Ask again: ${curl}`);
  line(`     → answered by ${roles.remote.id}, through ${gw1.id} and ${gw2.id}; they count it:`);
  const stats = (g: GatewayEnvoy) =>
    `curl -s 'http://127.0.0.1:${g.adminPort}/stats?filter=mesh_gateway.*cx_total'`;
  line(`       ${stats(gw1)}   # tcp.mesh_gateway_dc_${roles.remoteDc}: to ${gw2.id}`);
  line(`       ${stats(gw2)}   # tcp.mesh_gateway_${roles.target}: to ${roles.remote.id}`);
  line(`  3. Bring it back: ${edit('critical', 'passing')}`);
  line(`     → answered by ${roles.local.id} again.`);
  line(
    `${roles.target}'s instances, health and routes: npx lucid-mesh mesh --service ${roles.target} --server ${adminUrl}`,
  );
  line(
    `  (--json adds the localities: ${roles.target}'s endpoints grouped by datacenter, ${LOCAL_DC}'s first)`,
  );
  line(
    `What ${from.id}'s Envoy holds for ${roles.target} (${LOCAL_DC}'s instance, then ${gw1.id} for ${roles.remoteDc}): curl -s http://127.0.0.1:${from.adminPort}/clusters | grep '^${roles.target}::.*::\\(hostname\\|priority\\|health_flags\\)::'`,
  );
} else {
  line(
    `Edit ${catalogArg} and watch it apply live, e.g.: curl -s http://127.0.0.1:${from.adminPort}/clusters | grep ${to}::`,
  );
}
if (ca) line(`Certificates delivered over SDS: curl -s http://127.0.0.1:${from.adminPort}/certs`);
line(`Proxies and their sync state: npx lucid-mesh status --server ${adminUrl}`);
line(`Readiness and metrics: curl ${adminUrl}/ready ; curl ${adminUrl}/metrics`);
line('Ctrl-C stops everything.');
