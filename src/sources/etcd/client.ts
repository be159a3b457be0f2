// One way to build an etcd client (the `etcd3` package), shared by the etcd source and the
// register/deregister commands: endpoints, optional TLS and user/password auth, a deadline on
// every unary call, gRPC keepalive (a hung etcd is noticed, not just a closed connection), and
// none of etcd3's own retry or circuit-breaker policies. Callers retry on their own terms: the
// source re-lists with its own backoff, a one-shot command fails fast with a clear message. With
// etcd3's defaults a restarted etcd could stay "broken" for up to 5 s after it is back.
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import type { Etcd3, IOptions } from 'etcd3';

/**
 * The etcd3 package, loaded on first use: importing it parses etcd's .proto files with its own
 * protobufjs (~3 MiB of heap, ~8 MiB of RSS), which a control plane without an etcd source or
 * state never needs (bench --workload idle, issue 16).
 */
export function loadEtcd3(): typeof import('etcd3') {
  return createRequire(import.meta.url)('etcd3') as typeof import('etcd3');
}

export interface EtcdTlsOptions {
  /** PEM CA bundle that signed etcd's server certificate (default: the system roots). */
  readonly ca?: Buffer;
  /** PEM client certificate and key, when etcd requires client certificates. */
  readonly cert?: Buffer;
  readonly key?: Buffer;
}

export interface EtcdConnectionOptions {
  /** Client URLs, e.g. ["http://127.0.0.1:2379"]; all http or all https. */
  readonly endpoints: readonly string[];
  readonly tls?: EtcdTlsOptions;
  readonly auth?: { readonly username: string; readonly password: string };
  /** Deadline of each unary call (range, put, lease grant...). Default 5000 ms. */
  readonly callTimeoutMs?: number;
}

export const DEFAULT_ETCD_ENDPOINT = 'http://127.0.0.1:2379';
export const DEFAULT_CALL_TIMEOUT_MS = 5_000;

type Policy = NonNullable<NonNullable<IOptions['faultHandling']>['global']>;

/**
 * A cockatiel-shaped policy that runs a call once per endpoint at most: a call that could not
 * reach its endpoint (etcd3's recoverable errors: UNAVAILABLE and the like) goes to the next one
 * (etcd3 hands each attempt the next endpoint of one shuffled order), at once. With one endpoint
 * it runs once. Without it, a one-shot command (register, deregister) against a cluster with one
 * member down failed whenever its call happened to pick that member.
 */
function eachEndpointOnce(endpoints: number): Policy {
  const { isRecoverableError } = loadEtcd3();
  const noEvent = () => ({ dispose: () => undefined });
  const policy = {
    onSuccess: noEvent,
    onFailure: noEvent,
    execute: async <T>(
      fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T,
      signal?: AbortSignal,
    ): Promise<T> => {
      const context = { signal: signal ?? new AbortController().signal };
      for (let attempt = 1; ; attempt++) {
        try {
          return await fn(context);
        } catch (err) {
          if (attempt >= endpoints || !(err instanceof Error) || !isRecoverableError(err)) {
            throw err;
          }
        }
      }
    },
  };
  return policy as unknown as Policy;
}

let ipServernameQuiet = false;

/**
 * grpc-js gives tls.connect the host as TLS server name even when it is an IP address
 * (https://10.0.0.5:2379); Node then sends no SNI, as it should, but prints DEP0123 ('Setting the
 * TLS ServerName to an IP address is not permitted by RFC 6066') on stderr: two lines in the
 * middle of register's output or serve's JSON log that the operator can do nothing about.
 */
function quietIpServernameWarning(endpoints: readonly string[]): void {
  if (ipServernameQuiet) return;
  const ipHost = endpoints.some((e) => {
    const url = new URL(e);
    return url.protocol === 'https:' && isIP(url.hostname.replace(/^\[|\]$/g, '')) !== 0;
  });
  if (!ipHost) return;
  ipServernameQuiet = true;
  const emitWarning = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((...args: unknown[]) => {
    const [, type, code] = args;
    const codeOf =
      typeof type === 'object' && type !== null ? (type as { code?: string }).code : code;
    if (codeOf === 'DEP0123') return;
    emitWarning(...args);
  }) as typeof process.emitWarning;
}

export function createEtcdClient(opts: EtcdConnectionOptions): Etcd3 {
  const timeout = opts.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  const { tls } = opts;
  quietIpServernameWarning(opts.endpoints);
  const { Etcd3: Client } = loadEtcd3();
  return new Client({
    hosts: [...opts.endpoints],
    ...(tls && (tls.ca || tls.cert || tls.key)
      ? {
          credentials: {
            // null = the system roots (grpc's createSsl); etcd3's type insists on a Buffer.
            rootCertificate: (tls.ca ?? null) as Buffer,
            privateKey: tls.key,
            certChain: tls.cert,
          },
        }
      : {}),
    ...(opts.auth
      ? {
          auth: {
            username: opts.auth.username,
            password: opts.auth.password,
            callOptions: () => ({ deadline: Date.now() + timeout }),
          },
        }
      : {}),
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + timeout }),
    // Per host: the call once, as is (one endpoint: one attempt).
    faultHandling: {
      global: eachEndpointOnce(opts.endpoints.length),
      host: () => eachEndpointOnce(1),
    },
    grpcOptions: {
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 2_000,
    },
  });
}

/**
 * A one-line description of an etcd client error, e.g.
 * "14 UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED 127.0.0.1:2379".
 */
export function describeEtcdError(err: unknown, endpoints: readonly string[] = []): string {
  if (!(err instanceof Error)) return String(err);
  const tls = endpoints.some((e) => e.startsWith('https:'));
  const message = withTlsHint(
    tls,
    err.message
      .replace(/\s+Please report this error at \S+$/, '')
      .replace(/\.?\s*Resolution note:\s*$/, '')
      .replace(/Last error: Error: /, 'Last error: ')
      // grpc-js appends the time of a failed connection attempt (after OpenSSL's newline).
      .replace(/\s*\(\d{4}-\d\d-\d\dT[\d:.]+Z\)/g, '')
      // OpenSSL's 'HEX:error:HEX:SSL routines:FUNC:REASON:../deps/openssl/...c:LINE:' prefix.
      .replace(/[0-9A-F]{8,}:error:[0-9A-F]+:SSL routines:[^:]*:([^:]+):\S*?:\d+:/g, 'TLS: $1 ')
      .replace(/\s+/g, ' ')
      .trim(),
  );
  // gRPC status errors already say what they are ("14 UNAVAILABLE: ..."); others get a name.
  const name = err.constructor?.name;
  if (/^\d+ [A-Z_]+:/.test(message) || !name || name === 'Error' || message.includes(name)) {
    return message;
  }
  return `${name}: ${message}`;
}

/** A TLS or authentication failure's likely cause, named by the flag that fixes it. */
function withTlsHint(tls: boolean, message: string): string {
  if (/etcdserver: user name is empty/.test(message)) {
    return `${message} (etcd has authentication enabled: --etcd-user, --etcd-password)`;
  }
  if (/etcdserver: permission denied/.test(message)) {
    return `${message} (the --etcd-user's roles do not allow it; docs/etcd.md: what each command needs)`;
  }
  if (/alert (bad certificate|certificate required|unknown ca)/.test(message)) {
    return `${message} (etcd refused this client's certificate, or it needs one: --etcd-cert, --etcd-key)`;
  }
  if (/unable to verify the first certificate|self[- ]signed certificate/.test(message)) {
    return `${message} (etcd's certificate is not signed by a trusted CA: --etcd-cacert)`;
  }
  if (
    /disconnected before secure TLS connection was established|wrong version number/.test(
      message,
    ) ||
    // A plain port resets a TLS hello, sometimes before OpenSSL has read anything back.
    (tls && /No connection established\. Last error: read ECONNRESET/.test(message))
  ) {
    return `${message} (does etcd serve TLS there? http:// for a plain port)`;
  }
  return message;
}
