// Command line flags for etcd, shared by `lucid-mesh serve --source etcd` and
// `lucid-mesh register` / `deregister`. The flags stay strings in commander; they are checked
// together here, so every error names the flag (or its environment variable) and the value.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { Option } from 'commander';
import { FlagError, isBareHttpOrigin } from '../flag-error.js';
import type { Logger } from '../../telemetry/logger.js';
import type { DiscoverySource } from '../source.js';
import {
  DEFAULT_ETCD_ENDPOINT,
  type EtcdConnectionOptions,
  type EtcdTlsOptions,
} from './client.js';
import { EtcdSource } from './etcd-source.js';
import { DEFAULT_ETCD_PREFIX, normalizePrefix } from './layout.js';

/** A flag value that cannot be used; the message names the flag and the value. */
export class EtcdFlagError extends FlagError {
  override readonly name: string = 'EtcdFlagError';
}

/** The commander options: `--etcd`, `--etcd-prefix`, TLS and auth, each with an env variable. */
export function etcdCliOptions(): Option[] {
  return [
    new Option(
      '--etcd <endpoints>',
      'etcd client URLs, comma-separated (http://host:port or https://host:port)',
    )
      .env('ETCD_ENDPOINTS')
      .default(DEFAULT_ETCD_ENDPOINT),
    new Option('--etcd-prefix <prefix>', 'key prefix; services live under <prefix>services/')
      .env('ETCD_PREFIX')
      .default(DEFAULT_ETCD_PREFIX),
    new Option(
      '--etcd-cacert <file>',
      'PEM CA bundle for https endpoints (default: system roots)',
    ).env('ETCD_CACERT'),
    new Option('--etcd-cert <file>', 'PEM client certificate, if etcd requires one').env(
      'ETCD_CERT',
    ),
    new Option('--etcd-key <file>', 'PEM private key of --etcd-cert').env('ETCD_KEY'),
    new Option('--etcd-user <name>', 'etcd user name (etcd authentication)').env('ETCD_USER'),
    new Option('--etcd-password <password>', 'password of --etcd-user').env('ETCD_PASSWORD'),
  ];
}

export interface EtcdFlags {
  readonly connection: EtcdConnectionOptions;
  readonly prefix: string;
}

function str(flags: Record<string, unknown>, name: string): string | undefined {
  const v = flags[name];
  if (v === undefined || v === null) return undefined;
  return String(v);
}

/** Parses "http://a:2379,https://b" into URLs with an explicit port (2379 when absent). */
export function parseEndpoints(value: string, flag = '--etcd'): string[] {
  const shown = JSON.stringify(value);
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (items.length === 0) {
    throw new EtcdFlagError(
      flag,
      `expected one or more etcd URLs (http://host:port), got ${shown}`,
    );
  }
  const endpoints = items.map((item) => {
    const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(item) ? item : `http://${item}`;
    let url: URL;
    try {
      url = new URL(withScheme);
    } catch {
      throw new EtcdFlagError(
        flag,
        `expected an etcd URL like http://127.0.0.1:2379, got ${JSON.stringify(item)}`,
      );
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new EtcdFlagError(
        flag,
        `expected an http:// or https:// URL, got ${JSON.stringify(item)}`,
      );
    }
    if (!isBareHttpOrigin(url)) {
      throw new EtcdFlagError(
        flag,
        `expected scheme://host:port only, got ${JSON.stringify(item)}`,
      );
    }
    return `${url.protocol}//${url.hostname}:${url.port || '2379'}`;
  });
  const secure = endpoints.filter((e) => e.startsWith('https:')).length;
  if (secure > 0 && secure < endpoints.length) {
    throw new EtcdFlagError(flag, `all endpoints must be http:// or all https://, got ${shown}`);
  }
  return endpoints;
}

function readPem(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new EtcdFlagError(
      flag,
      `cannot read ${JSON.stringify(file)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
    );
  }
}

/**
 * The gRPC client loads these files when it is created and throws out of it (a stack trace, not
 * a flag error) when a certificate does not parse or the key is not the certificate's; a CA file
 * without a certificate only fails later, as 'unable to verify the first certificate'.
 */
function checkTlsFiles(
  tls: EtcdTlsOptions,
  files: { cacert?: string; cert?: string; key?: string },
): void {
  if (tls.ca) {
    try {
      new X509Certificate(tls.ca);
    } catch (err) {
      throw new EtcdFlagError(
        '--etcd-cacert',
        `expected a PEM CA certificate in ${JSON.stringify(files.cacert)} (${(err as Error).message})`,
      );
    }
  }
  if (tls.cert && tls.key) {
    try {
      createSecureContext({ cert: tls.cert, key: tls.key });
    } catch (err) {
      throw new EtcdFlagError(
        '--etcd-cert',
        `cannot use ${JSON.stringify(files.cert)} with --etcd-key ${JSON.stringify(files.key)} (${(err as Error).message})`,
      );
    }
  }
}

/**
 * Validates the etcd flags (as commander hands them over: etcd, etcdPrefix, etcdCacert, ...).
 * @throws EtcdFlagError naming the flag and the value.
 */
export function etcdFlags(flags: Record<string, unknown>): EtcdFlags {
  const endpoints = parseEndpoints(str(flags, 'etcd') ?? DEFAULT_ETCD_ENDPOINT);

  const prefix = str(flags, 'etcdPrefix') ?? DEFAULT_ETCD_PREFIX;
  if (prefix.trim() === '' || /\s/.test(prefix)) {
    throw new EtcdFlagError(
      '--etcd-prefix',
      `expected a key prefix without spaces, e.g. /lucid-mesh/, got ${JSON.stringify(prefix)}`,
    );
  }

  const cacert = str(flags, 'etcdCacert');
  const cert = str(flags, 'etcdCert');
  const key = str(flags, 'etcdKey');
  if ((cert === undefined) !== (key === undefined)) {
    const [given, missing] =
      cert === undefined ? ['--etcd-key', '--etcd-cert'] : ['--etcd-cert', '--etcd-key'];
    throw new EtcdFlagError(given, `needs ${missing} as well`);
  }
  let tls: EtcdTlsOptions | undefined;
  if (cacert !== undefined || cert !== undefined) {
    if (!endpoints.every((e) => e.startsWith('https:'))) {
      throw new EtcdFlagError(
        cacert !== undefined ? '--etcd-cacert' : '--etcd-cert',
        `TLS files need https:// endpoints, got --etcd ${JSON.stringify(endpoints.join(','))}`,
      );
    }
    tls = {
      ...(cacert !== undefined ? { ca: readPem('--etcd-cacert', cacert) } : {}),
      ...(cert !== undefined ? { cert: readPem('--etcd-cert', cert) } : {}),
      ...(key !== undefined ? { key: readPem('--etcd-key', key) } : {}),
    };
    checkTlsFiles(tls, { cacert, cert, key });
  }

  const user = str(flags, 'etcdUser');
  const password = str(flags, 'etcdPassword');
  if (password !== undefined && user === undefined) {
    throw new EtcdFlagError('--etcd-password', 'needs --etcd-user as well');
  }
  if (user !== undefined && user.trim() === '') {
    throw new EtcdFlagError('--etcd-user', `expected a user name, got ${JSON.stringify(user)}`);
  }

  return {
    connection: {
      endpoints,
      ...(tls ? { tls } : {}),
      ...(user !== undefined ? { auth: { username: user, password: password ?? '' } } : {}),
    },
    prefix: normalizePrefix(prefix),
  };
}

/**
 * The discovery source for `lucid-mesh serve --source etcd`.
 * @throws EtcdFlagError naming the flag and the value.
 */
export function etcdSourceFromFlags(
  flags: Record<string, unknown>,
  logger: Logger,
): DiscoverySource {
  const { connection, prefix } = etcdFlags(flags);
  return new EtcdSource({ ...connection, prefix }, logger);
}
