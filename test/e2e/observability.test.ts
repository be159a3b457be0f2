// Tracing and access logs with real Envoy sidecars and a real Jaeger v2 (OTLP in, query API
// out): a request from hello through both sidecars to world is one trace with spans from both
// sidecars; a catalog edit is a control-plane trace whose push spans name the proxies; the
// access log line of a request names its route, upstream cluster, response code and the
// caller's SPIFFE ID, and so do the OTLP log records (AccessLogs Type otlp) Jaeger's collector
// receives. One Jaeger, one control plane and two sidecars for the whole file.
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import { openCa, type OpenedCa } from '../../src/ca/index.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { startHttpApp, type HttpApp } from '../support/http-app.js';
import {
  startOtlpLogSink,
  type OtlpLogRecord,
  type OtlpLogSink,
} from '../support/otlp-log-sink.js';
import {
  JAEGER_SETUP_TIMEOUT_MS,
  spanService,
  spanTag,
  startJaeger,
  type Jaeger,
  type JaegerSpan,
  type JaegerTrace,
} from '../support/jaeger.js';
import { CatalogFile, startSidecar, startTestControlPlane, type Sidecar } from '../support/mesh.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

const TRUST_DOMAIN_PREFIX = 'spiffe://';

describe('tracing and access logs with real Envoy and Jaeger', () => {
  const catalog = new CatalogFile();
  const traffic = new CatalogFile('traffic.yaml');
  const logDir = mkdtempSync(join(tmpdir(), 'lucid-access-logs-'));
  const worldLog = join(logDir, 'world.log');
  const helloLog = join(logDir, 'hello.log');
  let jaeger: Jaeger | undefined;
  let logSink: OtlpLogSink | undefined;
  let ca: OpenedCa | undefined;
  let cp: RunningControlPlane | undefined;
  let hello: HttpApp, world: HttpApp;
  let a: Sidecar | undefined, b: Sidecar | undefined;
  let ports: { hello: number; world: number };

  const doc = (worldInstances: number) => ({
    services: [
      {
        name: 'hello',
        instances: [
          { id: 'hello-1', address: '127.0.0.1', port: hello.port, sidecarPort: ports.hello },
        ],
      },
      {
        name: 'world',
        instances: [
          { id: 'world-1', address: '127.0.0.1', port: world.port, sidecarPort: ports.world },
          // Extra instances without a sidecar: a catalog edit that changes world's endpoints.
          ...Array.from({ length: worldInstances - 1 }, (_, i) => ({
            id: `world-x${i}`,
            address: '127.0.0.1',
            port: world.port,
          })),
        ],
      },
    ],
  });

  beforeAll(async () => {
    logSink = await startOtlpLogSink();
    jaeger = await startJaeger({ logsTo: logSink.endpoint });
    [hello, world] = await Promise.all([startHttpApp('hello'), startHttpApp('world')]);
    ports = { hello: await freePort(), world: await freePort() };
    catalog.write(doc(1));
    traffic.write([
      {
        Kind: 'proxy-defaults',
        Name: 'global',
        Tracing: { Collector: jaeger.otlpAddress, SamplingPercent: 100 },
        AccessLogs: { Enabled: true, Type: 'stderr' },
      },
      // world: the default JSON format into a file; hello: a text format of its own.
      {
        Kind: 'service-defaults',
        Name: 'world',
        AccessLogs: { Enabled: true, Type: 'file', Path: worldLog },
      },
      {
        Kind: 'service-defaults',
        Name: 'hello',
        AccessLogs: {
          Enabled: true,
          Type: 'file',
          Path: helloLog,
          TextFormat:
            'route=%ROUTE_NAME% cluster=%UPSTREAM_CLUSTER% code=%RESPONSE_CODE% path=%REQ(:PATH)%',
        },
      },
    ]);
    ca = await openCa({ dataDir: mkdtempSync(join(tmpdir(), 'lucid-ca-')), logger: silentLogger });
    cp = await startTestControlPlane(
      catalog,
      {},
      {
        security: { ca, mtls: true, auth: 'none', adminAuth: 'none' },
        traffic,
        controlPlaneTracing: { collector: { host: '127.0.0.1', port: jaeger.otlpPort } },
      },
    );
    const xdsPort = cp.xdsPort;
    [a, b] = await Promise.all([
      startSidecar({ nodeId: 'hello-1', service: 'hello', xdsPort, mode: 'sotw' }),
      startSidecar({ nodeId: 'world-1', service: 'world', xdsPort, mode: 'delta' }),
    ]);
    const from = a;
    await waitFor(async () => (await from.call('world').catch(() => undefined))?.status === 200, {
      what: 'hello → world through both sidecars',
      timeoutMs: 30_000,
    });
  }, JAEGER_SETUP_TIMEOUT_MS);

  afterAll(async () => {
    await Promise.all([a?.envoy.stop(), b?.envoy.stop()]);
    await cp?.stop();
    ca?.stop();
    await jaeger?.stop();
    await logSink?.close();
    await Promise.all([hello?.close(), world?.close()]);
    catalog.remove();
    traffic.remove();
    rmSync(logDir, { recursive: true, force: true });
  });

  /** The first trace of `service` some span of which satisfies `pick`. */
  async function findTrace(
    service: string,
    pick: (span: JaegerSpan, trace: JaegerTrace) => boolean,
    what: string,
  ): Promise<JaegerTrace> {
    let found: JaegerTrace | undefined;
    await waitFor(
      async () => {
        const traces = await jaeger!.traces(service, 50);
        found = traces.find((t) => t.spans.some((s) => pick(s, t)));
        return found !== undefined;
      },
      // Envoy's OpenTelemetry tracer flushes every 5 s.
      { what, timeoutMs: 30_000, intervalMs: 500, details: () => jaeger!.logs() },
    );
    return found!;
  }

  it('a request from hello through both sidecars to world is one trace with spans of both', async () => {
    const path = `/traced-${randomUUID()}`;
    const res = await a!.call('world', path);
    expect(res.status).toBe(200);
    // Each Envoy flushes on its own 5 s timer: wait for the trace to hold both sidecars' spans.
    const ofThisPath = (s: JaegerSpan) => String(spanTag(s, 'http.url') ?? '').includes(path);
    const trace = await findTrace(
      'hello',
      (s, t) =>
        ofThisPath(s) &&
        spanService(t, s) === 'hello' &&
        t.spans.some((o) => ofThisPath(o) && spanService(t, o) === 'world'),
      `a trace of ${path} in Jaeger with spans of hello and world`,
    );
    const ofPath = trace.spans.filter(ofThisPath);
    const services = new Set(ofPath.map((s) => spanService(trace, s)));
    expect(services).toEqual(new Set(['hello', 'world']));
    // One trace: world's inbound span is a child of hello's outbound span.
    const outbound = ofPath.find((s) => spanService(trace, s) === 'hello')!;
    const inbound = ofPath.find((s) => spanService(trace, s) === 'world')!;
    expect(inbound.traceID).toBe(outbound.traceID);
    expect(inbound.references).toContainEqual(
      expect.objectContaining({ refType: 'CHILD_OF', spanID: outbound.spanID }),
    );
    expect(spanTag(outbound, 'upstream_cluster')).toBe('world');
  });

  it('the access log lines of a request: route, upstream cluster, response code, caller SPIFFE ID', async () => {
    const path = `/logged-${randomUUID()}`;
    expect((await a!.call('world', path)).status).toBe(200);
    // world's inbound listener, default JSON format: the caller is hello, by its certificate.
    let line: Record<string, unknown> | undefined;
    await waitFor(
      () => {
        if (!existsSync(worldLog)) return false;
        line = readFileSync(worldLog, 'utf8')
          .split('\n')
          .filter((l) => l.includes(path))
          .map((l) => JSON.parse(l) as Record<string, unknown>)[0];
        return line !== undefined;
      },
      // Envoy writes access log files every 10 s (its --file-flush-interval-msec default).
      { what: `world's access log line for ${path}`, timeoutMs: 30_000 },
    );
    expect(line).toMatchObject({
      method: 'GET',
      path,
      response_code: 200,
      route_name: 'inbound|world-1',
      upstream_cluster: 'local_app|world-1',
    });
    expect(String(line!.downstream_peer_uri_san)).toMatch(
      new RegExp(`^${TRUST_DOMAIN_PREFIX}[^/]+/ns/[^/]+/svc/hello$`),
    );
    expect(String(line!.trace_id)).toMatch(/^[0-9a-f]{32}$/);
    // hello's outbound listener, its own text format: the route it took to world.
    await waitFor(
      () => existsSync(helloLog) && readFileSync(helloLog, 'utf8').includes(`path=${path}`),
      { what: `hello's access log line for ${path}`, timeoutMs: 30_000 },
    );
    const text = readFileSync(helloLog, 'utf8')
      .split('\n')
      .find((l) => l.includes(`path=${path}`));
    expect(text).toBe(`route=world/0 cluster=world code=200 path=${path}`);
  });

  it('a catalog edit is a control-plane trace whose push spans name the proxies', async () => {
    const before = cp!.store.snapshot?.version;
    catalog.write(doc(2));
    await waitFor(() => cp!.store.snapshot?.version !== before, {
      what: 'the snapshot of the edit',
    });
    const version = cp!.store.snapshot!.version;
    const trace = await findTrace(
      'lucid-mesh',
      (s) => s.operationName === 'config change' && spanTag(s, 'lucid.version') === version,
      `the control-plane trace of snapshot ${version}`,
    );
    const root = trace.spans.find((s) => s.operationName === 'config change')!;
    expect(spanTag(root, 'lucid.previous_version')).toBe(before);
    expect(spanTag(root, 'lucid.outcome')).toBe('converged');
    const names = trace.spans.map((s) => s.operationName);
    for (const phase of ['build snapshot', 'debounce', 'mesh build', 'translate', 'encode']) {
      expect(names).toContain(phase);
    }
    // world's endpoints changed: both proxies were pushed EDS and ACKed it.
    const eds = trace.spans.find((s) => s.operationName === 'push EDS')!;
    expect(eds).toBeDefined();
    expect(JSON.stringify(spanTag(eds, 'lucid.proxies'))).toContain('hello-1');
    expect(JSON.stringify(spanTag(eds, 'lucid.proxies'))).toContain('world-1');
    for (const node of ['hello-1', 'world-1']) {
      const push = trace.spans.find((s) => s.operationName === `push EDS ${node}`);
      expect(push, `push EDS ${node}`).toBeDefined();
      expect(spanTag(push!, 'lucid.node')).toBe(node);
      expect(spanTag(push!, 'lucid.acked')).toBe(true);
    }
  });

  it('OTLP access logs: the collector gets a record per sidecar with route, code and caller', async () => {
    // Both sidecars switch to proxy-defaults' otlp log (no service-defaults AccessLogs).
    traffic.write([
      {
        Kind: 'proxy-defaults',
        Name: 'global',
        Tracing: { Collector: jaeger!.otlpAddress, SamplingPercent: 100 },
        AccessLogs: { Enabled: true, Type: 'otlp' },
      },
    ]);
    const path = `/otlp-${randomUUID()}`;
    const of = (service: string): OtlpLogRecord[] =>
      logSink!.records.filter(
        (r) => r.resource['service.name'] === service && r.attributes.path === path,
      );
    // Until the new listeners are in, requests are logged to the files: call again each round,
    // until both hops of one request (one trace) are in.
    const [inbound, outbound] = await waitFor(
      async () => {
        expect((await a!.call('world', path)).status).toBe(200);
        const outs = of('hello');
        for (const r of of('world')) {
          const out = outs.find((o) => o.attributes.trace_id === r.attributes.trace_id);
          if (out) return [r, out] as const;
        }
        return undefined;
      },
      {
        what: `OTLP log records of ${path} from both sidecars`,
        timeoutMs: 30_000,
        intervalMs: 1000,
        details: () => `${logSink!.records.length} records; jaeger: ${jaeger!.logs()}`,
      },
    );
    expect(inbound.attributes).toMatchObject({
      method: 'GET',
      response_code: '200',
      route_name: 'inbound|world-1',
      upstream_cluster: 'local_app|world-1',
    });
    expect(String(inbound.attributes.downstream_peer_uri_san)).toMatch(
      new RegExp(`^${TRUST_DOMAIN_PREFIX}[^/]+/ns/[^/]+/svc/hello$`),
    );
    expect(inbound.body).toBe(`GET ${path} HTTP/1.1 200`);
    expect(inbound.resource).toMatchObject({ log_name: 'lucid-mesh-access-log' });
    // The record belongs to the request's trace: Envoy sets it, and %TRACE_ID% agrees.
    expect(String(inbound.attributes.trace_id)).toMatch(/^[0-9a-f]{32}$/);
    expect(inbound.traceId).toBe(inbound.attributes.trace_id);
    expect(outbound.attributes).toMatchObject({
      response_code: '200',
      route_name: 'world/0',
      upstream_cluster: 'world',
    });
    expect(outbound.traceId).toBe(inbound.traceId);
  });
});
