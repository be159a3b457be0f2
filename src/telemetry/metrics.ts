// Prometheus metrics (prom-client). The xDS layer reports through XdsObserver; counters that
// already live elsewhere (encoder, store, streams) are read at scrape time.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ResourceKind } from '../protos/envoy.js';
import type { SnapshotStore } from '../snapshot/store.js';
import type { ResponseReport, XdsObserver } from '../xds/observer.js';
import type { StreamInfo } from '../xds/type-status.js';

const P = 'lucid_mesh_';

export class Metrics implements XdsObserver {
  readonly registry = new Registry();
  private readonly responses: Counter<'type'>;
  private readonly responseBytes: Counter<'type'>;
  private readonly acks: Counter<'type'>;
  private readonly nacks: Counter<'type'>;
  private readonly staleNonces: Counter<'type'>;
  private readonly badRequests: Counter;
  private readonly convergence: Histogram<'type'>;
  readonly sourceErrors: Counter<'source'>;
  readonly sourceLastSuccess: Gauge<'source'>;
  /** Seeds' alert HighServiceDiscoveryLatency: time from a source change to a built snapshot. */
  readonly discoveryLatency: Histogram;

  constructor(opts: { store: SnapshotStore; streams: () => Iterable<StreamInfo> }) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: P });
    this.responses = new Counter({
      name: `${P}xds_responses_total`,
      help: 'xDS responses sent',
      labelNames: ['type'],
      registers,
    });
    this.responseBytes = new Counter({
      name: `${P}xds_response_bytes_total`,
      help: 'Bytes of xDS responses sent',
      labelNames: ['type'],
      registers,
    });
    this.acks = new Counter({
      name: `${P}xds_acks_total`,
      help: 'Responses accepted by proxies',
      labelNames: ['type'],
      registers,
    });
    this.nacks = new Counter({
      name: `${P}xds_nacks_total`,
      help: 'Responses rejected by proxies (NACK)',
      labelNames: ['type'],
      registers,
    });
    this.staleNonces = new Counter({
      name: `${P}xds_stale_nonces_total`,
      help: 'Requests ignored because their nonce was stale',
      labelNames: ['type'],
      registers,
    });
    this.badRequests = new Counter({
      name: `${P}xds_bad_requests_total`,
      help: 'Malformed or unsupported xDS requests',
      registers,
    });
    this.convergence = new Histogram({
      name: `${P}convergence_seconds`,
      help: 'Time from a source change to a proxy ACKing the config that contains it',
      labelNames: ['type'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.sourceErrors = new Counter({
      name: `${P}source_errors_total`,
      help: 'Discovery source failures (the last good catalog stays in force)',
      labelNames: ['source'],
      registers,
    });
    this.sourceLastSuccess = new Gauge({
      name: `${P}source_last_success_timestamp_seconds`,
      help: 'When the source last delivered a valid catalog',
      labelNames: ['source'],
      registers,
    });
    this.discoveryLatency = new Histogram({
      name: 'service_discovery_latency_seconds',
      help: 'Time from a discovery source change to the snapshot that contains it',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    new Gauge({
      name: `${P}connected_proxies`,
      help: 'Connected xDS streams by mode',
      labelNames: ['mode'],
      registers,
      collect() {
        const counts = { sotw: 0, delta: 0 };
        for (const s of opts.streams()) counts[s.mode]++;
        this.set({ mode: 'sotw' }, counts.sotw);
        this.set({ mode: 'delta' }, counts.delta);
      },
    });
    const { store } = opts;
    new Gauge({
      name: `${P}resources_encoded_total`,
      help: 'Resources protobuf-encoded (each change encodes only what changed)',
      registers,
      collect() {
        this.set(store.encoder.counters.encoded);
      },
    });
    new Gauge({
      name: `${P}resources_reused_total`,
      help: 'Resources served from the encode cache because their content did not change',
      registers,
      collect() {
        this.set(store.encoder.counters.reused);
      },
    });
    new Gauge({
      name: `${P}snapshots_built_total`,
      help: 'Snapshots built',
      registers,
      collect() {
        this.set(store.counters.snapshotsBuilt);
      },
    });
    new Gauge({
      name: `${P}snapshot_build_errors_total`,
      help: 'Snapshot builds that failed (previous snapshot kept)',
      registers,
      collect() {
        this.set(store.counters.buildErrors);
      },
    });
    new Gauge({
      name: `${P}ready`,
      help: '1 once the first catalog produced a snapshot',
      registers,
      collect() {
        this.set(store.ready ? 1 : 0);
      },
    });
  }

  streamOpened(): void {}
  streamClosed(): void {}
  responseSent(_s: StreamInfo, r: ResponseReport): void {
    this.responses.inc({ type: r.kind });
    this.responseBytes.inc({ type: r.kind }, r.bytes);
  }
  acked(_s: StreamInfo, kind: ResourceKind, _v: string, changedAt: number | undefined): void {
    this.acks.inc({ type: kind });
    if (changedAt !== undefined)
      this.convergence.observe({ type: kind }, (Date.now() - changedAt) / 1000);
  }
  nacked(_s: StreamInfo, kind: ResourceKind): void {
    this.nacks.inc({ type: kind });
  }
  staleNonce(_s: StreamInfo, kind: ResourceKind): void {
    this.staleNonces.inc({ type: kind });
  }
  badRequest(): void {
    this.badRequests.inc();
  }
}
