#!/usr/bin/env node
// `npm run demo`: the control plane on a catalog (default examples/catalog.yaml), a tiny HTTP
// app for every instance, and a real Envoy sidecar for every meshed one. Prints the curl that
// sends a request across the mesh. Edit the catalog while it runs and watch Envoy follow.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command, Option } from 'commander';
import { startControlPlane } from '../app.js';
import { renderBootstrap, XDS_MODES, type XdsMode } from '../bootstrap/render.js';
import { parseCatalogText } from '../catalog/load-document.js';
import { choiceOption, portOption } from '../cli/options.js';
import { openCa } from '../ca/open.js';
import { FileSource } from '../sources/file-source.js';
import { createLogger, LOG_LEVELS, type LogLevel } from '../telemetry/logger.js';
import { envoyBinary, startApp, startEnvoyProcess } from './processes.js';

interface Flags {
  catalog: string;
  mode: XdsMode;
  xdsPort: number;
  adminPort: number;
  envoyPortBase: number;
  once: boolean;
  insecure: boolean;
  logLevel: LogLevel;
}

const flags = new Command('lucid-mesh-demo')
  .description(
    'Run the control plane, one app per catalog instance and one real Envoy per meshed instance.',
  )
  .addOption(
    new Option('--catalog <file>', 'catalog to serve (watched)').default('examples/catalog.yaml'),
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
      'sidecar i gets admin port BASE+100*i and outbound port BASE+100*i+1',
    )
      .default(15000)
      .argParser(portOption('--envoy-port-base')),
  )
  .addOption(
    new Option(
      '--once',
      'send one request across the mesh, print it, and exit (0 on success)',
    ).default(false),
  )
  .addOption(
    new Option('--log-level <level>', 'control plane log level')
      .default('warn')
      .argParser(choiceOption('--log-level', LOG_LEVELS)),
  )
  .parse()
  .opts<Flags>();

const logger = createLogger(flags.logLevel);
const catalog = parseCatalogText(readFileSync(flags.catalog, 'utf8'), flags.catalog);
const meshed = catalog.services.flatMap((s) =>
  s.instances
    .filter((i) => i.sidecarPort !== undefined)
    .map((instance) => ({ service: s.name, instance })),
);
if (meshed.length < 2) {
  console.error(`${flags.catalog}: the demo needs at least two instances with a sidecarPort`);
  process.exit(2);
}

const envoy = envoyBinary();
const servers = await Promise.all(
  catalog.services.flatMap((s) => s.instances.map((i) => startApp(i.id, s.name, i.port))),
);
// The demo's CA lives in a temporary directory: it shows the mesh, not the operator's CA.
const ca = flags.insecure
  ? undefined
  : await openCa({ dataDir: mkdtempSync(join(tmpdir(), 'lucid-mesh-demo-ca-')), logger });
const cp = await startControlPlane({
  source: new FileSource(flags.catalog, logger),
  logger,
  host: '127.0.0.1',
  xdsPort: flags.xdsPort,
  adminPort: flags.adminPort,
  security: ca ? { ca, mtls: true, auth: 'token' } : undefined,
});
const tokens = new Map<string, string>();
for (const { service } of meshed) {
  if (ca && !tokens.has(service)) tokens.set(service, await ca.tokens.issue(service));
}
const sidecars = meshed.map(({ service, instance }, i) => {
  const adminPort = flags.envoyPortBase + 100 * i;
  const outboundPort = adminPort + 1;
  const yaml = renderBootstrap({
    nodeId: instance.id,
    service,
    xds: `127.0.0.1:${cp.xdsPort}`,
    mode: flags.mode,
    adminPort,
    outboundPort,
    token: tokens.get(service),
  });
  return {
    service,
    id: instance.id,
    adminPort,
    outboundPort,
    process: startEnvoyProcess(envoy, instance.id, yaml),
  };
});

let stopping = false;
async function stop(code: number): Promise<never> {
  stopping = true;
  for (const s of sidecars) s.process.child.kill('SIGTERM');
  servers.forEach((s) => s.close());
  await cp.stop();
  ca?.stop();
  process.exit(code);
}
process.once('SIGINT', () => void stop(0));
process.once('SIGTERM', () => void stop(0));
for (const s of sidecars) {
  s.process.child.once('exit', (code) => {
    if (stopping) return;
    console.error(`Envoy ${s.id} exited (${code}); its log: ${s.process.logFile}`);
    void stop(1);
  });
}

function get(port: number, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: '/', headers: { host }, agent: false, timeout: 2000 },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

// Wait until the first sidecar can reach the second service across the mesh.
const [from, to] = [sidecars[0]!, sidecars[1]!];
const deadline = Date.now() + 30_000;
let last = '';
for (;;) {
  const res = await get(from.outboundPort, to.service).catch((err: Error) => ({
    status: 0,
    body: err.message,
  }));
  if (res.status === 200) {
    last = res.body.trim();
    break;
  }
  if (Date.now() > deadline) {
    console.error(
      `the mesh did not come up within 30 s (last answer: ${res.status} ${res.body.trim()})`,
    );
    console.error(`Envoy logs: ${sidecars.map((s) => s.process.logFile).join(' ')}`);
    await stop(1);
  }
  await sleep(200);
}

const line = (s: string) => console.log(s);
line('');
line(
  `lucid-mesh demo is up (${flags.mode}, ${ca ? 'mTLS between sidecars, token-authenticated xDS' : 'plaintext'}): control plane xDS 127.0.0.1:${cp.xdsPort}, admin http://127.0.0.1:${cp.adminPort}`,
);
for (const s of sidecars)
  line(
    `  sidecar ${s.id} (${s.service}): outbound 127.0.0.1:${s.outboundPort}, Envoy admin http://127.0.0.1:${s.adminPort}`,
  );
line('');
line(`A request from ${from.service}'s sidecar to ${to.service}, across the mesh:`);
line(`  curl -H 'Host: ${to.service}' http://127.0.0.1:${from.outboundPort}/`);
line(`  → ${last}`);
line('');
if (flags.once) await stop(0);
line(
  `Edit ${flags.catalog} and watch it apply live, e.g.: curl -s http://127.0.0.1:${from.adminPort}/clusters | grep ${to.service}::`,
);
if (ca) line(`Certificates delivered over SDS: curl -s http://127.0.0.1:${from.adminPort}/certs`);
line(
  `Proxies and their sync state: npx lucid-mesh status --server http://127.0.0.1:${cp.adminPort}`,
);
line(
  `Readiness and metrics: curl http://127.0.0.1:${cp.adminPort}/ready ; curl http://127.0.0.1:${cp.adminPort}/metrics`,
);
line('Ctrl-C stops everything.');
