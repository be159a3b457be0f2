// An operator pointing the CLI at a control plane whose admin port serves HTTPS
// (serve --admin-tls-cert), the mistakes made on the way: http:// instead of https://, a
// --server-ca that is not a certificate, the wrong CA. Each gets one line that says what to
// change (not "is serve running?", nor "give --server-ca" when it was given). Real serve, real CLI.
import { rmSync, writeFileSync } from 'node:fs';
import { get as httpsGet } from 'node:https';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeAdminTls, type AdminTlsFiles } from '../support/admin-tls.js';
import { plainServeArgs, runCli, spawnCli, type CliProcess } from '../support/cli-process.js';
import { CatalogFile } from '../support/mesh.js';
import { freePorts } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

const CATALOG = {
  services: [{ name: 'web', instances: [{ id: 'web-1', address: '127.0.0.1', port: 9100 }] }],
};

function readyOverTls(port: number, ca: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = httpsGet(`https://127.0.0.1:${port}/ready`, { ca }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
  });
}

describe('operator commands against an HTTPS admin port, used wrongly', () => {
  const catalog = new CatalogFile();
  let tls: AdminTlsFiles;
  let serve: CliProcess;
  let port: number;

  beforeAll(async () => {
    catalog.write(CATALOG);
    tls = makeAdminTls();
    const [admin, xds] = (await freePorts(2)) as [number, number];
    port = admin;
    serve = spawnCli([
      ...plainServeArgs(catalog.path, { admin, xds }),
      ...['--admin-auth', 'none', '--data-dir', join(tls.dir, 'state')],
      ...['--admin-tls-cert', tls.certFile, '--admin-tls-key', tls.keyFile],
    ]);
    await waitFor(() => readyOverTls(port, tls.cert), {
      what: 'serve ready over HTTPS',
      timeoutMs: 30_000,
      details: () => serve.output(),
    });
  }, 60_000);

  afterAll(async () => {
    await serve?.stop();
    catalog.remove();
    if (tls) rmSync(tls.dir, { recursive: true, force: true });
  });

  it('http:// to the TLS port: one line saying to use https://, exit 1 (status and tail)', async () => {
    for (const command of ['status', 'tail']) {
      const r = await runCli([command, '--server', `http://127.0.0.1:${port}`]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toBe(
        `lucid-mesh ${command}: the control plane at http://127.0.0.1:${port} closed the connection (ECONNRESET): if it serves the admin port over TLS (--admin-tls-cert), use https://\n`,
      );
    }
  });

  it('--server-ca naming a file with no certificate: exit 2 naming the flag and the file', async () => {
    const notPem = join(tls.dir, 'not-a-cert.txt');
    writeFileSync(notPem, 'hello\n');
    const r = await runCli([
      'status',
      ...['--server', `https://127.0.0.1:${port}`, '--server-ca', notPem],
    ]);
    expect(r).toMatchObject({
      code: 2,
      stdout: '',
      stderr: `lucid-mesh status: --server-ca: ${JSON.stringify(notPem)}: no PEM certificate found\n`,
    });
  });

  it('--server-ca of another CA: says the certificate does not chain to that file', async () => {
    const other = makeAdminTls();
    try {
      const r = await runCli([
        'status',
        ...['--server', `https://127.0.0.1:${port}`, '--server-ca', other.certFile],
      ]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(
        new RegExp(
          `^lucid-mesh status: cannot verify the certificate of the control plane at https://127\\.0\\.0\\.1:${port} \\(\\w+\\): it does not chain to --server-ca "${other.certFile}"\\n$`,
        ),
      );
      const right = await runCli([
        'status',
        ...['--server', `https://127.0.0.1:${port}`, '--server-ca', tls.certFile],
      ]);
      expect(right.code, right.stderr).toBe(0);
      expect(right.stdout).toContain('no proxies connected');
    } finally {
      rmSync(other.dir, { recursive: true, force: true });
    }
  });
});
