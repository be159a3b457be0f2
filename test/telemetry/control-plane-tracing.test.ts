// The control plane's spans from snapshots, responses, ACKs and NACKs, with the real
// OpenTelemetry SDK (in-memory exporter): the tree, the proxies named, NACKs as errors, and a
// change superseded by the next. (Against a real Jaeger: test/e2e/observability.test.ts.)
import * as api from '@opentelemetry/api';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace';
import { afterEach, describe, expect, it } from 'vitest';
import type { ResourceKind } from '../../src/protos/envoy.js';
import type { Snapshot } from '../../src/snapshot/snapshot.js';
import { ChangeTracer } from '../../src/telemetry/tracing.js';
import type { StreamInfo } from '../../src/xds/type-status.js';

const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
afterEach(() => exporter.reset());

const empty = () => new Map();
function snapshot(version: string): Snapshot {
  const shared = {
    clusters: new Map([['a', {}]]),
    endpoints: empty(),
    listeners: empty(),
    routes: empty(),
    virtualHosts: empty(),
    secrets: empty(),
  };
  return {
    version,
    changedAt: Date.now() - 50,
    builtAt: Date.now(),
    shared,
    mesh: { services: [{}, {}] },
  } as unknown as Snapshot;
}
function stream(id: number, nodeId: string): StreamInfo {
  return {
    id,
    mode: 'delta',
    proxy: { nodeId, service: nodeId.split('-')[0], outboundPort: 15001 },
  } as unknown as StreamInfo;
}
const report = (kind: ResourceKind, version: string) => ({
  kind,
  version,
  nonce: 'n',
  resources: 3,
  removed: [],
  bytes: 120,
  durationMs: 1,
  snapshot: { version, changedAt: 0 },
});

const byName = (name: string): ReadableSpan => {
  const span = exporter.getFinishedSpans().find((s) => s.name === name);
  if (!span)
    throw new Error(
      `no span ${name}: ${exporter
        .getFinishedSpans()
        .map((s) => s.name)
        .join(', ')}`,
    );
  return span;
};
const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;

describe('ChangeTracer', () => {
  it('change → build → push per type → per proxy until ACK; converged when all ACKed', () => {
    const tracer = new ChangeTracer(provider.getTracer('t'), api, {});
    const [a, b] = [stream(1, 'hello-1'), stream(2, 'world-1')];
    const t = Date.now();
    const timings = {
      startedAt: t - 40,
      comparedAt: t - 35,
      meshBuiltAt: t - 30,
      translatedAt: t - 20,
      encodedAt: t - 10,
    };
    tracer.snapshotBuilt(snapshot('v2'), snapshot('v1'), timings);
    for (const s of [a, b]) tracer.responseSent(s, report('endpoints', 'v2'));
    tracer.acked(a, 'endpoints', 'v2', { version: 'v2', changedAt: 0 });
    expect(exporter.getFinishedSpans().map((s) => s.name)).toEqual([
      'debounce',
      'mesh build',
      'translate',
      'encode',
      'build snapshot',
      'push EDS hello-1',
    ]);
    // The phases are children of the build, each from its start to its end.
    const build = byName('build snapshot');
    const meshBuild = byName('mesh build');
    expect(parentOf(meshBuild)).toBe(build.spanContext().spanId);
    expect(meshBuild.duration).toEqual([0, 10_000_000]);
    tracer.acked(b, 'endpoints', 'v2', { version: 'v2', changedAt: 0 });

    const root = byName('config change');
    expect(root.attributes).toMatchObject({
      'lucid.version': 'v2',
      'lucid.previous_version': 'v1',
      'lucid.services': 2,
      'lucid.resources.clusters': 1,
      'lucid.outcome': 'converged',
      'lucid.acks': 2,
    });
    const push = byName('push EDS');
    expect(push.attributes['lucid.proxies']).toEqual(['hello-1', 'world-1']);
    expect(parentOf(push)).toBe(root.spanContext().spanId);
    expect(parentOf(byName('build snapshot'))).toBe(root.spanContext().spanId);
    const one = byName('push EDS world-1');
    expect(parentOf(one)).toBe(push.spanContext().spanId);
    expect(one.attributes).toMatchObject({
      'lucid.node': 'world-1',
      'lucid.service': 'world',
      'lucid.acked': true,
      'lucid.bytes': 120,
    });
    expect(new Set(exporter.getFinishedSpans().map((s) => s.spanContext().traceId)).size).toBe(1);
  });

  it("a NACK is an error span with Envoy's text; a newer snapshot supersedes an open change", () => {
    const tracer = new ChangeTracer(provider.getTracer('t'), api, {});
    const a = stream(1, 'hello-1');
    tracer.snapshotBuilt(snapshot('v3'), undefined);
    tracer.responseSent(a, report('listeners', 'v3'));
    tracer.nacked(a, 'listeners', 'v3', 'bad listener');
    const nack = byName('push LDS hello-1');
    expect(nack.status).toEqual({ code: api.SpanStatusCode.ERROR, message: 'bad listener' });
    expect(byName('config change').attributes).toMatchObject({
      'lucid.nacks': 1,
      'lucid.outcome': 'converged',
    });

    exporter.reset();
    tracer.snapshotBuilt(snapshot('v4'), undefined);
    tracer.responseSent(a, report('clusters', 'v4'));
    tracer.snapshotBuilt(snapshot('v5'), undefined);
    const old = exporter.getFinishedSpans().find((s) => s.name === 'config change')!;
    expect(old.attributes).toMatchObject({ 'lucid.version': 'v4', 'lucid.outcome': 'superseded' });
    expect(byName('push CDS hello-1').attributes['lucid.acked']).toBe(false);
    // A late ACK of the superseded version changes nothing.
    tracer.acked(a, 'clusters', 'v4', { version: 'v4', changedAt: 0 });
    tracer.endAll('stopped');
    expect(
      exporter
        .getFinishedSpans()
        .filter((s) => s.name === 'config change')
        .map((s) => s.attributes['lucid.outcome']),
    ).toEqual(['superseded', 'stopped']);
  });

  it('a proxy that connects after a change gets it as its first config: not part of the change', async () => {
    const tracer = new ChangeTracer(provider.getTracer('t'), api, { maxChangeMs: 100 });
    const built = snapshot('v6');
    tracer.snapshotBuilt(built, undefined);
    // A control plane's first snapshot, and its first sidecar connecting 50 ms later.
    await new Promise((r) => setTimeout(r, 50));
    const late = { ...stream(7, 'hello-1'), connectedAt: Date.now() } as StreamInfo;
    tracer.responseSent(late, report('clusters', 'v6'));
    tracer.acked(late, 'clusters', 'v6', { version: 'v6', changedAt: 0 });
    expect(exporter.getFinishedSpans().filter((s) => s.name === 'config change')).toEqual([]);
    await new Promise((r) => setTimeout(r, 100));
    const root = byName('config change');
    expect(root.attributes).toMatchObject({ 'lucid.outcome': 'sent to no proxy', 'lucid.acks': 0 });
    // It ends where the snapshot was built, not when the sidecar connected or the wait ended.
    const endMs = root.endTime[0] * 1000 + root.endTime[1] / 1e6;
    expect(endMs).toBeLessThanOrEqual(built.builtAt + 1);
    expect(exporter.getFinishedSpans().map((s) => s.name)).not.toContain('push CDS');
  });
});
