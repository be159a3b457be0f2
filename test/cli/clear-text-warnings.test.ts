// `serve` says at start when secrets cross the network in clear text. Found by hand: the
// default (0.0.0.0, mTLS and tokens on, no TLS on either port) sent every sidecar's private
// key over SDS and every token in clear text with no word in the log, while the README calls
// it the secure default. The real CLI, started as an operator would.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isLoopbackHost } from '../../src/cli/clear-text-warnings.js';
import { makeAdminTls } from '../support/admin-tls.js';
import { startEtcd } from '../support/etcd.js';
import { spawnCli, type CliProcess } from '../support/cli-process.js';
import { httpGet } from '../support/http-app.js';
import { freePorts } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'lucid-clear-text-'));
const tls = makeAdminTls();
const running: CliProcess[] = [];
afterAll(async () => {
  for (const p of running) await p.stop();
  rmSync(dir, { recursive: true, force: true });
  rmSync(tls.dir, { recursive: true, force: true });
});

/** serve on the example catalog; resolves with its warnings once it is ready, then stops it. */
async function warningsOf(args: string[]): Promise<string[]> {
  const [admin, xds] = (await freePorts(2)) as [number, number];
  const p = spawnCli(
    ['serve', '--catalog', 'examples/catalog.yaml', '--admin-port', `${admin}`, ...args],
    { LUCID_DATA_DIR: join(dir, 'data'), XDS_PORT: String(xds) },
  );
  running.push(p);
  const scheme = args.includes('--admin-tls-cert') ? 'https' : 'http';
  await waitFor(
    async () =>
      scheme === 'http'
        ? (await httpGet(`http://127.0.0.1:${admin}/ready`)).status === 200
        : p.stderr().includes('control plane started'),
    { what: 'serve ready', timeoutMs: 30_000, details: () => p.stderr().slice(-2000) },
  );
  await p.stop();
  return p
    .stderr()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: number; msg: string })
    .filter((l) => l.level === 40)
    .map((l) => l.msg.replace(/:\d+ is served/, ':PORT is served'));
}

describe('serve: secrets in clear text', () => {
  it('the default (all addresses, no TLS) warns for both ports, naming the flags', async () => {
    expect(await warningsOf([])).toEqual([
      "the xDS port 0.0.0.0:PORT is served without TLS: sidecars' private keys (SDS) and proxy tokens cross the network in clear text; give --xds-tls-cert/--xds-tls-key (sidecars: bootstrap --xds-ca), or --host 127.0.0.1 when every sidecar runs on this host",
      'the admin port 0.0.0.0:PORT is served without TLS: operator tokens cross the network in clear text; give --admin-tls-cert/--admin-tls-key, or --host 127.0.0.1 when operators run on this host',
    ]);
  });

  it('TLS on both ports, or a loopback address: no warning', async () => {
    const both = ['--xds-tls-cert', tls.certFile, '--xds-tls-key', tls.keyFile];
    both.push('--admin-tls-cert', tls.certFile, '--admin-tls-key', tls.keyFile);
    expect(await warningsOf(both)).toEqual([]);
    expect(await warningsOf(['--host', '127.0.0.1'])).toEqual([]);
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost'])
      expect(isLoopbackHost(host), host).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.5', 'cp.internal'])
      expect(isLoopbackHost(host), host).toBe(false);
  });

  it('--state-insecure-plaintext warns that the CA keys sit unencrypted in the store', async () => {
    const etcd = await startEtcd('clear-text');
    try {
      const state = ['--state', 'etcd', '--etcd', etcd.endpoint, '--host', '127.0.0.1'];
      expect(await warningsOf([...state, '--state-insecure-plaintext'])).toEqual([
        "--state-insecure-plaintext: the CA's root keys and the token signing key are kept in etcd unencrypted: anyone who can read the state prefix can sign certificates and mint tokens for any service; give --state-encryption-key FILE outside development",
      ]);
    } finally {
      await etcd.remove();
    }
  });
});
