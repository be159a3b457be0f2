// The control plane's own traces (OpenTelemetry JS SDK, OTLP gRPC): one trace per snapshot,
// from the source change to the last ACK, so an operator sees why a change took as long as it
// did:
//   config change            (changedAt → converged, superseded or given up; version, counts)
//   ├─ build snapshot        (changedAt → built), with its phases as children:
//   │  debounce, mesh build, translate, encode
//   └─ push <kind>           (first response → last ACK of that kind; the proxies, by node id)
//      └─ push <kind> <node> (response written → ACK or NACK; resources, bytes, mode)
// Off unless serve is given a collector (or, without one, a proxy-defaults Tracing entry asks,
// see tracing-follow.ts): until then the SDK is not imported (startControlPlaneTracing loads it).
import type { Span, Tracer } from '@opentelemetry/api';
import type { ResourceKind } from '../protos/envoy.js';
import { RESOURCE_KINDS } from '../protos/envoy.js';
import type { Snapshot } from '../snapshot/snapshot.js';
import type { BuildTimings, SnapshotStore } from '../snapshot/store.js';
import type { ResponseReport, SnapshotRef, XdsObserver } from '../xds/observer.js';
import type { StreamInfo } from '../xds/type-status.js';
import type { Logger } from './logger.js';

export interface ControlPlaneTracingOptions {
  /** OTLP gRPC collector. */
  readonly collector: { readonly host: string; readonly port: number };
  readonly store: SnapshotStore;
  readonly logger: Logger;
  /** The service name of the spans (default "lucid-mesh"). */
  readonly serviceName?: string;
  /** A change not converged after this long is ended as given up (default 60 s). */
  readonly maxChangeMs?: number;
  /** Per kind, at most this many per-proxy push spans (the kind's span lists them all). */
  readonly maxProxySpans?: number;
  /** stop() waits at most this long for the last spans to flush (default 2 s). */
  readonly stopTimeoutMs?: number;
}

export interface ControlPlaneTracing {
  /** Reports the xDS server's pushes, ACKs and NACKs into the traces. */
  readonly observer: XdsObserver;
  /**
   * Ends open spans, flushes and shuts the exporter down. Never rejects and is bounded: a
   * collector that is down at shutdown loses the last spans (logged) but does not hold up or
   * fail the control plane's stop.
   */
  stop(): Promise<void>;
}

/** What kind names mean to an operator reading a trace. */
const KIND_LABEL: Record<ResourceKind, string> = {
  clusters: 'CDS',
  endpoints: 'EDS',
  listeners: 'LDS',
  routes: 'RDS',
  virtualHosts: 'VHDS',
  secrets: 'SDS',
};

const LIST_CAP = 200;

interface KindPush {
  readonly span: Span;
  readonly proxies: Set<string>;
  /** stream id → its per-proxy span (or null past maxProxySpans) awaiting the ACK. */
  readonly pending: Map<number, Span | null>;
  spans: number;
}

interface ChangeTrace {
  readonly version: string;
  /** When it was built: a stream opened later gets it as its first config, not as a change. */
  readonly builtAt: number;
  readonly root: Span;
  readonly kinds: Map<ResourceKind, KindPush>;
  readonly timer: NodeJS.Timeout;
  acks: number;
  nacks: number;
  sent: boolean;
}

/**
 * Starts the SDK (imported here, lazily) and subscribes to the store's snapshots.
 * The returned observer must be combined into the xDS server's.
 */
export async function startControlPlaneTracing(
  opts: ControlPlaneTracingOptions,
): Promise<ControlPlaneTracing> {
  const [
    { TracerProvider, BatchSpanProcessor },
    { OTLPTraceExporter },
    { resourceFromAttributes },
  ] = await Promise.all([
    import('@opentelemetry/sdk-trace'),
    import('@opentelemetry/exporter-trace-otlp-grpc'),
    import('@opentelemetry/resources'),
  ]);
  const api = await import('@opentelemetry/api');
  const { host, port } = opts.collector;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': opts.serviceName ?? 'lucid-mesh' }),
    spanProcessors: [
      new BatchSpanProcessor({
        exporter: new OTLPTraceExporter({ url }),
        scheduledDelayMillis: 1000,
      }),
    ],
  });
  const tracer = provider.getTracer('lucid-mesh');
  const tracing = new ChangeTracer(tracer, api, opts);
  const unsubscribe = opts.store.onSnapshot((snapshot, previous) =>
    tracing.snapshotBuilt(snapshot, previous, opts.store.lastBuild),
  );
  opts.logger.info({ collector: url }, 'control-plane tracing on');
  return {
    observer: tracing,
    async stop() {
      unsubscribe();
      tracing.endAll('stopped');
      await boundedShutdown(() => provider.shutdown(), opts.stopTimeoutMs ?? 2000).catch(
        (err: unknown) => {
          opts.logger.warn({ err, collector: url }, 'control-plane tracing: last spans lost');
        },
      );
    },
  };
}

/** The exporter's shutdown, or a rejection once `ms` have passed without it. */
async function boundedShutdown(shutdown: () => Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`exporter shutdown took over ${ms} ms`)), ms);
    timer.unref();
  });
  try {
    await Promise.race([shutdown(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

type Api = typeof import('@opentelemetry/api');

/** Turns snapshots, responses and ACKs into spans (exported for the unit test). */
export class ChangeTracer implements XdsObserver {
  private current: ChangeTrace | undefined;
  private readonly maxChangeMs: number;
  private readonly maxProxySpans: number;

  constructor(
    private readonly tracer: Tracer,
    private readonly api: Api,
    opts: Pick<ControlPlaneTracingOptions, 'maxChangeMs' | 'maxProxySpans'>,
  ) {
    this.maxChangeMs = opts.maxChangeMs ?? 60_000;
    this.maxProxySpans = opts.maxProxySpans ?? 100;
  }

  snapshotBuilt(snapshot: Snapshot, previous: Snapshot | undefined, timings?: BuildTimings): void {
    this.end('superseded');
    const counts: Record<string, number> = {};
    for (const kind of RESOURCE_KINDS) {
      counts[`lucid.resources.${kind}`] = snapshot.shared[kind].size;
    }
    const root = this.tracer.startSpan('config change', {
      startTime: snapshot.changedAt,
      attributes: {
        'lucid.version': snapshot.version,
        ...(previous ? { 'lucid.previous_version': previous.version } : {}),
        'lucid.services': snapshot.mesh.services.length,
        ...counts,
      },
    });
    const under = (span: Span) => this.api.trace.setSpan(this.api.ROOT_CONTEXT, span);
    const builtAt = timings?.encodedAt ?? snapshot.builtAt;
    const build = this.tracer.startSpan(
      'build snapshot',
      { startTime: snapshot.changedAt, attributes: { 'lucid.version': snapshot.version } },
      under(root),
    );
    // The phases, so a slow change shows where its time went.
    if (timings) {
      const phases: Array<[string, number, number]> = [
        ['debounce', snapshot.changedAt, timings.startedAt],
        ['mesh build', timings.startedAt, timings.meshBuiltAt],
        ['translate', timings.meshBuiltAt, timings.translatedAt],
        ['encode', timings.translatedAt, timings.encodedAt],
      ];
      for (const [name, start, end] of phases) {
        this.tracer.startSpan(name, { startTime: start }, under(build)).end(Math.max(start, end));
      }
    }
    const builtEnd = Math.max(snapshot.changedAt, builtAt);
    build.end(builtEnd);
    const timer = setTimeout(() => {
      // Sent to no proxy connected when it was built (none was, or none it concerned): the
      // change ends where it was built, not a minute later.
      const sent = this.current?.sent ?? false;
      this.end(sent ? 'gave up waiting for ACKs' : 'sent to no proxy', sent ? undefined : builtEnd);
    }, this.maxChangeMs);
    timer.unref();
    this.current = {
      version: snapshot.version,
      builtAt: Date.now(),
      root,
      kinds: new Map(),
      timer,
      acks: 0,
      nacks: 0,
      sent: false,
    };
  }

  responseSent(stream: StreamInfo, report: ResponseReport): void {
    const change = this.changeOf(report.snapshot);
    if (!change || stream.connectedAt > change.builtAt) return;
    change.sent = true;
    const node = stream.proxy?.nodeId ?? `stream-${stream.id}`;
    const sentAt = Date.now();
    const startTime = sentAt - report.durationMs;
    let push = change.kinds.get(report.kind);
    if (!push) {
      const span = this.tracer.startSpan(
        `push ${KIND_LABEL[report.kind]}`,
        { startTime, attributes: { 'lucid.version': change.version, 'lucid.type': report.kind } },
        this.api.trace.setSpan(this.api.ROOT_CONTEXT, change.root),
      );
      push = { span, proxies: new Set(), pending: new Map(), spans: 0 };
      change.kinds.set(report.kind, push);
    }
    push.proxies.add(node);
    push.pending.get(stream.id)?.end(startTime); // a newer response replaces one not ACKed yet
    let span: Span | null = null;
    if (push.spans < this.maxProxySpans) {
      push.spans++;
      span = this.tracer.startSpan(
        `push ${KIND_LABEL[report.kind]} ${node}`,
        {
          startTime,
          attributes: {
            'lucid.node': node,
            'lucid.service': stream.proxy?.service ?? '',
            'lucid.type': report.kind,
            'lucid.version': report.version,
            'lucid.mode': stream.mode,
            'lucid.resources': report.resources,
            'lucid.bytes': report.bytes,
          },
        },
        this.api.trace.setSpan(this.api.ROOT_CONTEXT, push.span),
      );
    }
    push.pending.set(stream.id, span);
  }

  acked(stream: StreamInfo, kind: ResourceKind, _version: string, snapshot?: SnapshotRef): void {
    const change = snapshot && this.changeOf(snapshot);
    const push = change?.kinds.get(kind);
    if (!change || !push?.pending.has(stream.id)) return;
    change.acks++;
    push.pending.get(stream.id)?.setAttribute('lucid.acked', true).end();
    push.pending.delete(stream.id);
    this.settle(change, kind, push);
  }

  nacked(stream: StreamInfo, kind: ResourceKind, _version: string, message: string): void {
    const change = this.current;
    const push = change?.kinds.get(kind);
    if (!change || !push?.pending.has(stream.id)) return;
    change.nacks++;
    const span = push.pending.get(stream.id);
    span?.setStatus({ code: this.api.SpanStatusCode.ERROR, message });
    span?.setAttribute('lucid.nack', message).end();
    push.pending.delete(stream.id);
    this.settle(change, kind, push);
  }

  streamClosed(stream: StreamInfo, reason: string): void {
    const change = this.current;
    if (!change) return;
    for (const [kind, push] of change.kinds) {
      if (!push.pending.has(stream.id)) continue;
      push.pending.get(stream.id)?.setAttribute('lucid.stream_closed', reason).end();
      push.pending.delete(stream.id);
      this.settle(change, kind, push);
    }
  }

  streamOpened(): void {}
  staleNonce(): void {}
  badRequest(): void {}
  authFailed(): void {}
  throttled(): void {}
  streamRefused(): void {}

  /** Ends whatever is open (at stop). */
  endAll(reason: string): void {
    this.end(reason);
  }

  private changeOf(snapshot: SnapshotRef): ChangeTrace | undefined {
    return this.current?.version === snapshot.version ? this.current : undefined;
  }

  /** A kind whose proxies have all answered ends; the change ends when every kind has. */
  private settle(change: ChangeTrace, kind: ResourceKind, push: KindPush): void {
    if (push.pending.size > 0) return;
    this.endPush(push);
    change.kinds.delete(kind);
    if (change.kinds.size === 0) this.end('converged');
  }

  private endPush(push: KindPush): void {
    const proxies = [...push.proxies].sort();
    push.span
      .setAttribute('lucid.proxy_count', proxies.length)
      .setAttribute('lucid.proxies', proxies.slice(0, LIST_CAP))
      .end();
  }

  private end(outcome: string, endTime?: number): void {
    const change = this.current;
    if (!change) return;
    this.current = undefined;
    clearTimeout(change.timer);
    for (const push of change.kinds.values()) {
      for (const span of push.pending.values()) span?.setAttribute('lucid.acked', false).end();
      this.endPush(push);
    }
    change.root
      .setAttribute('lucid.outcome', outcome)
      .setAttribute('lucid.acks', change.acks)
      .setAttribute('lucid.nacks', change.nacks)
      .end(endTime);
  }
}
