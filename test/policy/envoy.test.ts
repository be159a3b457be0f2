// Real Envoy is the oracle for the compiled RBAC:
// 1. every filter shape the compiler emits (deny all, allow list, allow all, all but one, all
//    but several), HTTP and network, inside inbound listeners as Envoy receives them (encoded and
//    decoded), passes `envoy --mode validate` without warnings;
// 2. with mTLS (certificates with SPIFFE URI SANs made by openssl), Envoy enforces it: an
//    allowed caller gets 200 / its bytes echoed, a denied one 403 / a closed connection.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HTTP_RBAC_FILTER_NAME,
  httpRbacFilter,
  networkRbacFilter,
  spiffeId,
} from './policy-rbac.js';
import { parsePolicy } from '../../src/policy/schema.js';
import { startEnvoy, type EnvoyHandle } from '../support/envoy.js';
import { freePorts } from '../support/ports.js';
import { envoyPath } from '../support/tools.js';
import { findFilter, httpListener, onTheWire, tcpListener, type Json } from './listeners.js';

const workDir = mkdtempSync(join(tmpdir(), 'lucid-policy-envoy-'));
afterAll(() => rmSync(workDir, { recursive: true, force: true }));

function staticCluster(name: string, port: number): Json {
  return {
    name,
    type: 'STATIC',
    connectTimeout: '1s',
    loadAssignment: {
      clusterName: name,
      endpoints: [
        {
          lbEndpoints: [
            { endpoint: { address: { socketAddress: { address: '127.0.0.1', portValue: port } } } },
          ],
        },
      ],
    },
  };
}

function validate(name: string, config: Json): { status: number | null; output: string } {
  const file = join(workDir, `${name}.json`);
  writeFileSync(file, JSON.stringify(config, null, 2));
  const run = spawnSync(
    envoyPath(),
    ['--mode', 'validate', '-c', file, '--disable-hot-restart', '-l', 'warning'],
    { encoding: 'utf8', timeout: 30_000 },
  );
  return { status: run.status, output: `${run.stdout}${run.stderr}${run.error ?? ''}` };
}

describe('envoy --mode validate', () => {
  // One destination per RBAC shape: t1 deny all, t2 allow list, t3 allow all, t4 all but one,
  // t5 all but several.
  const policy = parsePolicy({
    defaults: { action: 'allow' },
    rules: [
      { from: ['*'], to: ['t1'], action: 'deny' },
      { from: ['a', 'b'], to: ['t2'], action: 'allow' },
      { from: ['*'], to: ['t2'], action: 'deny' },
      { from: ['a'], to: ['t4'], action: 'deny' },
      { from: ['a', 'b'], to: ['t5'], action: 'deny' },
    ],
  });
  const destinations = ['t1', 't2', 't3', 't4', 't5'];
  const catalog = ['a', 'b', 'c', ...destinations];

  it('accepts every compiled shape, HTTP and TCP, without warnings', () => {
    const listeners = destinations.flatMap((to, i) => [
      onTheWire(httpListener(`inbound|http|${to}`, 20000 + i, httpRbacFilter(policy, to, catalog))),
      onTheWire(
        tcpListener(
          `inbound|tcp|${to}`,
          21000 + i,
          networkRbacFilter(policy, to, catalog),
          'local',
        ),
      ),
    ]);
    // The shapes are really all there.
    const shapes = listeners
      .filter((_, i) => i % 2 === 0)
      .map((l) => JSON.stringify((findFilter(l, HTTP_RBAC_FILTER_NAME).typedConfig as Json).rules));
    expect(shapes[0]).toBe('{}');
    expect(shapes[1]).toContain('svc/b');
    expect(shapes[2]).toContain('"any":true');
    expect(shapes[3]).toContain('notId');
    expect(shapes[4]).toContain('orIds');
    const { status, output } = validate('shapes', {
      node: { id: 'validate', cluster: 'validate' },
      staticResources: { listeners, clusters: [staticCluster('local', 9)] },
    });
    expect(status, `envoy rejected the RBAC listeners:\n${output}`).toBe(0);
    expect(output, `envoy warned:\n${output}`).not.toMatch(/\[warning\]/);
  });

  it('rejects a broken RBAC filter (the check is not a no-op)', () => {
    const broken = httpRbacFilter(policy, 't2', catalog) as { typedConfig: { rules: Json } };
    const policies = broken.typedConfig.rules.policies as Record<string, Json>;
    for (const p of Object.values(policies)) p.principals = [];
    const { status, output } = validate('broken', {
      node: { id: 'validate', cluster: 'validate' },
      staticResources: { listeners: [onTheWire(httpListener('l', 20100, broken))], clusters: [] },
    });
    expect(status).not.toBe(0);
    expect(output).toMatch(/principals/i);
  });
});

// ---------------------------------------------------------------------------------------------
// Enforcement with mTLS.

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;
const TD = 'lucid.internal';

interface Pem {
  cert: string;
  key: string;
}

function openssl(args: string[]): void {
  const run = spawnSync('openssl', args, { cwd: workDir, encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${run.stderr}`);
}

/** A CA and leaves for `services`, each with URI SAN spiffe://lucid.internal/ns/default/svc/<s>. */
function makeCerts(services: string[]): { ca: string; leaves: Record<string, Pem> } {
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  writeFileSync(
    join(workDir, 'openssl.cnf'),
    [
      '[req]',
      'distinguished_name = dn',
      'prompt = no',
      '[dn]',
      'CN = policy-test',
      '[v3_ca]',
      'basicConstraints = critical, CA:TRUE',
      'keyUsage = critical, keyCertSign, cRLSign',
      'subjectKeyIdentifier = hash',
      '',
    ].join('\n'),
  );
  const config = ['-config', 'openssl.cnf'];
  openssl([
    'req',
    '-x509',
    ...ec,
    ...config,
    '-extensions',
    'v3_ca',
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '1',
  ]);
  const leaves: Record<string, Pem> = {};
  for (const s of services) {
    openssl([
      'req',
      ...ec,
      ...config,
      '-keyout',
      `${s}.key`,
      '-out',
      `${s}.csr`,
      '-subj',
      `/CN=${s}`,
    ]);
    writeFileSync(
      join(workDir, `${s}.ext`),
      `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=URI:${spiffeId(TD, 'default', s)}\n`,
    );
    openssl([
      'x509',
      '-req',
      '-in',
      `${s}.csr`,
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      `${s}.crt`,
      '-days',
      '1',
      '-extfile',
      `${s}.ext`,
    ]);
    leaves[s] = {
      cert: readFileSync(join(workDir, `${s}.crt`), 'utf8'),
      key: readFileSync(join(workDir, `${s}.key`), 'utf8'),
    };
  }
  return { ca: readFileSync(join(workDir, 'ca.crt'), 'utf8'), leaves };
}

function serverTls(service: string): Json {
  return {
    name: 'envoy.transport_sockets.tls',
    typedConfig: {
      '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
      requireClientCertificate: { value: true },
      commonTlsContext: {
        tlsCertificates: [
          {
            certificateChain: { filename: join(workDir, `${service}.crt`) },
            privateKey: { filename: join(workDir, `${service}.key`) },
          },
        ],
        validationContext: { trustedCa: { filename: join(workDir, 'ca.crt') } },
      },
    },
  };
}

/** GET / over mTLS as `client`; the status code. */
function httpsStatus(port: number, ca: string, client: Pem): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/',
        ca,
        cert: client.cert,
        key: client.key,
        // The server cert carries only a SPIFFE URI SAN; the chain is still verified.
        checkServerIdentity: () => undefined,
        agent: false,
        timeout: 5_000,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Sends "ping" over mTLS as `client`; what came back before the connection closed. */
function tcpExchange(port: number, ca: string, client: Pem): Promise<string> {
  return new Promise((resolve, reject) => {
    let received = '';
    const socket = connect({
      host: '127.0.0.1',
      port,
      ca,
      cert: client.cert,
      key: client.key,
      checkServerIdentity: () => undefined,
    });
    const timer = setTimeout(() => socket.destroy(new Error('timeout')), 5_000);
    socket.on('secureConnect', () => socket.write('ping'));
    socket.on('data', (d) => {
      received += d.toString('utf8');
      if (received === 'ping') socket.end();
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      // A reset after the RBAC close still counts as "closed": report what we got.
      if ((err as NodeJS.ErrnoException).code === 'ECONNRESET') resolve(received);
      else reject(err);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(received);
    });
  });
}

describe.skipIf(!hasOpenssl)('enforcement by a real Envoy with mTLS', () => {
  // t: isolated, only a may call it. v: open, everyone but b.
  const policy = parsePolicy({
    planes: { wallet: { services: ['t'], isolation: 'isolated' } },
    defaults: { action: 'allow' },
    rules: [
      { from: ['a'], to: ['t'], action: 'allow' },
      { from: ['b'], to: ['v'], action: 'deny' },
    ],
  });
  const catalog = ['a', 'b', 't', 'v'];
  let envoy: EnvoyHandle | undefined;
  let echo: Server | undefined;
  let ca = '';
  let leaves: Record<string, Pem> = {};
  let ports: Record<'httpT' | 'httpV' | 'tcpT' | 'tcpV' | 'admin' | 'echo', number>;

  beforeAll(async () => {
    ({ ca, leaves } = makeCerts(['a', 'b', 'c', 't', 'v']));
    const [httpT, httpV, tcpT, tcpV, admin, echoPort] = (await freePorts(6)) as [
      number,
      number,
      number,
      number,
      number,
      number,
    ];
    ports = { httpT, httpV, tcpT, tcpV, admin, echo: echoPort };
    echo = createServer((s) => s.pipe(s));
    await new Promise<void>((r) => echo!.listen(echoPort, '127.0.0.1', () => r()));
    const listeners = [
      httpListener('http-t', httpT, httpRbacFilter(policy, 't', catalog), {
        transportSocket: serverTls('t'),
      }),
      httpListener('http-v', httpV, httpRbacFilter(policy, 'v', catalog), {
        transportSocket: serverTls('v'),
      }),
      tcpListener('tcp-t', tcpT, networkRbacFilter(policy, 't', catalog), 'echo', {
        transportSocket: serverTls('t'),
      }),
      tcpListener('tcp-v', tcpV, networkRbacFilter(policy, 'v', catalog), 'echo', {
        transportSocket: serverTls('v'),
      }),
    ].map(onTheWire);
    const bootstrap = {
      node: { id: 'policy-enforcement', cluster: 'policy-test' },
      admin: { address: { socketAddress: { address: '127.0.0.1', portValue: admin } } },
      staticResources: { listeners, clusters: [staticCluster('echo', echoPort)] },
    };
    envoy = await startEnvoy({
      name: 'policy-enforcement',
      bootstrapYaml: JSON.stringify(bootstrap, null, 2),
      adminPort: admin,
    });
    await envoy.waitFor(
      async () =>
        (await envoy!.admin('/listeners')).split('\n').filter((l) => l.trim()).length >= 4,
      'four listeners up',
    );
  });

  afterAll(async () => {
    await envoy?.stop();
    await new Promise<void>((r) => (echo ? echo.close(() => r()) : r()));
  });

  it('HTTP: allow list (isolated destination): a 200, b and c 403', async () => {
    expect(await httpsStatus(ports.httpT, ca, leaves.a!)).toBe(200);
    expect(await httpsStatus(ports.httpT, ca, leaves.b!)).toBe(403);
    expect(await httpsStatus(ports.httpT, ca, leaves.c!)).toBe(403);
  });

  it('HTTP: everyone but b (notId): a and c 200, b 403', async () => {
    expect(await httpsStatus(ports.httpV, ca, leaves.a!)).toBe(200);
    expect(await httpsStatus(ports.httpV, ca, leaves.c!)).toBe(200);
    expect(await httpsStatus(ports.httpV, ca, leaves.b!)).toBe(403);
  });

  it('TCP: allowed callers get their bytes echoed, denied ones a closed connection', async () => {
    expect(await tcpExchange(ports.tcpT, ca, leaves.a!)).toBe('ping');
    expect(await tcpExchange(ports.tcpT, ca, leaves.b!)).toBe('');
    expect(await tcpExchange(ports.tcpV, ca, leaves.c!)).toBe('ping');
    expect(await tcpExchange(ports.tcpV, ca, leaves.b!)).toBe('');
    expect(await envoy!.stat('inbound_tcp.rbac.denied')).toBe(2);
    expect(await envoy!.stat('inbound_tcp.rbac.allowed')).toBe(2);
  });
});
