// What `serve` says at start when secrets would cross the network in clear text: the default
// binds 0.0.0.0 with mTLS and tokens on but no TLS on either port, so every sidecar's private
// key (SDS) and proxy token, and every operator token, can be read by anyone on the path. One
// warning per port, naming the flags that fix it; nothing on a loopback address. Also the CA's
// private keys kept unencrypted in a shared store (--state-insecure-plaintext).
import type { SecurityOptions } from '../app.js';
import { stateInsecurePlaintext } from './state-flags.js';

export interface ClearTextSetup {
  readonly host: string;
  readonly xdsPort: number;
  readonly adminPort: number;
  readonly security: Pick<SecurityOptions, 'mtls' | 'auth' | 'adminAuth' | 'adminTls'> | undefined;
  readonly xdsTls: unknown;
  /** --state, --state-encryption-key, --state-insecure-plaintext (flag or env value). */
  readonly state?: string;
  readonly stateEncryptionKey?: string;
  readonly stateInsecurePlaintext?: unknown;
}

/** Loopback only: 127.0.0.0/8, ::1, localhost (what never leaves the host). */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h);
}

/** The warnings for this setup, one line each (none when nothing secret goes out in clear). */
export function clearTextWarnings(setup: ClearTextSetup): string[] {
  const { host, security } = setup;
  const out: string[] = [];
  const store = setup.state === 'consul' ? 'Consul KV' : setup.state === 'etcd' ? 'etcd' : '';
  if (store && !setup.stateEncryptionKey && stateInsecurePlaintext(setup)) {
    out.push(
      `--state-insecure-plaintext: the CA's root keys and the token signing key are kept in ${store} ` +
        'unencrypted: anyone who can read the state prefix can sign certificates and mint tokens ' +
        'for any service; give --state-encryption-key FILE outside development',
    );
  }
  if (isLoopbackHost(host) || !security) return out;
  const xdsSecrets = [
    security.mtls ? "sidecars' private keys (SDS)" : undefined,
    security.auth === 'token' ? 'proxy tokens' : undefined,
  ].filter((s): s is string => s !== undefined);
  if (!setup.xdsTls && xdsSecrets.length > 0) {
    out.push(
      `the xDS port ${host}:${setup.xdsPort} is served without TLS: ${xdsSecrets.join(' and ')} ` +
        'cross the network in clear text; give --xds-tls-cert/--xds-tls-key (sidecars: bootstrap --xds-ca), ' +
        'or --host 127.0.0.1 when every sidecar runs on this host',
    );
  }
  if (!security.adminTls && (security.adminAuth ?? 'token') === 'token') {
    out.push(
      `the admin port ${host}:${setup.adminPort} is served without TLS: operator tokens ` +
        'cross the network in clear text; give --admin-tls-cert/--admin-tls-key, ' +
        'or --host 127.0.0.1 when operators run on this host',
    );
  }
  return out;
}
