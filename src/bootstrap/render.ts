// Renders the minimal static Envoy bootstrap for a sidecar: node identity, a local admin
// endpoint and how to reach the control plane over ADS. Everything else arrives over xDS.
//
// The shape lives in sidecar-bootstrap/bootstrap.template.yaml: whole-value placeholders
// ("{{name}}") are replaced with typed values; a placeholder without a value for the chosen
// variant (e.g. dns_lookup_family for an IP literal) drops its key. Comments in the
// template are kept, so the generated file explains itself.
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { isMap, isScalar, parseDocument, Scalar, visit, YAMLMap, type Document } from 'yaml';
import { AUDIENCES } from '../ca/tokens.js';
import type { Locality } from '../catalog/model.js';
import {
  addPrometheusListener,
  parsePrometheusBind,
  type PrometheusBind,
} from './prometheus-listener.js';

export const XDS_MODES = ['sotw', 'delta'] as const;
export type XdsMode = (typeof XDS_MODES)[number];

export const DEFAULT_ADMIN_PORT = 15000;
export const DEFAULT_OUTBOUND_PORT = 15001;
/** The sidecar DNS listener's UDP port (docs/dns.md); the control plane's default too. */
export const DEFAULT_DNS_PORT = 15053;
export const DEFAULT_MODE: XdsMode = 'sotw';

/** What `renderBootstrap` takes (the CLI flags, typed). */
export interface BootstrapOptions {
  /** Envoy node id (--node-id). */
  nodeId: string;
  /** Service this sidecar fronts, a DNS label (--service). */
  service: string;
  /**
   * Control plane address(es), HOST:PORT; IPv6 literals as [addr]:port (--xds, repeatable):
   * one per replica, or one DNS name that resolves to every replica.
   */
  xds: string | readonly string[];
  /** ADS flavour (--mode), default sotw. */
  mode?: XdsMode;
  /** Admin port on 127.0.0.1 (--admin-port), default 15000. */
  adminPort?: number;
  /** Port of the outbound listener the control plane sends (--outbound-port), default 15001. */
  outboundPort?: number;
  /** UDP port of the sidecar's DNS listener (--dns-port), default 15053; 0: none. */
  dnsPort?: number;
  /**
   * --dns-forward (default true): names not in the sidecar's table go to the resolvers of its
   * /etc/resolv.conf; false: answered NXDOMAIN by the sidecar (node.metadata.dns_forward).
   */
  dnsForward?: boolean;
  /** Proxy token (--token): sent as `authorization: Bearer` metadata on the ADS stream. */
  token?: string;
  /** PEM CA bundle the xDS server's certificate must chain to (--xds-ca): ADS over TLS. */
  xdsCaPem?: string;
  /** Where the sidecar runs (--datacenter): node.metadata.datacenter (Envoy's Locality has none). */
  datacenter?: string;
  /** --region: node.locality.region. */
  region?: string;
  /** --zone: node.locality.zone. */
  zone?: string;
  /** --prometheus-bind IP:PORT: a listener serving only /stats/prometheus of the admin. */
  prometheusBind?: string;
}

/** Untrusted input (e.g. raw CLI strings) for `resolveBootstrapOptions`. */
export interface BootstrapInput {
  nodeId?: unknown;
  service?: unknown;
  xds?: unknown;
  mode?: unknown;
  adminPort?: unknown;
  outboundPort?: unknown;
  dnsPort?: unknown;
  dnsForward?: unknown;
  token?: unknown;
  xdsCaPem?: unknown;
  datacenter?: unknown;
  region?: unknown;
  zone?: unknown;
  prometheusBind?: unknown;
}

/** One control plane address, split. */
export interface XdsAddress {
  readonly host: string;
  readonly port: number;
  /** true for an IP literal, false for a hostname (resolved by Envoy: STRICT_DNS). */
  readonly isIp: boolean;
}

/** Validated options with defaults applied and the xds address split. */
export interface ResolvedBootstrapOptions {
  nodeId: string;
  service: string;
  /** The first control plane address (the only one, usually). */
  xdsHost: string;
  xdsPort: number;
  /** true when every address is an IP literal (STATIC cluster), else STRICT_DNS. */
  xdsIsIp: boolean;
  /** Every control plane address given (replicas), in the order given. */
  xdsAddresses: readonly XdsAddress[];
  mode: XdsMode;
  adminPort: number;
  outboundPort: number;
  /** 0: no DNS listener. */
  dnsPort: number;
  /** false: the DNS listener answers names not in its table NXDOMAIN itself (docs/dns.md). */
  dnsForward: boolean;
  token?: string;
  xdsCaPem?: string;
  /** Only the parts given; absent when none is. */
  locality?: Locality;
  /** --prometheus-bind; absent: no scrape listener. */
  prometheusBind?: PrometheusBind;
}

/** Invalid option; `message` names the flag and the offending value. */
export class BootstrapOptionError extends Error {
  constructor(
    readonly flag: string,
    message: string,
  ) {
    super(message);
    this.name = 'BootstrapOptionError';
  }
}

const SERVICE_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const HOSTNAME_LABEL_RE = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
/** Datacenter, region and zone names, as the catalog accepts them (src/catalog/schema.ts). */
const LOCALITY_NAME_RE = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})?$/;

const show = (value: unknown): string =>
  value === undefined ? 'nothing' : (JSON.stringify(value) ?? String(value));

function fail(flag: string, expected: string, value: unknown): never {
  throw new BootstrapOptionError(flag, `${flag}: expected ${expected}, got ${show(value)}`);
}

function requiredString(flag: string, value: unknown): string {
  if (value === undefined || value === null) {
    throw new BootstrapOptionError(flag, `${flag}: required, got nothing`);
  }
  if (typeof value !== 'string') fail(flag, 'a string', value);
  return value;
}

/** on | off (also true | false, as an env var or a program would give them). */
function parseOnOff(flag: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined || value === null || value === '') return fallback;
  if (value === true || value === 'on' || value === 'true') return true;
  if (value === false || value === 'off' || value === 'false') return false;
  fail(flag, 'on | off', value);
}

function parsePort(flag: string, value: unknown, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n =
    typeof value === 'number'
      ? value
      : typeof value === 'string' && /^\d{1,5}$/.test(value.trim())
        ? Number(value.trim())
        : NaN;
  if (!Number.isInteger(n) || n < min || n > 65535) {
    fail(flag, min === 0 ? 'a port 1-65535, or 0 for none' : 'a port 1-65535', value);
  }
  return n;
}

function isHostname(host: string): boolean {
  if (host.length > 253) return false;
  const labels = host.endsWith('.') ? host.slice(0, -1).split('.') : host.split('.');
  // An all-numeric dotted name is a malformed IPv4 address, not a hostname.
  if (labels.every((l) => /^\d+$/.test(l))) return false;
  return labels.every((l) => HOSTNAME_LABEL_RE.test(l));
}

/** Every --xds given: one or more, no address twice. */
function parseXdsList(value: unknown): XdsAddress[] {
  const flag = '--xds';
  const list = Array.isArray(value) ? (value as unknown[]) : [value];
  if (list.length === 0) throw new BootstrapOptionError(flag, `${flag}: required, got nothing`);
  const seen = new Set<string>();
  return list.map((item) => {
    const address = parseXds(item);
    const key = `${address.host.toLowerCase()}:${address.port}`;
    if (seen.has(key)) fail(flag, 'each address once', item);
    seen.add(key);
    return address;
  });
}

function parseXds(value: unknown): XdsAddress {
  const flag = '--xds';
  const raw = requiredString(flag, value);
  const expected = 'HOST:PORT (IPv6 as [ADDR]:PORT)';
  const m = /^\[([^\]]+)\]:([^:]*)$/.exec(raw) ?? /^([^:[\]]*):([^:]*)$/.exec(raw);
  if (!m) fail(flag, expected, raw);
  const host = m[1] ?? '';
  const portText = m[2] ?? '';
  if (host === '' || portText === '') fail(flag, expected, raw);
  const bracketed = raw.startsWith('[');
  const ipVersion = isIP(host);
  if (bracketed && ipVersion !== 6) fail(flag, 'an IPv6 address inside [ ]', raw);
  if (!bracketed && ipVersion === 0 && !isHostname(host)) {
    fail(flag, 'HOST to be an IP address or a DNS hostname', raw);
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535) {
    fail(flag, 'PORT 1-65535 in HOST:PORT', raw);
  }
  return { host, port: Number(portText), isIp: ipVersion !== 0 };
}

/** Validates options, applies defaults. Throws BootstrapOptionError naming flag and value. */
export function resolveBootstrapOptions(input: BootstrapInput): ResolvedBootstrapOptions {
  const nodeId = requiredString('--node-id', input.nodeId);
  // Envoy accepts any id, but whitespace/control characters are always a quoting mistake.
  if (nodeId === '' || /[\s\p{Cc}]/u.test(nodeId)) {
    fail('--node-id', 'a non-empty id without whitespace', nodeId);
  }
  const service = requiredString('--service', input.service);
  if (!SERVICE_RE.test(service)) {
    fail(
      '--service',
      'a DNS label (a-z, 0-9, "-", 1-63 chars, alphanumeric at both ends)',
      service,
    );
  }
  const xdsAddresses = parseXdsList(input.xds);
  const xds = xdsAddresses[0]!;
  const mode = input.mode ?? DEFAULT_MODE;
  if (typeof mode !== 'string' || !(XDS_MODES as readonly string[]).includes(mode)) {
    fail('--mode', XDS_MODES.join(' | '), mode);
  }
  const adminPort = parsePort('--admin-port', input.adminPort, DEFAULT_ADMIN_PORT);
  const outboundPort = parsePort('--outbound-port', input.outboundPort, DEFAULT_OUTBOUND_PORT);
  if (adminPort === outboundPort) {
    fail('--outbound-port', `a port different from --admin-port (${adminPort})`, outboundPort);
  }
  const dnsPort = parsePort('--dns-port', input.dnsPort, DEFAULT_DNS_PORT, 0);
  const dnsForward = parseOnOff('--dns-forward', input.dnsForward, true);
  const token = optionalString('--token', input.token);
  // A JWT is three base64url parts; anything else would be rejected by the server anyway.
  if (token !== undefined && !/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)) {
    fail(
      '--token',
      'a token from `lucid-mesh token issue`',
      token.length > 20 ? `${token.slice(0, 20)}…` : token,
    );
  }
  if (token !== undefined) checkTokenClaims(token, service, Date.now());
  const xdsCaPem = optionalString('--xds-ca', input.xdsCaPem);
  if (xdsCaPem !== undefined && !xdsCaPem.includes('-----BEGIN CERTIFICATE-----')) {
    fail('--xds-ca', 'a PEM file with at least one CERTIFICATE', `${xdsCaPem.slice(0, 30)}…`);
  }
  const locality: { -readonly [K in keyof Locality]: Locality[K] } = {};
  for (const part of ['datacenter', 'region', 'zone'] as const) {
    const flag = `--${part}`;
    const value = optionalString(flag, input[part]);
    if (value === undefined) continue;
    if (!LOCALITY_NAME_RE.test(value)) {
      fail(flag, 'a name (letters, digits, . _ -; up to 63, a letter or digit first)', value);
    }
    locality[part] = value;
  }
  const prometheusBind = parsePrometheusBind(input.prometheusBind, (expected) =>
    fail('--prometheus-bind', expected, input.prometheusBind),
  );
  for (const [flag, port] of [
    ['--admin-port', adminPort],
    ['--outbound-port', outboundPort],
  ] as const) {
    if (prometheusBind?.port === port) {
      fail('--prometheus-bind', `a port different from ${flag} (${port})`, input.prometheusBind);
    }
  }
  return {
    nodeId,
    service,
    xdsHost: xds.host,
    xdsPort: xds.port,
    xdsIsIp: xdsAddresses.every((a) => a.isIp),
    xdsAddresses,
    mode: mode as XdsMode,
    adminPort,
    outboundPort,
    dnsPort,
    dnsForward,
    ...(token !== undefined ? { token } : {}),
    ...(xdsCaPem !== undefined ? { xdsCaPem } : {}),
    ...(Object.keys(locality).length > 0 ? { locality } : {}),
    ...(prometheusBind !== undefined ? { prometheusBind } : {}),
  };
}

/**
 * What the control plane would refuse anyway, said now: a sidecar started with an operator
 * token, another service's token or an expired one only logs UNAUTHENTICATED or
 * PERMISSION_DENIED in Envoy and never gets its config. The claims are read, not verified
 * (the signing key is the server's business).
 */
function checkTokenClaims(token: string, service: string, now: number): void {
  let claims: ReturnType<typeof decodeJwt>;
  try {
    claims = decodeJwt(token);
  } catch {
    fail('--token', 'a token from `lucid-mesh token issue`', `${token.slice(0, 20)}…`);
  }
  const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (audiences.includes(AUDIENCES.operator)) {
    throw new BootstrapOptionError(
      '--token',
      '--token: this is an operator token (for the admin API); a sidecar needs a proxy token ' +
        `(lucid-mesh token issue --service ${service})`,
    );
  }
  if (claims.sub !== undefined && claims.sub !== service) {
    throw new BootstrapOptionError(
      '--token',
      `--token: issued for service ${JSON.stringify(claims.sub)}, not ${JSON.stringify(service)} ` +
        `(lucid-mesh token issue --service ${service})`,
    );
  }
  if (typeof claims.exp === 'number' && claims.exp * 1000 <= now) {
    throw new BootstrapOptionError(
      '--token',
      `--token: expired at ${new Date(claims.exp * 1000).toISOString()} ` +
        `(lucid-mesh token issue --service ${service})`,
    );
  }
}

function optionalString(flag: string, value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  return requiredString(flag, value);
}

import { packageRoot } from '../package-root.js';

export { packageRoot };

export const templatePath = (): string =>
  join(packageRoot(), 'sidecar-bootstrap', 'bootstrap.template.yaml');

let cachedTemplate: string | undefined;
function loadTemplate(): string {
  cachedTemplate ??= readFileSync(templatePath(), 'utf8');
  return cachedTemplate;
}

type Value = string | number | boolean | object | undefined;

/** Placeholder values for one bootstrap; `undefined` drops the key holding the placeholder. */
export function templateValues(o: ResolvedBootstrapOptions): Record<string, Value> {
  return {
    nodeId: o.nodeId,
    service: o.service,
    outboundPort: o.outboundPort,
    dnsPort: o.dnsPort,
    // Written only when off, and only with a DNS listener: bootstraps stay as they were.
    dnsForward: o.dnsForward || o.dnsPort === 0 ? undefined : false,
    adminPort: o.adminPort,
    vhds: o.mode === 'delta' ? true : undefined,
    apiType: o.mode === 'delta' ? 'DELTA_GRPC' : 'GRPC',
    xdsClusterType: o.xdsIsIp ? 'STATIC' : 'STRICT_DNS',
    xdsDnsLookupFamily: o.xdsIsIp ? undefined : 'V4_PREFERRED',
    xdsEndpoints: o.xdsAddresses.map((a) => ({
      endpoint: { address: { socket_address: { address: a.host, port_value: a.port } } },
    })),
    initialMetadata: o.token ? [{ key: 'authorization', value: `Bearer ${o.token}` }] : undefined,
    xdsTransportSocket: o.xdsCaPem
      ? {
          name: 'envoy.transport_sockets.tls',
          typed_config: {
            '@type':
              'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
            ...tlsServerName(o.xdsAddresses),
            common_tls_context: {
              alpn_protocols: ['h2'],
              validation_context: { trusted_ca: { inline_string: o.xdsCaPem } },
            },
          },
        }
      : undefined,
  };
}

/**
 * SNI for ADS over TLS: one hostname is sent as it is; with several, each connection sends
 * the name of the replica it goes to (auto_host_sni: the STRICT_DNS host's own name).
 */
function tlsServerName(addresses: readonly XdsAddress[]): object {
  const names = addresses.filter((a) => !a.isIp);
  if (names.length === 0) return {};
  if (addresses.length === 1) return { sni: names[0]!.host };
  return { auto_host_sni: true };
}

const PLACEHOLDER_RE = /^\{\{\s*([A-Za-z0-9_]+)\s*\}\}$/;

function placeholderName(node: unknown): string | undefined {
  if (!isScalar(node) || typeof node.value !== 'string') return undefined;
  return PLACEHOLDER_RE.exec(node.value)?.[1];
}

/** Fills a template (YAML text) with values. Exported for tests; use renderBootstrap. */
export function fillTemplate(template: string, values: Record<string, Value>): string {
  return fillDocument(template, values).toString({ lineWidth: 0 });
}

/** A double-quoted string scalar: yaml-cpp would read plain y/n/on/123 as bool or number. */
function quoted(value: string): Scalar {
  const node = new Scalar(value);
  node.type = Scalar.QUOTE_DOUBLE;
  return node;
}

/**
 * Where the sidecar runs: `node.locality` (region, zone; Envoy's sub_zone stays unused) and
 * `node.metadata.datacenter` (Envoy's Locality has no datacenter). The control plane reads
 * both (src/xds/node.ts) to order endpoints by locality. Nothing when no part is given.
 */
function addLocality(doc: Document, locality: Locality | undefined): void {
  if (!locality) return;
  const node = doc.get('node', true);
  const metadata = isMap(node) ? node.get('metadata', true) : undefined;
  if (!isMap(node) || !isMap(metadata)) throw new Error('bootstrap template: no node.metadata');
  if (locality.datacenter !== undefined) {
    metadata.set('datacenter', quoted(locality.datacenter));
  }
  if (locality.region === undefined && locality.zone === undefined) return;
  const value = new YAMLMap<string, Scalar>();
  if (locality.region !== undefined) value.set('region', quoted(locality.region));
  if (locality.zone !== undefined) value.set('zone', quoted(locality.zone));
  const key = doc.createNode('locality');
  key.commentBefore =
    ' Where this sidecar runs (--region, --zone; --datacenter is metadata.datacenter):\n' +
    ' the control plane prefers endpoints in the same zone, then region, then datacenter.';
  node.add(doc.createPair(key, value));
}

function fillDocument(template: string, values: Record<string, Value>): Document {
  const doc: Document = parseDocument(template, { prettyErrors: true });
  if (doc.errors.length > 0) throw new Error(`bootstrap template: ${doc.errors[0]?.message}`);
  // Only whole-value placeholders are supported: catch "prefix-{{x}}" in the template.
  visit(doc, {
    Scalar(_key, node) {
      if (typeof node.value === 'string' && node.value.includes('{{') && !placeholderName(node)) {
        throw new Error(`bootstrap template: partial placeholder in ${JSON.stringify(node.value)}`);
      }
    },
  });
  const lookup = (name: string): Value => {
    if (!Object.hasOwn(values, name)) throw new Error(`bootstrap template: unknown {{${name}}}`);
    return values[name];
  };
  const filled = new Set<Scalar>(); // values we inserted: never placeholders, whatever they say
  const typed = (value: string | number | boolean | object, old: Scalar): Scalar => {
    // Structured values (metadata lists, a transport socket) become YAML nodes as they are.
    const next = (typeof value === 'object' ? doc.createNode(value) : new Scalar(value)) as Scalar;
    // Envoy reads YAML with yaml-cpp, which takes plain y/n/on/off/yes/no as booleans and
    // 0x1F as a number; always double-quote strings so a node id "n" stays a string.
    if (typeof value === 'string') next.type = Scalar.QUOTE_DOUBLE;
    next.comment = old.comment;
    next.commentBefore = old.commentBefore;
    filled.add(next);
    return next;
  };
  visit(doc, {
    Pair(_key, pair) {
      const name = placeholderName(pair.value);
      if (name === undefined || filled.has(pair.value as Scalar)) return undefined;
      const value = lookup(name);
      if (value === undefined) return visit.REMOVE; // variant not selected: drop the key
      pair.value = typed(value, pair.value as Scalar);
      return undefined;
    },
    Scalar(_key, node) {
      // Map values were handled above; here only keys and sequence items remain, which
      // have no key to drop, so they need a value.
      const name = placeholderName(node);
      if (name === undefined || filled.has(node)) return undefined;
      const value = lookup(name);
      if (value === undefined) throw new Error(`bootstrap template: {{${name}}} has no value`);
      return typed(value, node);
    },
  });
  return doc;
}

/** The bootstrap YAML for one sidecar. Throws BootstrapOptionError on invalid options. */
export function renderBootstrap(opts: BootstrapOptions): string {
  return renderResolvedBootstrap(resolveBootstrapOptions(opts));
}

/** renderBootstrap for options already checked by resolveBootstrapOptions. */
export function renderResolvedBootstrap(o: ResolvedBootstrapOptions): string {
  const xds = o.xdsAddresses
    .map((a) => `${a.host.includes(':') ? `[${a.host}]` : a.host}:${a.port}`)
    .join(', ');
  const header = [
    `Envoy bootstrap generated by \`lucid-mesh bootstrap\` for node ${JSON.stringify(o.nodeId)}`,
    `(service ${o.service}, ${o.mode} ADS via ${xds}). Everything else arrives over ADS.`,
  ];
  const doc = fillDocument(loadTemplate(), templateValues(o));
  addLocality(doc, o.locality);
  addPrometheusListener(doc, o.prometheusBind, o.adminPort);
  const body = doc.toString({ lineWidth: 0 });
  // Swap the template's own header (its first comment block) for ours.
  const withoutTemplateHeader = body.replace(/^(#[^\n]*\n)+\n?/, '');
  return `${header.map((l) => `# ${l}`).join('\n')}\n\n${withoutTemplateHeader}`;
}
