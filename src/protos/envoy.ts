// The Envoy API types, loaded from the descriptor generated at setup (scripts/gen-protos.mjs).
// Everything that turns a resource object into bytes, or bytes back into JSON, goes through here.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { packageRoot } from '../package-root.js';
import { lazyRootFromJSON } from './lazy-root.js';
import { installWrappers } from './wrappers.js';

installWrappers();

const descriptorPath = join(packageRoot(import.meta.url), 'gen', 'envoy-protos.json');

function loadRoot(): protobuf.Root {
  let json: string;
  try {
    json = readFileSync(descriptorPath, 'utf8');
  } catch {
    throw new Error(
      `Envoy proto descriptor missing at ${descriptorPath}: run \`npm ci\` (or \`npm run build\`) to generate it`,
    );
  }
  // Messages are built on first use: most of the descriptor is never encoded (issue 16).
  return lazyRootFromJSON(JSON.parse(json) as protobuf.INamespace);
}

export const root = loadRoot();

export const TYPE_PREFIX = 'type.googleapis.com/';

/** The resource kinds lucid-mesh serves, in make-before-break order for additions. */
export const RESOURCE_KINDS = [
  'clusters',
  'endpoints',
  'listeners',
  'routes',
  'virtualHosts',
  'secrets',
] as const;
export type ResourceKind = (typeof RESOURCE_KINDS)[number];

export const TYPE_URLS: Record<ResourceKind, string> = {
  clusters: `${TYPE_PREFIX}envoy.config.cluster.v3.Cluster`,
  endpoints: `${TYPE_PREFIX}envoy.config.endpoint.v3.ClusterLoadAssignment`,
  listeners: `${TYPE_PREFIX}envoy.config.listener.v3.Listener`,
  routes: `${TYPE_PREFIX}envoy.config.route.v3.RouteConfiguration`,
  // VHDS (delta only): the outbound route configuration's virtual hosts (snapshot/vhds.ts).
  virtualHosts: `${TYPE_PREFIX}envoy.config.route.v3.VirtualHost`,
  secrets: `${TYPE_PREFIX}envoy.extensions.transport_sockets.tls.v3.Secret`,
};

const KIND_BY_TYPE_URL = new Map<string, ResourceKind>(
  RESOURCE_KINDS.map((k) => [TYPE_URLS[k], k] as const),
);

export function kindOfTypeUrl(typeUrl: string): ResourceKind | undefined {
  return KIND_BY_TYPE_URL.get(typeUrl);
}

/** Types whose SotW subscriptions may be wildcard (empty names = everything). */
export function isWildcardKind(kind: ResourceKind): boolean {
  // Envoy subscribes to VHDS without names (every virtual host of its route configuration).
  return kind === 'clusters' || kind === 'listeners' || kind === 'virtualHosts';
}

const typeCache = new Map<string, protobuf.Type>();
export function messageType(typeUrlOrName: string): protobuf.Type {
  const name = typeUrlOrName.startsWith(TYPE_PREFIX)
    ? typeUrlOrName.slice(TYPE_PREFIX.length)
    : typeUrlOrName;
  let t = typeCache.get(name);
  if (!t) {
    t = root.lookupType(name);
    typeCache.set(name, t);
  }
  return t;
}

/**
 * Encodes a resource given in Envoy's JSON shape (camelCase fields, "@type" inside Any,
 * durations as "1s"). Throws naming the resource and the invalid field.
 */
export function encodeMessage(typeUrl: string, object: object, what = ''): Uint8Array {
  const type = messageType(typeUrl);
  let message: protobuf.Message;
  try {
    message = type.fromObject(object as { [k: string]: unknown });
  } catch (err) {
    throw new Error(`cannot encode ${type.name} ${what}: ${(err as Error).message}`);
  }
  const invalid = type.verify(message);
  if (invalid) throw new Error(`cannot encode ${type.name} ${what}: ${invalid}`);
  return type.encode(message).finish();
}

export const JSON_OPTIONS: protobuf.IConversionOptions = {
  json: true,
  enums: String,
  longs: String,
  bytes: String,
  defaults: false,
};

/** Decodes bytes to Envoy's JSON shape (Any unpacked with "@type"). */
export function decodeMessage(typeUrl: string, bytes: Uint8Array): Record<string, unknown> {
  const type = messageType(typeUrl);
  return type.toObject(type.decode(bytes), JSON_OPTIONS) as Record<string, unknown>;
}
