// A self-signed certificate for the admin port over HTTPS (serve --admin-tls-cert/--admin-tls-key)
// valid for 127.0.0.1 and localhost, made with OpenSSL; the certificate is its own CA
// (`--server-ca` for the operator commands).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface AdminTlsFiles {
  readonly dir: string;
  readonly certFile: string;
  readonly keyFile: string;
  readonly cert: string;
  readonly key: string;
}

export function makeAdminTls(): AdminTlsFiles {
  const dir = mkdtempSync(join(tmpdir(), 'lucid-admin-tls-'));
  const certFile = join(dir, 'admin.crt');
  const keyFile = join(dir, 'admin.key');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-days',
      '2',
      '-subj',
      '/CN=lucid-mesh admin',
      '-addext',
      'subjectAltName=IP:127.0.0.1,DNS:localhost',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return {
    dir,
    certFile,
    keyFile,
    cert: readFileSync(certFile, 'utf8'),
    key: readFileSync(keyFile, 'utf8'),
  };
}
