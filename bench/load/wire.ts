// Just enough protobuf for a load client that must not become the bottleneck: requests are
// hand-encoded (the long resource-name lists of SotW EDS requests are encoded once per change
// of the list, not once per ACK), and responses are read without decoding the resources: only
// the envelope (version, type, nonce), each resource's name, and, where a subscription needs
// it, the one nested field that names a dependency (a cluster's EDS service name, a listener's
// route configuration). Field numbers are those of envoy/service/discovery/v3/discovery.proto
// and friends; `checkFieldNumbers` verifies them against the generated descriptor at start-up.
import protobuf from 'protobufjs';
import { messageType } from '../../src/protos/envoy.js';
import { stringFieldLength, writeStringField } from '../../src/protos/wire.js';

const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;

/** A slice of a buffer, [start, end). */
export interface Span {
  readonly start: number;
  readonly end: number;
}

/**
 * Walks the fields of one message in [start, end) without allocating per field: after each
 * `next()` the current field's number, wire type, value bounds (length-delimited) or varint
 * value are in the cursor's properties.
 */
export class Cursor {
  field = 0;
  wireType = 0;
  /** Length-delimited: where the value is. */
  s = 0;
  e = 0;
  /** Varint value (exact up to 2^53). */
  varint = 0;
  private pos: number;

  constructor(
    private readonly buf: Buffer,
    start: number,
    private readonly end: number,
  ) {
    this.pos = start;
  }

  private readVarint(): number {
    const buf = this.buf;
    let v = 0;
    let mul = 1;
    let b: number;
    do {
      if (this.pos >= this.end) throw new Error('truncated varint');
      b = buf[this.pos++]!;
      v += (b & 0x7f) * mul;
      mul *= 128;
    } while (b & 0x80);
    return v;
  }

  next(): boolean {
    if (this.pos >= this.end) {
      if (this.pos !== this.end) throw new Error('field beyond message');
      return false;
    }
    const tag = this.readVarint();
    this.field = Math.floor(tag / 8);
    this.wireType = tag & 7;
    switch (this.wireType) {
      case VARINT:
        this.varint = this.readVarint();
        this.s = this.e = this.pos;
        break;
      case LEN: {
        const len = this.readVarint();
        this.s = this.pos;
        this.pos += len;
        this.e = this.pos;
        if (this.pos > this.end) throw new Error('length beyond message');
        break;
      }
      case I64:
        this.s = this.pos;
        this.pos += 8;
        this.e = this.pos;
        break;
      case I32:
        this.s = this.pos;
        this.pos += 4;
        this.e = this.pos;
        break;
      default:
        throw new Error(`unsupported wire type ${this.wireType}`);
    }
    return true;
  }

  /** The current length-delimited field as a string. */
  string(): string {
    return this.buf.toString('utf8', this.s, this.e);
  }
}

/** The first length-delimited field `no` of a message, or undefined. */
export function firstLen(buf: Buffer, start: number, end: number, no: number): Span | undefined {
  const c = new Cursor(buf, start, end);
  while (c.next()) if (c.field === no && c.wireType === LEN) return { start: c.s, end: c.e };
  return undefined;
}

const str = (buf: Buffer, s: Span): string => buf.toString('utf8', s.start, s.end);

/** One resource in a response: its name and where its encoded value is. */
export interface ResourceRef {
  readonly name: string;
  readonly value: Span;
  /** Delta only: the control plane's version of the resource. */
  readonly version?: string;
}

export interface SotwResponse {
  readonly versionInfo: string;
  readonly typeUrl: string;
  readonly nonce: string;
  /** Value spans of the Any resources, in order (names are read on demand). */
  readonly values: Span[];
}

/** The value (field 2) of a google.protobuf.Any {type_url = 1; value = 2}. */
function anyValue(buf: Buffer, s: number, e: number): Span {
  const c = new Cursor(buf, s, e);
  while (c.next()) if (c.field === 2 && c.wireType === LEN) return { start: c.s, end: c.e };
  return { start: e, end: e };
}

/** DiscoveryResponse{version_info=1, resources=2 (Any{type_url=1, value=2}), type_url=4, nonce=5}. */
export function readSotwResponse(buf: Buffer): SotwResponse {
  let versionInfo = '';
  let typeUrl = '';
  let nonce = '';
  const values: Span[] = [];
  const c = new Cursor(buf, 0, buf.length);
  while (c.next()) {
    if (c.wireType !== LEN) continue;
    if (c.field === 2) values.push(anyValue(buf, c.s, c.e));
    else if (c.field === 1) versionInfo = c.string();
    else if (c.field === 4) typeUrl = c.string();
    else if (c.field === 5) nonce = c.string();
  }
  return { versionInfo, typeUrl, nonce, values };
}

/** The resource name: field 1 of Cluster, ClusterLoadAssignment, Listener, RouteConfiguration. */
export function nameOf(buf: Buffer, value: Span): string {
  const n = firstLen(buf, value.start, value.end, 1);
  return n ? str(buf, n) : '';
}

/** Whether field 1 of the value equals `name` (no string is allocated). */
export function nameEquals(buf: Buffer, value: Span, name: Buffer): boolean {
  const n = firstLen(buf, value.start, value.end, 1);
  return (
    !!n &&
    n.end - n.start === name.length &&
    buf.compare(name, 0, name.length, n.start, n.end) === 0
  );
}

export interface DeltaResponse {
  readonly systemVersionInfo: string;
  readonly typeUrl: string;
  readonly nonce: string;
  readonly resources: ResourceRef[];
  readonly removed: string[];
}

/**
 * DeltaDiscoveryResponse{system_version_info=1, resources=2 (Resource{version=1, resource=2
 * (Any), name=3}), type_url=4, nonce=5, removed_resources=6}.
 */
export function readDeltaResponse(buf: Buffer): DeltaResponse {
  let systemVersionInfo = '';
  let typeUrl = '';
  let nonce = '';
  const resources: ResourceRef[] = [];
  const removed: string[] = [];
  const c = new Cursor(buf, 0, buf.length);
  while (c.next()) {
    if (c.wireType !== LEN) continue;
    if (c.field === 2) {
      let name = '';
      let version = '';
      let value: Span = { start: c.e, end: c.e };
      const r = new Cursor(buf, c.s, c.e);
      while (r.next()) {
        if (r.wireType !== LEN) continue;
        if (r.field === 3) name = r.string();
        else if (r.field === 1) version = r.string();
        else if (r.field === 2) value = anyValue(buf, r.s, r.e);
      }
      resources.push({ name, version, value });
    } else if (c.field === 1) systemVersionInfo = c.string();
    else if (c.field === 4) typeUrl = c.string();
    else if (c.field === 5) nonce = c.string();
    else if (c.field === 6) removed.push(c.string());
  }
  return { systemVersionInfo, typeUrl, nonce, resources, removed };
}

/**
 * What EDS name an EDS cluster asks for (eds_cluster_config.service_name, else its name);
 * undefined for clusters of other discovery types. Cluster{name=1, type=2, eds_cluster_config=3
 * {service_name=2}}; DiscoveryType EDS = 3.
 */
export function edsNameOfCluster(buf: Buffer, value: Span): string | undefined {
  let name = '';
  let type = 0;
  let serviceName = '';
  const c = new Cursor(buf, value.start, value.end);
  while (c.next()) {
    if (c.field === 1 && c.wireType === LEN) name = c.string();
    else if (c.field === 2 && c.wireType === VARINT) type = c.varint;
    else if (c.field === 3 && c.wireType === LEN) {
      const sn = firstLen(buf, c.s, c.e, 2);
      if (sn) serviceName = str(buf, sn);
    }
  }
  if (type !== 3) return undefined;
  return serviceName || name;
}

const HCM_TYPE =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

/**
 * Route configurations a listener fetches over RDS: Listener.filter_chains=3 → FilterChain.filters=3
 * → Filter.typed_config=4 (Any) → HttpConnectionManager.rds=3 → Rds.route_config_name=2.
 */
export function rdsNamesOfListener(buf: Buffer, value: Span): string[] {
  const names: string[] = [];
  const chains = new Cursor(buf, value.start, value.end);
  while (chains.next()) {
    if (chains.field !== 3 || chains.wireType !== LEN) continue;
    const filters = new Cursor(buf, chains.s, chains.e);
    while (filters.next()) {
      if (filters.field !== 3 || filters.wireType !== LEN) continue;
      const typed = firstLen(buf, filters.s, filters.e, 4);
      if (!typed) continue;
      const typeUrl = firstLen(buf, typed.start, typed.end, 1);
      if (!typeUrl || str(buf, typeUrl) !== HCM_TYPE) continue;
      const hcm = firstLen(buf, typed.start, typed.end, 2);
      const rds = hcm && firstLen(buf, hcm.start, hcm.end, 3);
      const routeName = rds && firstLen(buf, rds.start, rds.end, 2);
      if (routeName) names.push(str(buf, routeName));
    }
  }
  return names;
}

/**
 * An address as it appears inside an encoded ClusterLoadAssignment: SocketAddress.address
 * (field 2) with its tag and length, so `10.0.0.1` cannot match inside `10.0.0.10`.
 */
export function addressMarker(address: string): Buffer {
  const w = protobuf.Writer.create();
  w.uint32((2 << 3) | LEN).string(address);
  return Buffer.from(w.finish());
}

// ---- requests -------------------------------------------------------------------------------

export interface NodeInfo {
  readonly id: string;
  readonly service: string;
  readonly outboundPort: number;
  /** node.metadata.vhds, as `lucid-mesh bootstrap --mode delta` writes it (docs/vhds.md). */
  readonly vhds?: boolean;
}

/** Node{id=1, cluster=2, metadata=3 Struct{fields=1 map<string, Value{number=2, string=3}>}}. */
function writeNode(w: protobuf.Writer, field: number, node: NodeInfo): void {
  w.uint32((field << 3) | LEN).fork();
  w.uint32((1 << 3) | LEN).string(node.id);
  w.uint32((2 << 3) | LEN).string(node.service);
  w.uint32((3 << 3) | LEN).fork();
  // map entries in key order, as Envoy writes them
  w.uint32((1 << 3) | LEN).fork();
  w.uint32((1 << 3) | LEN).string('outbound_port');
  w.uint32((2 << 3) | LEN).fork();
  w.uint32((2 << 3) | I64).double(node.outboundPort);
  w.ldelim();
  w.ldelim();
  w.uint32((1 << 3) | LEN).fork();
  w.uint32((1 << 3) | LEN).string('service');
  w.uint32((2 << 3) | LEN).fork();
  w.uint32((3 << 3) | LEN).string(node.service);
  w.ldelim();
  w.ldelim();
  if (node.vhds) {
    w.uint32((1 << 3) | LEN).fork();
    w.uint32((1 << 3) | LEN).string('vhds');
    w.uint32((2 << 3) | LEN).fork();
    w.uint32((4 << 3) | VARINT).bool(true); // Value.bool_value
    w.ldelim();
    w.ldelim();
  }
  w.ldelim();
  w.ldelim();
}

/** Whether a RouteConfiguration value has `vhds` (field 9): its hosts come over VHDS. */
export function hasVhds(buf: Buffer, value: Span): boolean {
  return firstLen(buf, value.start, value.end, 9) !== undefined;
}

/** A repeated string field, pre-encoded (the expensive part of a SotW EDS request). */
export function encodeNames(field: number, names: readonly string[]): Buffer {
  const w = protobuf.Writer.create();
  for (const n of names) w.uint32((field << 3) | LEN).string(n);
  return Buffer.from(w.finish());
}

export interface SotwRequest {
  node?: NodeInfo;
  versionInfo?: string;
  typeUrl: string;
  nonce?: string;
  /** Pre-encoded resource_names (field 3), from encodeNames(3, …). */
  names?: Buffer;
}

/** DiscoveryRequest{version_info=1, node=2, resource_names=3, type_url=4, response_nonce=5}. */
export function encodeSotwRequest(r: SotwRequest): Buffer {
  // The node goes on a stream's first request only: the general writer is fine for that one.
  const node = r.node ? nodeField(r.node) : undefined;
  // An ACK is built on every response, a thousand times per change: one allocation, one copy
  // of the pre-encoded names.
  const size =
    stringFieldLength(r.versionInfo) +
    (node?.length ?? 0) +
    (r.names?.length ?? 0) +
    stringFieldLength(r.typeUrl) +
    stringFieldLength(r.nonce);
  const out = Buffer.allocUnsafe(size);
  let at = writeStringField(out, 0, 1, r.versionInfo);
  if (node) at += node.copy(out, at);
  if (r.names) at += r.names.copy(out, at);
  at = writeStringField(out, at, 4, r.typeUrl);
  writeStringField(out, at, 5, r.nonce);
  return out;
}

function nodeField(node: NodeInfo): Buffer {
  const w = protobuf.Writer.create();
  writeNode(w, 2, node);
  return Buffer.from(w.finish());
}

export interface DeltaRequest {
  node?: NodeInfo;
  typeUrl: string;
  subscribe?: readonly string[];
  unsubscribe?: readonly string[];
  /** On a new stream: the versions held (failover to another replica). */
  initialVersions?: ReadonlyMap<string, string>;
  nonce?: string;
}

/**
 * DeltaDiscoveryRequest{node=1, type_url=2, resource_names_subscribe=3,
 * resource_names_unsubscribe=4, response_nonce=6}.
 */
export function encodeDeltaRequest(r: DeltaRequest): Buffer {
  const w = protobuf.Writer.create();
  if (r.node) writeNode(w, 1, r.node);
  w.uint32((2 << 3) | LEN).string(r.typeUrl);
  for (const n of r.subscribe ?? []) w.uint32((3 << 3) | LEN).string(n);
  for (const n of r.unsubscribe ?? []) w.uint32((4 << 3) | LEN).string(n);
  // initial_resource_versions: a map, i.e. repeated entries {key = 1, value = 2}.
  for (const [name, version] of r.initialVersions ?? []) {
    w.uint32((5 << 3) | LEN).fork();
    w.uint32((1 << 3) | LEN).string(name);
    w.uint32((2 << 3) | LEN).string(version);
    w.ldelim();
  }
  if (r.nonce) w.uint32((6 << 3) | LEN).string(r.nonce);
  return Buffer.from(w.finish());
}

/** Fails loudly if the generated Envoy descriptor disagrees with the numbers used above. */
export function checkFieldNumbers(): void {
  const expect: Array<[string, Record<string, number>]> = [
    [
      'envoy.service.discovery.v3.DiscoveryRequest',
      { versionInfo: 1, node: 2, resourceNames: 3, typeUrl: 4, responseNonce: 5, errorDetail: 6 },
    ],
    [
      'envoy.service.discovery.v3.DeltaDiscoveryRequest',
      {
        node: 1,
        typeUrl: 2,
        resourceNamesSubscribe: 3,
        resourceNamesUnsubscribe: 4,
        initialResourceVersions: 5,
        responseNonce: 6,
        errorDetail: 7,
      },
    ],
    [
      'envoy.service.discovery.v3.DiscoveryResponse',
      { versionInfo: 1, resources: 2, typeUrl: 4, nonce: 5 },
    ],
    [
      'envoy.service.discovery.v3.DeltaDiscoveryResponse',
      { systemVersionInfo: 1, resources: 2, typeUrl: 4, nonce: 5, removedResources: 6 },
    ],
    ['envoy.service.discovery.v3.Resource', { version: 1, resource: 2, name: 3 }],
    ['envoy.config.core.v3.Node', { id: 1, cluster: 2, metadata: 3 }],
    ['google.protobuf.Value', { numberValue: 2, stringValue: 3 }],
    ['envoy.config.cluster.v3.Cluster', { name: 1, type: 2, edsClusterConfig: 3 }],
    ['envoy.config.cluster.v3.Cluster.EdsClusterConfig', { serviceName: 2 }],
    ['envoy.config.listener.v3.Listener', { name: 1, filterChains: 3 }],
    ['envoy.config.listener.v3.FilterChain', { filters: 3 }],
    ['envoy.config.listener.v3.Filter', { typedConfig: 4 }],
    [
      'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
      { rds: 3 },
    ],
    ['envoy.extensions.filters.network.http_connection_manager.v3.Rds', { routeConfigName: 2 }],
    ['envoy.config.endpoint.v3.ClusterLoadAssignment', { clusterName: 1 }],
    ['envoy.config.core.v3.SocketAddress', { address: 2 }],
    ['envoy.config.route.v3.RouteConfiguration', { name: 1 }],
  ];
  for (const [type, fields] of expect) {
    const t = messageType(type);
    for (const [name, id] of Object.entries(fields)) {
      const actual = t.fields[name]?.id;
      if (actual !== id)
        throw new Error(`bench wire: ${type}.${name} is field ${actual}, expected ${id}`);
    }
  }
}
