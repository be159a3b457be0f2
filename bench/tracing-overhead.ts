// Micro-benchmark of the control plane's own tracing (docs/observability.md#tracing):
//   - off (the default): what it costs is nothing by construction (no observer added, the SDK
//     never imported); shown here as the SDK import time that is avoided;
//   - on: the cost per xDS response + ACK of the ChangeTracer observer (two spans' worth), with
//     the real SDK and a BatchSpanProcessor whose exporter drops the spans.
// Run: npx tsx bench/tracing-overhead.ts
import { performance } from 'node:perf_hooks';
import type { ResourceKind } from '../src/protos/envoy.js';
import type { Snapshot } from '../src/snapshot/snapshot.js';
import type { ResponseReport } from '../src/xds/observer.js';
import type { StreamInfo } from '../src/xds/type-status.js';

const t0 = performance.now();
const api = await import('@opentelemetry/api');
const { TracerProvider, BatchSpanProcessor } = await import('@opentelemetry/sdk-trace');
await import('@opentelemetry/exporter-trace-otlp-grpc');
const importMs = performance.now() - t0;
const { ChangeTracer } = await import('../src/telemetry/tracing.js');

const provider = new TracerProvider({
  spanProcessors: [
    new BatchSpanProcessor({
      exporter: { export: (_spans, done) => done({ code: 0 }), shutdown: async () => {} },
      maxQueueSize: 1_000_000,
    }),
  ],
});
const tracer = new ChangeTracer(provider.getTracer('bench'), api, { maxProxySpans: 100 });

const PROXIES = 1000;
const streams: StreamInfo[] = Array.from({ length: PROXIES }, (_, i) => ({
  id: i,
  mode: 'sotw',
  peer: '',
  connectedAt: 0,
  proxy: { nodeId: `p-${i}`, service: 'svc', outboundPort: 15001 },
  types: new Map(),
  throttled: 0,
})) as unknown as StreamInfo[];
const shared = {
  clusters: new Map(),
  endpoints: new Map(),
  listeners: new Map(),
  routes: new Map(),
  secrets: new Map(),
};

function round(version: string): number {
  const snapshot = {
    version,
    changedAt: Date.now(),
    builtAt: Date.now(),
    shared,
    mesh: { services: [] },
  };
  tracer.snapshotBuilt(snapshot as unknown as Snapshot, undefined);
  const ref = { version, changedAt: snapshot.changedAt };
  const start = performance.now();
  for (const kind of ['clusters', 'endpoints'] as ResourceKind[]) {
    for (const s of streams) {
      const report: ResponseReport = {
        kind,
        version,
        nonce: '1',
        resources: 10,
        removed: [],
        bytes: 1000,
        durationMs: 0.1,
        snapshot: ref,
      };
      tracer.responseSent(s, report);
    }
    for (const s of streams) tracer.acked(s, kind, version, ref);
  }
  return performance.now() - start;
}

for (let i = 0; i < 5; i++) round(`warm-${i}`);
const times: number[] = [];
for (let i = 0; i < 20; i++) times.push(round(`v-${i}`));
times.sort((a, b) => a - b);
const median = times[times.length >> 1]!;
const perPair = (median * 1e6) / (PROXIES * 2);
await provider.shutdown();
console.log(
  JSON.stringify(
    {
      sdkImportMsAvoidedWhenOff: Math.round(importMs),
      onProxies: PROXIES,
      onMedianMsPerChange: Number(median.toFixed(2)),
      onNsPerResponseAndAck: Math.round(perPair),
      note: 'per change: 2 types x 1000 proxies, 100 per-proxy spans per type, the rest counted in the type span',
    },
    null,
    2,
  ),
);
