// protobufjs generates a type's encoder, decoder and converters the first time the type is
// used (~26 types for a sidecar's first responses: its inbound and outbound listeners with
// their filters, the local app cluster's protocol options, the DNS table; the request's Node).
// Left to the first stream, that code generation and the first (interpreted) run of the
// sidecar translation were ~30-65 ms on the storm's critical path, before any proxy got its
// first response (bench W1, docs/benchmarks.md). So, once the first snapshot is built and the
// thread is idle, the codecs one sidecar's stream needs are made: one request of each mode
// decoded, one sidecar's own resources translated and encoded (nothing is kept, no store
// state is touched, no certificate is issued). Not at process start: an idle control plane
// with no snapshot loads nothing more. LUCID_CODEC_WARMUP=off turns it off.
import protobuf from 'protobufjs';
import { DEFAULT_DNS_PORT, DEFAULT_OUTBOUND_PORT } from '../catalog/model.js';
import { meshProxy } from '../mesh/index.js';
import type { Mesh } from '../mesh/types.js';
import { RESOURCE_KINDS, TYPE_URLS, encodeMessage } from '../protos/envoy.js';
import type { Snapshot } from '../snapshot/snapshot.js';
import { translateProxy } from '../translate/index.js';
import type { Logger } from '../telemetry/logger.js';
import { decodeDeltaRequest } from './delta-request.js';
import { decodeSotwRequest } from './sotw-request.js';

/** What the warm-up needs of the store: its first snapshot. */
export interface SnapshotSource {
  onSnapshot(listener: (snapshot: Snapshot) => void): () => void;
}

/** Runs warmCodecs once, after the first snapshot, when the thread is next idle. */
export function warmCodecsAfterFirstSnapshot(store: SnapshotSource, logger?: Logger): void {
  if (process.env.LUCID_CODEC_WARMUP === 'off') return;
  const stop = store.onSnapshot((snapshot) => {
    stop();
    setImmediate(() => {
      try {
        const ms = warmCodecs(snapshot.mesh);
        logger?.debug({ ms: Math.round(ms * 10) / 10 }, 'xds codecs warmed');
      } catch (err) {
        // Only a head start: the first stream makes whatever is missing, as it always did.
        logger?.debug({ err }, 'xds codec warm-up failed');
      }
    });
  });
}

/** Makes the codecs a sidecar's stream uses; returns the milliseconds it took. */
export function warmCodecs(mesh: Mesh): number {
  const started = performance.now();
  decodeSotwRequest(request(2, 'warm-up'));
  decodeDeltaRequest(request(1, 'warm-up'));
  const service = mesh.services.find((s) => s.instances.length > 0);
  if (service) {
    const proxy = meshProxy(mesh, {
      nodeId: service.instances[0]!.id,
      service: service.name,
      outboundPort: DEFAULT_OUTBOUND_PORT,
      dnsPort: DEFAULT_DNS_PORT,
      exclusivePorts: true,
    });
    const own = translateProxy(mesh, proxy);
    for (const kind of RESOURCE_KINDS) {
      for (const message of own[kind].values()) encodeMessage(TYPE_URLS[kind], message);
    }
  }
  return performance.now() - started;
}

/**
 * A first request as Envoy sends one: its node (id, cluster, metadata with a string and a
 * number) and a type URL. `nodeField` is the node's field number (SotW 2, delta 1).
 */
function request(nodeField: number, id: string): Buffer {
  const w = protobuf.Writer.create();
  // Node{id = 1, cluster = 2, metadata = 3: Struct{fields = 1: map<string, Value>}}
  w.uint32((nodeField << 3) | 2).fork();
  w.uint32((1 << 3) | 2).string(id);
  w.uint32((2 << 3) | 2).string(id);
  w.uint32((3 << 3) | 2).fork();
  for (const [key, value] of [
    ['service', { string: id }],
    ['outbound_port', { number: DEFAULT_OUTBOUND_PORT }],
  ] as const) {
    w.uint32((1 << 3) | 2).fork();
    w.uint32((1 << 3) | 2).string(key);
    w.uint32((2 << 3) | 2).fork();
    // Value{number_value = 2 (double), string_value = 3}
    if ('string' in value) w.uint32((3 << 3) | 2).string(value.string);
    else w.uint32((2 << 3) | 1).double(value.number);
    w.ldelim().ldelim();
  }
  w.ldelim().ldelim();
  // type_url: DiscoveryRequest field 4, DeltaDiscoveryRequest field 2.
  w.uint32(((nodeField === 2 ? 4 : 2) << 3) | 2).string(TYPE_URLS.clusters);
  return Buffer.from(w.finish());
}
