// etcd TLS files that cannot work: a client certificate given with another certificate's key,
// or a file that is no PEM. `register` and `serve --source etcd` crashed with a stack trace out
// of the gRPC client ('key values mismatch', 'no start line'); they now exit 2 with one line
// naming the flag and the files, before reaching for etcd. A CA file without a certificate is
// refused the same way (it failed later, as 'unable to verify the first certificate').
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeAdminTls } from '../support/admin-tls.js';
import { runCli } from '../support/cli-process.js';
import { freePorts } from '../support/ports.js';

const a = makeAdminTls();
const b = makeAdminTls();
const junk = join(a.dir, 'junk.pem');
writeFileSync(junk, 'not a certificate\n');

const register = ['register', '--service', 'web', '--id', 'web-1'];
const commands = async (): Promise<[string, string[]][]> => {
  const [admin, xds] = (await freePorts(2)) as [number, number];
  return [
    ['register', [...register, '--address', '10.0.0.5', '--port', '8080']],
    [
      'serve',
      [
        ...['serve', '--source', 'etcd', '--host', '127.0.0.1', '--mtls', 'off'],
        ...['--auth', 'none', '--data-dir', join(a.dir, 'state')],
        ...['--admin-port', String(admin), '--xds-port', String(xds)],
      ],
    ],
  ];
};
const https = ['--etcd', 'https://127.0.0.1:2379'];

describe('etcd TLS files that cannot work', () => {
  afterAll(() => {
    rmSync(a.dir, { recursive: true, force: true });
    rmSync(b.dir, { recursive: true, force: true });
  });

  it('a key that is not the certificate’s: exit 2 naming --etcd-cert and both files', async () => {
    for (const [name, args] of await commands()) {
      const run = await runCli([
        ...args,
        ...https,
        '--etcd-cert',
        a.certFile,
        '--etcd-key',
        b.keyFile,
      ]);
      expect(run.code, `${name}: ${run.stderr}`).toBe(2);
      expect(run.stderr, name).toContain(
        `--etcd-cert: cannot use ${JSON.stringify(a.certFile)} with --etcd-key ${JSON.stringify(b.keyFile)} (`,
      );
      expect(run.stderr, name).not.toMatch(/^\s+at /m);
    }
  });

  it('a certificate or CA file that is no PEM: exit 2 naming the flag', async () => {
    for (const [name, args] of await commands()) {
      const cert = await runCli([...args, ...https, '--etcd-cert', junk, '--etcd-key', a.keyFile]);
      expect(cert.code, `${name}: ${cert.stderr}`).toBe(2);
      expect(cert.stderr, name).toContain(`--etcd-cert: cannot use ${JSON.stringify(junk)}`);
      expect(cert.stderr, name).not.toMatch(/^\s+at /m);

      const ca = await runCli([...args, ...https, '--etcd-cacert', junk]);
      expect(ca.code, `${name}: ${ca.stderr}`).toBe(2);
      expect(ca.stderr, name).toContain(
        `--etcd-cacert: expected a PEM CA certificate in ${JSON.stringify(junk)}`,
      );
    }
  });
});
