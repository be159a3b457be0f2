// Prometheus metrics (prom-client). The xDS layer reports through XdsObserver; counters that
// already live elsewhere (encoder, store, streams) are read at scrape time.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ExpiryReport } from '../ca/types.js';
import { RESOURCE_KINDS, type ResourceKind } from '../protos/envoy.js';
import type { SnapshotStore } from '../snapshot/store.js';
import type { ConfigProblem } from '../traffic/provider.js';
import { ENTRY_KINDS } from '../traffic/types.js';
import type { ResponseReport, SnapshotRef, StreamRefusal, XdsObserver } from '../xds/observer.js';
import { syncState, type StreamInfo } from '../xds/type-status.js';
import { ConvergenceTracker } from './convergence.js';

export const METRIC_PREFIX = 'lucid_mesh_';
const P = METRIC_PREFIX;

export interface MetricsDeps {
  store: SnapshotStore;
  streams: () => Iterable<StreamInfo>;
  /** The CA's leaves and roots, for expiry gauges. */
  certificates?: { expiries(): ExpiryReport };
  /** What /v1/config/errors lists; default: the current mesh's problems. */
  configProblems?: () => readonly ConfigProblem[];
}

interface KindCounts {
  responses: number;
  bytes: number;
  acks: number;
}

export class Metrics implements XdsObserver {
  readonly registry = new Registry();
  private readonly registers = [this.registry];
  /**
   * Responses, their bytes and ACKs per kind, counted in plain numbers and handed to
   * prom-client at scrape time: a labelled child's inc() hashes its labels every time, three
   * times a response (~0.2 s of a W9 storm's 10,000 sidecars × 8 responses and ACKs).
   */
  private readonly perKind = new Map<ResourceKind, KindCounts>();
  private readonly nacks = this.counter('xds_nacks_total', 'Responses rejected by proxies (NACK)', [
    'type',
  ]);
  private readonly staleNonces = this.counter(
    'xds_stale_nonces_total',
    'Requests ignored: their nonce was stale',
    ['type'],
  );
  private readonly authFailures = this.counter(
    'xds_auth_failures_total',
    'ADS streams refused: missing/invalid token (UNAUTHENTICATED) or a service the token does not name (PERMISSION_DENIED)',
    ['reason'],
  );
  private readonly badRequests = this.counter(
    'xds_bad_requests_total',
    'Malformed or unsupported xDS requests',
    [],
  );
  private readonly throttledRequests = this.counter(
    'xds_throttled_requests_total',
    'xDS requests held back: their stream sent faster than --request-rate',
    [],
  );
  private readonly streamsRefused = this.counter(
    'xds_streams_refused_total',
    'New xDS streams refused with RESOURCE_EXHAUSTED: --max-streams reached or --stream-rate exceeded',
    ['reason'],
  );
  private readonly pushDuration = new Histogram({
    name: `${P}xds_push_duration_seconds`,
    help: 'Time to assemble and write one xDS response',
    labelNames: ['type'],
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5],
    registers: this.registers,
  });
  private readonly kindChildren = new Map<
    ResourceKind,
    KindCounts & { readonly pushDuration: { observe(value: number): void } }
  >();
  private readonly convergence = new ConvergenceTracker((s) => this.convergenceSeconds.observe(s));
  private readonly convergenceSeconds = new Histogram({
    name: `${P}convergence_seconds`,
    help: 'Time from a source change until every proxy sent the resulting config has ACKed it',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: this.registers,
  });
  /** Call sourceWatched(name) when a source starts, so its error counter starts at 0. */
  readonly sourceErrors = this.counter(
    'source_errors_total',
    'Discovery source failures (the last good catalog stays in force)',
    ['source'],
  );
  /** Requests to the admin API refused for want of a valid operator token (or its scope). */
  readonly adminAuthFailures = this.counter(
    'admin_auth_failures_total',
    'Admin API requests refused: no/invalid/revoked operator token (401), a proxy token or too small a scope (403)',
    ['reason'],
  );
  readonly sourceLastSuccess = new Gauge({
    name: `${P}source_last_success_timestamp_seconds`,
    help: 'When the source last delivered a valid catalog (unix seconds)',
    labelNames: ['source'],
    registers: this.registers,
  });
  /** ServiceDiscoveryDown's signal: what `lucid-mesh status` lists as the source's problem. */
  readonly sourceFailing = new Gauge({
    name: `${P}source_failing`,
    help: "1 while the source's last word was a failure (an invalid catalog edit, its backend unreachable; the last good catalog stays in force), 0 once it delivers a catalog or answers again",
    labelNames: ['source'],
    registers: this.registers,
  });
  /** Seeds' alert HighServiceDiscoveryLatency: time from a source change to the snapshot built from it. */
  readonly discoveryLatency = new Histogram({
    name: 'service_discovery_latency_seconds',
    help: 'Time from a discovery source change to the snapshot that contains it',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: this.registers,
  });

  constructor(deps: MetricsDeps) {
    collectDefaultMetrics({ register: this.registry, prefix: P });
    // Every type's series from the start, at 0: a series that first appears at 1 has no
    // increase() in Prometheus, so ProxyConfigRejected missed the first NACK of each type.
    for (const type of RESOURCE_KINDS) {
      this.nacks.inc({ type }, 0);
      this.staleNonces.inc({ type }, 0);
    }
    this.kindCounter('xds_responses_total', 'xDS responses sent (pushes)', 'responses');
    this.kindCounter('xds_response_bytes_total', 'Bytes of xDS responses sent', 'bytes');
    this.kindCounter('xds_acks_total', 'Responses accepted by proxies (ACK)', 'acks');
    const { store } = deps;
    this.gauge('connected_proxies', 'Connected xDS streams by mode', ['mode'], (g) => {
      const counts = { sotw: 0, delta: 0 };
      for (const s of deps.streams()) counts[s.mode]++;
      g.set({ mode: 'sotw' }, counts.sotw);
      g.set({ mode: 'delta' }, counts.delta);
    });
    // A NACK is counted once, and ProxyConfigRejected is over 5 min later; the proxy stays on
    // its last accepted config until a later response is accepted. This says how many still are.
    this.gauge(
      'nacked_proxies',
      'Connected proxies whose last response of this type they rejected (NACKED in lucid-mesh status): they run on their last accepted config',
      ['type'],
      (g) => {
        const counts = new Map<ResourceKind, number>(RESOURCE_KINDS.map((k) => [k, 0]));
        for (const s of deps.streams()) {
          for (const kind of RESOURCE_KINDS) {
            if (syncState(s.types.get(kind)) === 'NACKED') counts.set(kind, counts.get(kind)! + 1);
          }
        }
        for (const [type, n] of counts) g.set({ type }, n);
      },
    );
    this.counterFrom(
      'resources_encoded_total',
      'Resources protobuf-encoded (a change encodes only what changed)',
      () => store.encoder.counters.encoded,
    );
    this.counterFrom(
      'resources_reused_total',
      'Resources served from the encode cache (content unchanged)',
      () => store.encoder.counters.reused,
    );
    this.counterFrom(
      'snapshots_built_total',
      'Snapshots built',
      () => store.counters.snapshotsBuilt,
    );
    this.counterFrom(
      'fanout_watchers_visited_total',
      'Watchers the fan-out visited (a change visits only the proxies whose scope or own resources it touched)',
      () => store.counters.watchersVisited,
    );
    this.counterFrom(
      'snapshot_build_errors_total',
      'Snapshot builds that failed (previous snapshot kept)',
      () => store.counters.buildErrors,
    );
    this.counterFrom(
      'proxy_build_errors_total',
      "Builds of one proxy's own resources that failed (that proxy kept its last good config)",
      () => store.counters.proxyBuildErrors,
    );
    this.gauge('ready', '1 once the first catalog produced a snapshot', [], (g) =>
      g.set(store.ready ? 1 : 0),
    );
    const configProblems = deps.configProblems ?? (() => store.mesh?.problems ?? []);
    this.gauge(
      'config_errors',
      'Traffic configuration problems in force (as /v1/config/errors lists them), by entry kind',
      ['kind'],
      (g) => {
        // Every entry kind is always present (0 when fine), so alerts see a series to compare.
        const counts = new Map<string, number>(ENTRY_KINDS.map((k) => [k, 0]));
        for (const p of configProblems()) counts.set(p.kind, (counts.get(p.kind) ?? 0) + 1);
        g.reset();
        for (const [kind, n] of counts) g.set({ kind }, n);
      },
    );
    const certificates = deps.certificates;
    if (certificates) {
      // One series per certificate: kind=leaf per service, kind=root per serial.
      const perCertificate = (
        name: string,
        help: string,
        value: (c: { secondsRemaining: number; lifetimeSeconds: number }) => number,
      ): void =>
        this.gauge(name, help, ['kind', 'service', 'serial'], (g) => {
          g.reset();
          const report = certificates.expiries();
          for (const leaf of report.leaves) {
            g.set({ kind: 'leaf', service: leaf.service, serial: leaf.serial }, value(leaf));
          }
          for (const root of report.roots) {
            g.set({ kind: 'root', service: '', serial: root.serial }, value(root));
          }
        });
      perCertificate(
        'certificate_expiry_seconds',
        'Seconds until a certificate expires: kind=leaf (per service) or root (per serial)',
        (c) => c.secondsRemaining,
      );
      // The same series' validity periods: MeshCertificateExpiringSoon compares the two, so it
      // holds for any leaf lifetime (CERT_VALIDITY_DAYS, Consul's LeafCertTTL).
      perCertificate(
        'certificate_lifetime_seconds',
        'Seconds from notBefore to notAfter of each certificate certificate_expiry_seconds reports',
        (c) => c.lifetimeSeconds,
      );
    }
    store.onSnapshot((snapshot) => {
      this.discoveryLatency.observe((snapshot.builtAt - snapshot.changedAt) / 1000);
      this.convergence.snapshotBuilt(snapshot.version, snapshot.changedAt);
    });
  }

  /** The source's series from its start, at 0 (a counter first seen at 1 has no increase()). */
  sourceWatched(source: string): void {
    this.sourceErrors.inc({ source }, 0);
    this.sourceFailing.set({ source }, 0);
  }

  streamOpened(): void {}
  streamClosed(stream: StreamInfo): void {
    this.convergence.streamClosed(stream);
  }
  responseSent(stream: StreamInfo, r: ResponseReport): void {
    const m = this.ofKind(r.kind);
    m.responses++;
    m.bytes += r.bytes;
    m.pushDuration.observe(r.durationMs / 1000);
    this.convergence.responseSent(stream, r.kind, r.snapshot);
  }
  acked(
    stream: StreamInfo,
    kind: ResourceKind,
    _version: string,
    snapshot: SnapshotRef | undefined,
  ): void {
    this.ofKind(kind).acks++;
    this.convergence.acked(stream, kind, snapshot);
  }
  nacked(_s: StreamInfo, kind: ResourceKind): void {
    this.nacks.inc({ type: kind });
    this.convergence.nacked();
  }
  staleNonce(_s: StreamInfo, kind: ResourceKind): void {
    this.staleNonces.inc({ type: kind });
  }
  badRequest(): void {
    this.badRequests.inc();
  }
  authFailed(_s: StreamInfo, reason: string): void {
    this.authFailures.inc({ reason });
  }
  throttled(): void {
    this.throttledRequests.inc();
  }
  streamRefused(reason: StreamRefusal): void {
    this.streamsRefused.inc({ reason });
  }

  /**
   * Label children per type, resolved once: a fan-out reports a thousand responses and ACKs,
   * and resolving labels each time is a hash per call.
   */
  private ofKind(kind: ResourceKind) {
    let m = this.kindChildren.get(kind);
    if (!m) {
      const counts: KindCounts = { responses: 0, bytes: 0, acks: 0 };
      this.perKind.set(kind, counts);
      m = Object.assign(counts, { pushDuration: this.pushDuration.labels({ type: kind }) });
      this.kindChildren.set(kind, m);
    }
    return m;
  }

  private counter<L extends string>(name: string, help: string, labelNames: L[]): Counter<L> {
    return new Counter({ name: `${P}${name}`, help, labelNames, registers: this.registers });
  }

  /** A counter kept elsewhere, read at scrape time. */
  private counterFrom(name: string, help: string, read: () => number): void {
    new Counter({
      name: `${P}${name}`,
      help,
      registers: this.registers,
      collect() {
        this.reset();
        this.inc(read());
      },
    });
  }

  /** A counter per kind read at scrape time from perKind (a kind not seen yet has no series). */
  private kindCounter(name: string, help: string, field: keyof KindCounts): void {
    const perKind = this.perKind;
    new Counter({
      name: `${P}${name}`,
      help,
      labelNames: ['type'],
      registers: this.registers,
      collect() {
        this.reset();
        for (const [kind, counts] of perKind) {
          if (counts[field] > 0) this.inc({ type: kind }, counts[field]);
        }
      },
    });
  }

  /** A gauge read at scrape time. */
  private gauge<L extends string>(
    name: string,
    help: string,
    labelNames: L[],
    read: (g: Gauge<L>) => void,
  ): void {
    new Gauge({
      name: `${P}${name}`,
      help,
      labelNames,
      registers: this.registers,
      collect() {
        read(this);
      },
    });
  }
}
