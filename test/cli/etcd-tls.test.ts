// etcd over TLS with client certificates (etcd --client-cert-auth), as docs/etcd.md promises:
// register, deregister and serve --source etcd work with --etcd-cacert/--etcd-cert/--etcd-key,
// and a missing piece fails on one line naming the flag that fixes it. The failures printed
// OpenSSL's internals ('80BCE6DB307F0000:error:0A000412:SSL routines:ssl3_read_bytes:sslv3 alert
// bad certificate:../deps/openssl/...c:1601:SSL alert number 42') and a newline, then the time
// of the attempt on a line of its own. Real etcd, real CLI, certificates made with OpenSSL.
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, spawnCli, type CliResult } from '../support/cli-process.js';
import { etcdPath, etcdctlPath, startEtcd } from '../support/etcd.js';
import { httpGet } from '../support/http-app.js';
import { freePorts } from '../support/ports.js';
import { serverProcess, type ServerProcess } from '../support/process.js';
import { waitFor } from '../support/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'lucid-etcd-tls-'));
const file = (name: string) => join(dir, name);

/** A CA, etcd's server certificate (127.0.0.1) and a client certificate, all P-256. */
function makeCertificates(): void {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  const key = (name: string) =>
    openssl(
      'genpkey',
      '-algorithm',
      'EC',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-out',
      file(name),
    );
  key('ca.key');
  openssl(
    ...['req', '-x509', '-new', '-key', file('ca.key'), '-out', file('ca.pem')],
    ...['-days', '2', '-subj', '/CN=etcd test CA'],
  );
  for (const [name, usage, san] of [
    ['server', 'serverAuth', 'subjectAltName=IP:127.0.0.1'],
    ['client', 'clientAuth', 'subjectAltName=DNS:lucid-mesh'],
  ] as const) {
    key(`${name}.key`);
    openssl(
      'req',
      '-new',
      '-key',
      file(`${name}.key`),
      '-out',
      file(`${name}.csr`),
      '-subj',
      `/CN=${name}`,
    );
    writeFileSync(file(`${name}.ext`), `${san}\nextendedKeyUsage=${usage}\n`);
    openssl(
      ...['x509', '-req', '-in', file(`${name}.csr`), '-CA', file('ca.pem')],
      ...['-CAkey', file('ca.key'), '-CAcreateserial', '-days', '2'],
      ...['-extfile', file(`${name}.ext`), '-out', file(`${name}.pem`)],
    );
  }
}

const tlsFlags = [
  ...['--etcd-cacert', file('ca.pem'), '--etcd-cert', file('client.pem')],
  ...['--etcd-key', file('client.key')],
];

describe('etcd with TLS client certificates', () => {
  let etcd: ServerProcess;
  let endpoint: string;
  const instance = ['--service', 'web', '--id', 'web-1'];
  const register = (...extra: string[]): Promise<CliResult> =>
    runCli([
      'register',
      ...instance,
      '--address',
      '10.0.0.5',
      '--port',
      '8080',
      '--etcd',
      endpoint,
      ...extra,
    ]);
  const errorLines = (r: CliResult) => r.stderr.split('\n').filter((l) => l !== '');

  beforeAll(async () => {
    makeCertificates();
    const [client, peer] = (await freePorts(2)) as [number, number];
    endpoint = `https://127.0.0.1:${client}`;
    const peerUrl = `http://127.0.0.1:${peer}`;
    const etcdctl = [
      `--endpoints=${endpoint}`,
      ...['--cacert', file('ca.pem'), '--cert', file('client.pem'), '--key', file('client.key')],
    ];
    etcd = serverProcess({
      name: 'etcd',
      label: `etcd tls on ${endpoint}`,
      bin: etcdPath(),
      args: [
        ...['--name', 'tls', '--data-dir', file('data')],
        ...['--listen-client-urls', endpoint, '--advertise-client-urls', endpoint],
        ...['--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl],
        ...['--initial-cluster', `tls=${peerUrl}`, '--log-level', 'warn', '--logger', 'zap'],
        ...['--cert-file', file('server.pem'), '--key-file', file('server.key')],
        ...['--trusted-ca-file', file('ca.pem'), '--client-cert-auth'],
      ],
      logKeep: 64 * 1024,
      ready: () =>
        new Promise((resolve) =>
          execFile(
            etcdctlPath(),
            [...etcdctl, 'endpoint', 'health'],
            {
              env: { ...process.env, ETCDCTL_API: '3' },
              timeout: 5_000,
            },
            (err) => resolve(!err),
          ),
        ),
      readyWhat: 'etcd healthy over TLS',
      readyTimeoutMs: 20_000,
      readyIntervalMs: 200,
      killGraceMs: 5_000,
    });
    await etcd.start();
  }, 60_000);

  afterAll(async () => {
    await etcd?.signal('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });

  it('register, serve and deregister work with the CA, client certificate and key', async () => {
    const ok = await register(...tlsFlags);
    expect(ok.code, ok.stderr).toBe(0);
    // Nothing on stderr: Node's DEP0123 for a TLS server name that is an IP (grpc-js sets it).
    expect(ok.stderr).toBe('');

    const [admin, xds] = (await freePorts(2)) as [number, number];
    const serve = spawnCli([
      ...['serve', '--source', 'etcd', '--etcd', endpoint, ...tlsFlags, '--host', '127.0.0.1'],
      ...['--mtls', 'off', '--auth', 'none', '--admin-auth', 'none', '--data-dir', file('state')],
      ...['--admin-port', String(admin), '--xds-port', String(xds)],
    ]);
    try {
      await waitFor(
        async () => {
          const r = await httpGet(`http://127.0.0.1:${admin}/v1/mesh?service=web`).catch(
            () => undefined,
          );
          return r?.status === 200 && r.body.includes('"web-1"');
        },
        { what: 'web-1 in the mesh', timeoutMs: 30_000, details: () => serve.output() },
      );
      expect(serve.output()).not.toContain('DeprecationWarning');
    } finally {
      await serve.stop();
    }

    const gone = await runCli(['deregister', ...instance, '--etcd', endpoint, ...tlsFlags]);
    expect(gone.code, gone.stderr).toBe(0);
    expect(gone.stdout).toContain('deregistered web-1');
  });

  it('without a client certificate: one line, naming --etcd-cert and --etcd-key', async () => {
    const r = await register('--etcd-cacert', file('ca.pem'));
    expect(r.code).toBe(1);
    expect(errorLines(r)).toEqual([
      `lucid-mesh register: cannot register web-1 (service web): etcd ${endpoint}: 14 UNAVAILABLE: ` +
        'No connection established. Last error: TLS: sslv3 alert bad certificate SSL alert number 42 ' +
        "(etcd refused this client's certificate, or it needs one: --etcd-cert, --etcd-key)",
    ]);
  });

  it('without the CA: one line, naming --etcd-cacert', async () => {
    const r = await register('--etcd-cert', file('client.pem'), '--etcd-key', file('client.key'));
    expect(r.code).toBe(1);
    expect(errorLines(r)).toHaveLength(1);
    expect(errorLines(r)[0]).toMatch(
      /: unable to verify the first certificate \(etcd's certificate is not signed by a trusted CA: --etcd-cacert\)$/,
    );
  });

  it('https:// to a plain etcd port: one line, saying to use http://', async () => {
    const plain = await startEtcd('plain-for-tls');
    try {
      const r = await runCli([
        ...['register', ...instance, '--address', '10.0.0.5', '--port', '8080'],
        ...['--etcd', plain.endpoint.replace('http:', 'https:')],
      ]);
      expect(r.code).toBe(1);
      expect(errorLines(r)).toHaveLength(1);
      expect(errorLines(r)[0]).toMatch(
        /\(does etcd serve TLS there\? http:\/\/ for a plain port\)$/,
      );
    } finally {
      await plain.remove();
    }
  });
});
