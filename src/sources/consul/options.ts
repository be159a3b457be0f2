// Command line flags for Consul, shared by `lucid-mesh serve --source consul` and
// `lucid-mesh bootstrap --consul-service-id`. Connection flags follow Consul's own CLI
// environment conventions (CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, CONSUL_CACERT, ...), so a shell
// that works with `consul` works with lucid-mesh. Flags stay strings in commander and are checked
// together here: every error names the flag (or its environment variable) and the value.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { Option } from 'commander';
import { FlagError, isBareHttpOrigin } from '../flag-error.js';
import { HEALTH_STATES, type Health } from '../../catalog/model.js';
import {
  LOCAL_RESERVED_CONNECTIONS,
  REMOTE_RESERVED_CONNECTIONS,
  catalogConnectionsNeeded,
} from './budget.js';
import type { ConsulConnection } from './client.js';
import type { TokenBucket } from './watch.js';

export const DEFAULT_CONSUL_ADDR = '127.0.0.1:8500';
/** Consul's blocking-query default is 5 min; a shorter wait notices a dead peer sooner. */
export const DEFAULT_WAIT_MS = 60_000;
/** Consul caps `wait` at 10 minutes. */
export const MAX_WAIT_MS = 600_000;
/** Requests per second across all watches (token bucket, burst = one second's worth). */
export const DEFAULT_RATE_LIMIT = 100;
/**
 * TCP connections this instance opens to the Consul agent, at most. Consul refuses clients
 * beyond `http_max_conns_per_client` (default 200) per client IP; 128 leaves room for other
 * clients on the same host (the local agent's own checks, `consul` CLI, the bootstrap command).
 */
export const DEFAULT_MAX_CONNECTIONS = 128;
export const DEFAULT_BACKOFF_MAX_MS = 10_000;
/** How long a newly seen instance without a sidecar waits for its sidecar registration. */
export const DEFAULT_SIDECAR_GRACE_MS = 250;
/**
 * How long, after the agent comes back, health checks it restored but has not run yet keep an
 * instance's last published health (restart-grace.ts). Consul staggers a restored check's
 * first run over its interval, 10 s for a sidecar's TCP check; 15 s covers that and the sync.
 */
export const DEFAULT_RESTART_GRACE_MS = 15_000;

/**
 * How long a remote datacenter's last good instances outlive its reachability (after its last
 * successful read), so that failover does not point at instances nobody can vouch for.
 */
export const DEFAULT_REMOTE_STALE_AFTER_MS = 60_000;
/** Datacenter names: what the catalog accepts as an instance's `datacenter`. */
const DATACENTER_NAME = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})?$/;

/** An unusable flag value; the message names the flag and the value. */
export class ConsulFlagError extends FlagError {
  override readonly name: string = 'ConsulFlagError';
}

/** How to reach Consul: address, ACL token, datacenter, TLS. Used by serve and bootstrap. */
export function consulConnectionCliOptions(): Option[] {
  return [
    new Option(
      '--consul <addr>',
      'Consul HTTP API address: host:port or http(s)://host:port (default: ' +
        `$CONSUL_HOST:$CONSUL_PORT when CONSUL_HOST is set, else ${DEFAULT_CONSUL_ADDR})`,
    ).env('CONSUL_HTTP_ADDR'),
    new Option('--consul-token <token>', 'Consul ACL token (X-Consul-Token)').env(
      'CONSUL_HTTP_TOKEN',
    ),
    new Option('--consul-token-file <file>', 'file holding the Consul ACL token').env(
      'CONSUL_HTTP_TOKEN_FILE',
    ),
    new Option('--consul-dc <datacenter>', "Consul datacenter (default: the agent's own)").env(
      'CONSUL_DATACENTER',
    ),
    new Option(
      '--consul-cacert <file>',
      'PEM CA bundle to verify Consul over https (default: system roots)',
    ).env('CONSUL_CACERT'),
    new Option('--consul-client-cert <file>', 'PEM client certificate for Consul mTLS').env(
      'CONSUL_CLIENT_CERT',
    ),
    new Option('--consul-client-key <file>', 'PEM private key of --consul-client-cert').env(
      'CONSUL_CLIENT_KEY',
    ),
    new Option(
      '--consul-tls-server-name <name>',
      'server name (SNI) to verify the Consul certificate against',
    ).env('CONSUL_TLS_SERVER_NAME'),
    new Option(
      '--consul-http-ssl <bool>',
      'use https for a --consul address without a scheme (true | false)',
    )
      .env('CONSUL_HTTP_SSL')
      .default('false'),
    new Option(
      '--consul-ssl-verify <bool>',
      'verify the Consul server certificate (true | false; false is for testing only)',
    )
      .env('CONSUL_HTTP_SSL_VERIFY')
      .default('true'),
  ];
}

/** Everything `serve --source consul` needs: the connection plus watch tuning. */
export function consulCliOptions(): Option[] {
  return [
    ...consulConnectionCliOptions(),
    new Option(
      '--consul-warning <health>',
      'catalog health of an instance whose worst Consul check is `warning`: passing (serves, ' +
        "like Consul's own xDS), warning (serves, shown as warning) or critical (no traffic)",
    )
      .env('LUCID_CONSUL_WARNING')
      .default('passing'),
    new Option(
      '--consul-default-protocol <protocol>',
      "protocol of a service no registration (Meta.protocol, the sidecar's Proxy.Config.protocol) " +
        "or config entry names: http, or tcp as Consul's own default (L4, any protocol passes)",
    )
      .env('LUCID_CONSUL_DEFAULT_PROTOCOL')
      .default('http'),
    new Option(
      '--consul-wait <duration>',
      'longest a blocking query waits for a change, e.g. 60s or 5m (max 10m); shorter notices a ' +
        'silently dead connection sooner, longer sends fewer requests',
    )
      .env('LUCID_CONSUL_WAIT')
      .default('60s'),
    new Option(
      '--consul-rate-limit <rps>',
      'requests per second to Consul across all watches, at most (token bucket)',
    )
      .env('LUCID_CONSUL_RATE_LIMIT')
      .default(String(DEFAULT_RATE_LIMIT)),
    new Option(
      '--consul-max-connections <n>',
      "TCP connections to the Consul agent, at most; keep it below the agent's " +
        'http_max_conns_per_client (default 200). Services beyond what fits get change-triggered ' +
        'refetches instead of their own blocking query (see docs/consul.md)',
    )
      .env('LUCID_CONSUL_MAX_CONNECTIONS')
      .default(String(DEFAULT_MAX_CONNECTIONS)),
    new Option(
      '--consul-backoff-max <duration>',
      'longest pause between retries while Consul fails (exponential backoff with jitter)',
    )
      .env('LUCID_CONSUL_BACKOFF_MAX')
      .default('10s'),
    new Option(
      '--consul-sidecar-grace <duration>',
      'how long an instance that newly appears without a sidecar waits for its sidecar ' +
        'registration before it is routed to directly (Consul syncs the two separately)',
    )
      .env('LUCID_CONSUL_SIDECAR_GRACE')
      .default('250ms'),
    new Option(
      '--consul-restart-grace <duration>',
      'after the Consul agent comes back (restart, lost connection, no leader): how long an ' +
        'instance keeps its last published health while its checks read critical but have not ' +
        'run yet, or while every instance of its service reads critical at once; 0 turns it off',
    )
      .env('LUCID_CONSUL_RESTART_GRACE')
      .default('15s'),
    new Option(
      '--consul-stale <bool>',
      'allow stale reads: any Consul server answers, not only the leader (true | false)',
    )
      .env('LUCID_CONSUL_STALE')
      .default('false'),
    new Option(
      '--consul-datacenters <list>',
      'remote Consul datacenters to watch as well, comma-separated (e.g. dc2,dc3), read through ' +
        'the local agent with ?dc= (WAN federation); the local datacenter is always watched',
    ).env('CONSUL_DATACENTERS'),
    new Option(
      '--remote-stale-after <duration>',
      "how long a remote datacenter's last good instances are kept while it cannot be read, " +
        'counted from its last successful read; then they are dropped until it is read again',
    )
      .env('LUCID_REMOTE_STALE_AFTER')
      .default('60s'),
  ];
}

/** Options of the ConsulSource (typed, validated). */
export interface ConsulSourceOptions {
  readonly connection: ConsulConnection;
  /** Catalog health for Consul's `warning`. Default passing. */
  readonly warningAs?: Health;
  /** Protocol of a service no registration names one for. Default http (Consul's is tcp). */
  readonly defaultProtocol?: 'http' | 'tcp';
  /** Blocking query `wait`, ms. Default 60 s. */
  readonly waitMs?: number;
  /** Requests per second across all watches. Default 100. */
  readonly rateLimit?: number;
  /** TCP connections to Consul, at most. Default 128 (minimum 4). */
  readonly maxConnections?: number;
  /**
   * Of `maxConnections`, how many other watches of this process hold (the traffic config
   * entries: CONFIG_ENTRY_CONNECTIONS). The catalog keeps to the rest. Default 0.
   */
  readonly reservedConnections?: number;
  /** Rate limiter shared with those other watches (default: the source's own, `rateLimit`). */
  readonly sharedLimiter?: TokenBucket;
  /** Longest retry pause, ms. Default 10 s. */
  readonly backoffMaxMs?: number;
  /** First retry pause, ms. Default 250 ms. */
  readonly backoffMinMs?: number;
  /** How long a rebuild waits for newly listed services' first read, ms. Default 2 s. */
  readonly settleMs?: number;
  /**
   * How long an instance that newly appears without a sidecar is held back in case its
   * sidecar registration is still on its way (Consul syncs them separately), ms. Default 250.
   */
  readonly sidecarGraceMs?: number;
  /**
   * After the agent comes back: how long restored, not-yet-run critical checks (and a whole
   * service turning critical at once) keep instances at their published health, ms. Default
   * 15 s; 0 turns it off. See restart-grace.ts.
   */
  readonly restartGraceMs?: number;
  /**
   * Remote datacenters watched besides the local one (through the local agent, `?dc=`), in
   * this order. The local one (connection.datacenter, else the agent's) is left out if listed.
   */
  readonly remoteDatacenters?: readonly string[];
  /**
   * How long a remote datacenter that cannot be read keeps its last good instances, counted
   * from its last successful read, ms. Default 60 s.
   */
  readonly remoteStaleAfterMs?: number;
}

const str = (flags: Record<string, unknown>, key: string): string | undefined => {
  const v = flags[key];
  if (v === undefined || v === null || v === '') return undefined;
  return String(v);
};

/** "250ms", "5s", "1m30s", "0" -> milliseconds. */
export function parseDuration(flag: string, value: string, minMs: number, maxMs: number): number {
  const text = value.trim();
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let ms = 0;
  let ok = text === '0';
  if (!ok) {
    const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
    let m: RegExpExecArray | null;
    let end = 0;
    while ((m = re.exec(text)) !== null) {
      ms += Number(m[1]) * units[m[2]!]!;
      end = re.lastIndex;
    }
    ok = end > 0 && end === text.length;
  }
  if (!ok || ms < minMs || ms > maxMs) {
    throw new ConsulFlagError(
      flag,
      `expected a duration ${fmt(minMs)}-${fmt(maxMs)} like 500ms, 30s or 5m, got ${JSON.stringify(value)}`,
    );
  }
  return Math.round(ms);
}

function fmt(ms: number): string {
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0 && ms > 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

function parseBool(flag: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  const v = value.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(v)) return true;
  if (['false', '0', 'no', 'off'].includes(v)) return false;
  throw new ConsulFlagError(flag, `expected true or false, got ${JSON.stringify(value)}`);
}

function parseIntIn(flag: string, value: string | undefined, min: number, max: number, d: number) {
  if (value === undefined) return d;
  const n = Number(value.trim());
  if (!/^\d+$/.test(value.trim()) || n < min || n > max) {
    throw new ConsulFlagError(
      flag,
      `expected an integer ${min}-${max}, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

function readPem(flag: string, file: string | undefined): string | undefined {
  if (file === undefined) return undefined;
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new ConsulFlagError(flag, `cannot read ${JSON.stringify(file)}: ${e.code ?? e.message}`);
  }
}

/**
 * Parses a Consul address ("host", "host:port", "[v6]:port", "http(s)://host:port") into
 * scheme, host and port. Without a scheme, `https` decides; without a port, 8500.
 */
export function parseConsulAddress(
  flag: string,
  value: string,
  https: boolean,
): { secure: boolean; host: string; port: number } {
  const shown = JSON.stringify(value);
  const raw = value.trim();
  if (/^unix:/i.test(raw)) {
    throw new ConsulFlagError(flag, `unix sockets are not supported; use host:port, got ${shown}`);
  }
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw);
  let url: URL;
  try {
    url = new URL(hasScheme ? raw : `${https ? 'https' : 'http'}://${raw}`);
  } catch {
    throw new ConsulFlagError(flag, `expected host:port or http(s)://host:port, got ${shown}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConsulFlagError(flag, `expected an http:// or https:// address, got ${shown}`);
  }
  if (!isBareHttpOrigin(url)) {
    throw new ConsulFlagError(flag, `expected host:port or http(s)://host:port only, got ${shown}`);
  }
  const port = url.port === '' ? 8500 : Number(url.port);
  if (port < 1) throw new ConsulFlagError(flag, `expected a port 1-65535, got ${shown}`);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  if (isIP(host) === 0 && !/^[A-Za-z0-9.-]+$/.test(host)) {
    throw new ConsulFlagError(flag, `expected a hostname or IP address, got ${shown}`);
  }
  return { secure: url.protocol === 'https:', host, port };
}

/**
 * The connection settings from flags (commander camelCase keys: consul, consulToken, ...).
 * Without --consul/CONSUL_HTTP_ADDR, the seeds' CONSUL_HOST (+ CONSUL_PORT) is used.
 */
export function consulConnectionFromFlags(
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): ConsulConnection {
  const https = parseBool('--consul-http-ssl', str(flags, 'consulHttpSsl'), false);
  let addrFlag = '--consul';
  let addr = str(flags, 'consul');
  if (addr === undefined && env.CONSUL_HOST) {
    addrFlag = 'CONSUL_HOST';
    const port = env.CONSUL_PORT?.trim();
    if (port !== undefined && port !== '' && !/^\d{1,5}$/.test(port)) {
      throw new ConsulFlagError(
        'CONSUL_PORT',
        `expected a port 1-65535, got ${JSON.stringify(port)}`,
      );
    }
    const host = env.CONSUL_HOST.trim();
    const hostPart = isIP(host) === 6 ? `[${host}]` : host;
    addr = port ? `${hostPart}:${port}` : hostPart;
  }
  const { secure, host, port } = parseConsulAddress(addrFlag, addr ?? DEFAULT_CONSUL_ADDR, https);

  let token = str(flags, 'consulToken');
  const tokenFile = str(flags, 'consulTokenFile');
  if (token === undefined && tokenFile !== undefined) {
    token = readPem('--consul-token-file', tokenFile)?.trim();
    if (!token)
      throw new ConsulFlagError('--consul-token-file', `${JSON.stringify(tokenFile)} is empty`);
  }
  const datacenter = str(flags, 'consulDc');
  if (datacenter !== undefined && !/^[A-Za-z0-9_.-]+$/.test(datacenter)) {
    throw new ConsulFlagError(
      '--consul-dc',
      `expected a datacenter name, got ${JSON.stringify(datacenter)}`,
    );
  }
  const ca = readPem('--consul-cacert', str(flags, 'consulCacert'));
  const cert = readPem('--consul-client-cert', str(flags, 'consulClientCert'));
  const key = readPem('--consul-client-key', str(flags, 'consulClientKey'));
  if ((cert === undefined) !== (key === undefined)) {
    throw new ConsulFlagError(
      cert === undefined ? '--consul-client-cert' : '--consul-client-key',
      'required together with ' +
        (cert === undefined ? '--consul-client-key' : '--consul-client-cert'),
    );
  }
  const serverName = str(flags, 'consulTlsServerName');
  const verify = parseBool('--consul-ssl-verify', str(flags, 'consulSslVerify'), true);
  if (!secure && (ca || cert || serverName)) {
    const which = ca
      ? '--consul-cacert'
      : cert
        ? '--consul-client-cert'
        : '--consul-tls-server-name';
    throw new ConsulFlagError(
      which,
      `TLS settings need an https Consul address (https://… or --consul-http-ssl true), got http://${host}:${port}`,
    );
  }
  return {
    secure,
    host,
    port,
    ...(token !== undefined ? { token } : {}),
    ...(datacenter !== undefined ? { datacenter } : {}),
    ...(secure
      ? {
          tls: {
            ...(ca !== undefined ? { ca } : {}),
            ...(cert !== undefined ? { cert, key } : {}),
            ...(serverName !== undefined ? { serverName } : {}),
            rejectUnauthorized: verify,
          },
        }
      : {}),
    stale: parseBool('--consul-stale', str(flags, 'consulStale'), false),
  };
}

/** Validated ConsulSource options from flags. */
export function consulSourceOptionsFromFlags(
  flags: Record<string, unknown>,
  env: NodeJS.ProcessEnv = process.env,
): ConsulSourceOptions {
  const warning = str(flags, 'consulWarning') ?? 'passing';
  if (!(HEALTH_STATES as readonly string[]).includes(warning)) {
    throw new ConsulFlagError(
      '--consul-warning',
      `expected one of ${HEALTH_STATES.join(' | ')}, got ${JSON.stringify(warning)}`,
    );
  }
  const defaultProtocol = str(flags, 'consulDefaultProtocol') ?? 'http';
  if (defaultProtocol !== 'http' && defaultProtocol !== 'tcp') {
    throw new ConsulFlagError(
      '--consul-default-protocol',
      `expected http | tcp, got ${JSON.stringify(defaultProtocol)}`,
    );
  }
  const rate = str(flags, 'consulRateLimit');
  const rateLimit = rate === undefined ? DEFAULT_RATE_LIMIT : Number(rate.trim());
  if (
    rate !== undefined &&
    (!/^\d+(\.\d+)?$/.test(rate.trim()) || rateLimit < 1 || rateLimit > 10_000)
  ) {
    throw new ConsulFlagError(
      '--consul-rate-limit',
      `expected requests per second 1-10000, got ${JSON.stringify(rate)}`,
    );
  }
  const connection = consulConnectionFromFlags(flags, env);
  const remoteDatacenters = parseDatacenters(str(flags, 'consulDatacenters')).filter(
    (dc) => dc !== connection.datacenter,
  );
  const maxConnections = parseIntIn(
    '--consul-max-connections',
    str(flags, 'consulMaxConnections'),
    4,
    10_000,
    DEFAULT_MAX_CONNECTIONS,
  );
  const least = catalogConnectionsNeeded(remoteDatacenters.length);
  if (remoteDatacenters.length > 0 && maxConnections < least) {
    throw new ConsulFlagError(
      '--consul-max-connections',
      `expected at least ${least} with --consul-datacenters ${remoteDatacenters.join(',')} ` +
        `(${LOCAL_RESERVED_CONNECTIONS} local list, trigger and refetch connections and 1 service ` +
        `watch, ${REMOTE_RESERVED_CONNECTIONS} per remote datacenter), got ${JSON.stringify(String(maxConnections))}`,
    );
  }
  return {
    connection,
    warningAs: warning as Health,
    defaultProtocol,
    waitMs: parseDuration('--consul-wait', str(flags, 'consulWait') ?? '60s', 1000, MAX_WAIT_MS),
    rateLimit,
    maxConnections,
    backoffMaxMs: parseDuration(
      '--consul-backoff-max',
      str(flags, 'consulBackoffMax') ?? '10s',
      100,
      600_000,
    ),
    sidecarGraceMs: parseDuration(
      '--consul-sidecar-grace',
      str(flags, 'consulSidecarGrace') ?? '250ms',
      0,
      60_000,
    ),
    restartGraceMs: parseDuration(
      '--consul-restart-grace',
      str(flags, 'consulRestartGrace') ?? '15s',
      0,
      600_000,
    ),
    ...(remoteDatacenters.length > 0 ? { remoteDatacenters } : {}),
    remoteStaleAfterMs: parseDuration(
      '--remote-stale-after',
      str(flags, 'remoteStaleAfter') ?? '60s',
      1000,
      3_600_000,
    ),
  };
}

/** "dc2, dc3" -> ["dc2", "dc3"]: names checked, duplicates dropped, order kept. */
function parseDatacenters(value: string | undefined): string[] {
  if (value === undefined) return [];
  const names: string[] = [];
  for (const raw of value.split(',')) {
    const name = raw.trim();
    if (name === '') continue;
    if (!DATACENTER_NAME.test(name)) {
      throw new ConsulFlagError(
        '--consul-datacenters',
        `expected datacenter names (letters, digits, . _ -) separated by commas, got ${JSON.stringify(name)} in ${JSON.stringify(value)}`,
      );
    }
    if (!names.includes(name)) names.push(name);
  }
  return names;
}
