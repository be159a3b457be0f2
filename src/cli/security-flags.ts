// `lucid-mesh serve` security flags → SecurityOptions: the CA (mTLS certificates, proxy and
// operator tokens), whether streams must authenticate, the authorization policy, TLS on the
// xDS port, and the admin API's authentication and TLS.
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { Option } from 'commander';
import { ADMIN_AUTH_MODES } from '../admin/auth.js';
import type { SecurityOptions } from '../app.js';
import type { XdsTls } from '../xds/ads-transport.js';
import { openCa } from '../ca/open.js';
import { CaSettingsError } from '../ca/settings.js';
import { ConsulPolicy } from '../policy/consul-policy.js';
import { PolicyFile } from '../policy/policy-file.js';
import { ConsulClient } from '../sources/consul/client.js';
import { consulConnectionFromFlags } from '../sources/consul/options.js';
import { directoryProblem } from '../sources/from-flags.js';
import type { Logger } from '../telemetry/logger.js';
import { caCertOption, caKeyOption, dataDirOption } from './ca-command.js';
import { choiceOption } from './options.js';
import { stateCliOptions, stateStoreFromFlags, type StateFlags } from './state-flags.js';

const SWITCH = ['on', 'off', 'true', 'false'] as const;
export const AUTH_MODES = ['token', 'none'] as const;
/** Where sidecar certificates come from (docs/ca.md). */
export const CA_BACKENDS = ['builtin', 'consul-connect'] as const;

export interface SecurityFlags extends StateFlags {
  mtls: (typeof SWITCH)[number];
  auth: (typeof AUTH_MODES)[number];
  ca: (typeof CA_BACKENDS)[number];
  adminAuth: (typeof ADMIN_AUTH_MODES)[number];
  policy?: string;
  policyConsulKey?: string;
  dataDir: string;
  caCert?: string;
  caKey?: string;
  tokenKey?: string;
  trustDomain?: string;
  xdsTlsCert?: string;
  xdsTlsKey?: string;
  adminTlsCert?: string;
  adminTlsKey?: string;
}

/** A flag problem (exit 2); the message names the flag and the value. */
export class SecurityFlagError extends Error {
  override readonly name: string = 'SecurityFlagError';
}

export function securityCliOptions(): Option[] {
  return [
    new Option(
      '--mtls <on|off>',
      'mTLS between sidecars with certificates from the built-in CA over SDS',
    )
      .env('ENABLE_MTLS')
      .default('on')
      .argParser(choiceOption('--mtls', SWITCH)),
    new Option(
      '--auth <mode>',
      'token: sidecars must present a proxy token (lucid-mesh token issue); none: development only',
    )
      .env('LUCID_AUTH')
      .default('token')
      .argParser(choiceOption('--auth', AUTH_MODES)),
    new Option(
      '--admin-auth <mode>',
      'token: the admin API (/v1/*) needs an operator token (lucid-mesh token issue --operator); none: open, development only',
    )
      .env('LUCID_ADMIN_AUTH')
      .default('token')
      .argParser(choiceOption('--admin-auth', ADMIN_AUTH_MODES)),
    new Option(
      '--policy <file>',
      'authorization policy (YAML/JSON), watched; enforced by Envoy RBAC (needs --mtls on)',
    ).env('LUCID_POLICY'),
    new Option(
      '--policy-consul-key <key>',
      'authorization policy kept in this Consul KV key instead of a file (uses the --consul flags); watched',
    ).env('LUCID_POLICY_CONSUL_KEY'),
    new Option(
      '--ca <backend>',
      "where sidecar certificates come from: builtin (lucid-mesh's CA) or consul-connect (the Consul agent's Connect CA, reached with the --consul flags; Consul's SPIFFE IDs, so Consul's own sidecars and these trust each other)",
    )
      .env('LUCID_CA')
      .default('builtin')
      .argParser(choiceOption('--ca', CA_BACKENDS)),
    dataDirOption(),
    ...stateCliOptions(),
    caCertOption().env('LUCID_CA_CERT'),
    caKeyOption().env('LUCID_CA_KEY'),
    new Option(
      '--token-key <file>',
      'EC P-256 private key (PEM) that signs proxy tokens; give replicas the same one (default: generated in --data-dir)',
    ).env('LUCID_TOKEN_KEY'),
    new Option(
      '--trust-domain <domain>',
      'SPIFFE trust domain of issued certificates (default lucid.internal)',
    ).env('LUCID_TRUST_DOMAIN'),
    new Option('--xds-tls-cert <file>', 'serve ADS over TLS with this certificate chain (PEM)').env(
      'XDS_TLS_CERT',
    ),
    new Option('--xds-tls-key <file>', 'private key of --xds-tls-cert (PEM)').env('XDS_TLS_KEY'),
    new Option(
      '--admin-tls-cert <file>',
      'serve the admin port over HTTPS with this certificate chain (PEM)',
    ).env('ADMIN_TLS_CERT'),
    new Option('--admin-tls-key <file>', 'private key of --admin-tls-cert (PEM)').env(
      'ADMIN_TLS_KEY',
    ),
  ];
}

const on = (v: SecurityFlags['mtls']): boolean => v === 'on' || v === 'true';

export interface ServeSecurity {
  /** undefined: neither mTLS nor authentication, so no CA is needed (plaintext development mesh). */
  security?: SecurityOptions;
  /** TLS on the xDS port (--xds-tls-cert/--xds-tls-key). */
  xdsTls?: XdsTls;
}

export async function securityFromFlags(
  flags: SecurityFlags,
  logger: Logger,
): Promise<ServeSecurity> {
  const mtls = on(flags.mtls);
  if (flags.policy && flags.policyConsulKey) {
    throw new SecurityFlagError(
      '--policy-consul-key: give --policy or --policy-consul-key, not both',
    );
  }
  const policyFlag = flags.policy
    ? '--policy'
    : flags.policyConsulKey
      ? '--policy-consul-key'
      : undefined;
  if (policyFlag && !mtls) {
    throw new SecurityFlagError(
      `${policyFlag}: needs --mtls on (callers are identified by their certificates)`,
    );
  }
  // A missing policy file is waited for (it may be mounted later); a directory never loads.
  const folder = flags.policy ? directoryProblem('--policy', flags.policy) : undefined;
  if (folder) throw new SecurityFlagError(folder);
  if (flags.ca === 'consul-connect' && !mtls) {
    throw new SecurityFlagError(
      '--ca consul-connect: needs --mtls on (the Connect CA only issues mTLS certificates)',
    );
  }
  if (flags.ca === 'consul-connect' && flags.trustDomain !== undefined) {
    throw new SecurityFlagError(
      `--trust-domain: ${JSON.stringify(flags.trustDomain)} does not apply with --ca consul-connect (the trust domain is Consul's)`,
    );
  }
  const consulConnect = flags.ca === 'consul-connect' ? consulClient(flags) : undefined;
  pairedFlags('--xds-tls-cert', flags.xdsTlsCert, '--xds-tls-key', flags.xdsTlsKey);
  pairedFlags('--admin-tls-cert', flags.adminTlsCert, '--admin-tls-key', flags.adminTlsKey);
  const xdsTls = flags.xdsTlsCert ? xdsTlsFiles(flags.xdsTlsCert, flags.xdsTlsKey!) : undefined;
  const adminTls = flags.adminTlsCert
    ? adminTlsFiles(flags.adminTlsCert, flags.adminTlsKey!)
    : undefined;
  if (flags.auth === 'none') {
    logger.warn(
      "--auth none: any client that reaches the xDS port can ask for any node's config and certificate; use only for development",
    );
  }
  if (flags.adminAuth === 'none') {
    logger.warn(
      '--admin-auth none: any client that reaches the admin port can read the whole mesh (/v1/*: proxies, config, events); use only for development',
    );
  }
  // The CA is needed for mTLS certificates and for verifying tokens on either port. Admin TLS
  // alone does not need one, but travels with it: open it then too.
  if (!mtls && flags.auth === 'none' && flags.adminAuth === 'none' && !adminTls) {
    return { xdsTls };
  }
  let ca;
  try {
    ca = await openCa({
      store: stateStoreFromFlags(flags as SecurityFlags & Record<string, unknown>),
      dataDir: flags.dataDir,
      caCertFile: flags.caCert,
      caKeyFile: flags.caKey,
      tokenKeyFile: flags.tokenKey,
      trustDomain: flags.trustDomain,
      consulConnect,
      logger,
    });
  } catch (err) {
    if (err instanceof CaSettingsError) throw new SecurityFlagError(err.message);
    throw err;
  }
  const policy = policyProvider(flags, logger);
  if (policy) {
    await policy.start();
    const error = policy.lastError();
    if (!policy.current() && error) {
      logger.warn({ error: error.message }, 'policy invalid; not ready until it is fixed');
    }
  }
  return {
    security: { ca, mtls, auth: flags.auth, policy, adminAuth: flags.adminAuth, adminTls },
    xdsTls,
  };
}

function pairedFlags(
  certFlag: string,
  cert: string | undefined,
  keyFlag: string,
  key: string | undefined,
): void {
  if (Boolean(cert) === Boolean(key)) return;
  throw new SecurityFlagError(
    cert ? `${keyFlag}: required with ${certFlag}` : `${certFlag}: required with ${keyFlag}`,
  );
}

/** The policy from a file, or from a Consul KV key (reached with the --consul flags). */
function policyProvider(
  flags: SecurityFlags,
  logger: Logger,
): PolicyFile | ConsulPolicy | undefined {
  if (flags.policy) return new PolicyFile(flags.policy, logger);
  if (!flags.policyConsulKey) return undefined;
  return new ConsulPolicy(consulClient(flags), flags.policyConsulKey, logger);
}

/** A Consul client from the --consul flags the sources use. */
function consulClient(flags: SecurityFlags): ConsulClient {
  try {
    return new ConsulClient(consulConnectionFromFlags(flags as unknown as Record<string, unknown>));
  } catch (err) {
    throw new SecurityFlagError((err as Error).message);
  }
}

function readFlagFile(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new SecurityFlagError(
      `${flag}: cannot read ${JSON.stringify(file)}: ${(err as Error).message}`,
    );
  }
}

/** Reads and checks `--xds-tls-cert/--xds-tls-key` before anything listens (either transport). */
function xdsTlsFiles(certFile: string, keyFile: string): XdsTls {
  const cert = readFlagFile('--xds-tls-cert', certFile);
  const key = readFlagFile('--xds-tls-key', keyFile);
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new SecurityFlagError(
      `--xds-tls-cert: cannot serve TLS with ${JSON.stringify(certFile)} and --xds-tls-key ${JSON.stringify(keyFile)} (${(err as Error).message})`,
    );
  }
  return { cert, key };
}

/** Reads and checks `--admin-tls-cert/--admin-tls-key` before anything listens. */
function adminTlsFiles(certFile: string, keyFile: string): { cert: Buffer; key: Buffer } {
  const cert = readFlagFile('--admin-tls-cert', certFile);
  const key = readFlagFile('--admin-tls-key', keyFile);
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    throw new SecurityFlagError(
      `--admin-tls-cert: cannot serve TLS with ${JSON.stringify(certFile)} and --admin-tls-key ${JSON.stringify(keyFile)} (${(err as Error).message})`,
    );
  }
  return { cert, key };
}
