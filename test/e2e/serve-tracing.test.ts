// The control plane's own traces from `lucid-mesh serve` run as a process, into a real Jaeger
// v2: with `--tracing-otlp`, and with no flag from a proxy-defaults entry in the traffic file
// (Consul's Config form, lucid_tracing_collector), which also turns them off when it goes away.
// A real Envoy sidecar is connected so the push spans have a proxy to name. One Jaeger.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { renderBootstrap } from '../../src/bootstrap/render.js';
import { spawnCli } from '../support/cli-process.js';
import { startEnvoy, type EnvoyHandle } from '../support/envoy.js';
import { httpGet } from '../support/http-app.js';
import {
  JAEGER_SETUP_TIMEOUT_MS,
  spanTag,
  startJaeger,
  type Jaeger,
  type JaegerTrace,
} from '../support/jaeger.js';
import { CatalogFile } from '../support/mesh.js';
import { freePorts } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

/** A catalog of `n` services; hello (with the sidecar's node hello-1) first. */
const services = (n: number) => ({
  services: Array.from({ length: n }, (_, i) => ({
    name: i === 0 ? 'hello' : `svc-${i}`,
    instances: [{ id: i === 0 ? 'hello-1' : `svc-${i}-1`, address: '127.0.0.1', port: 9100 + i }],
  })),
});

interface Serve {
  readonly xdsPort: number;
  readonly adminPort: number;
  output(): string;
  stop(): Promise<void>;
}

describe('serve traces its own work into a real Jaeger', () => {
  let jaeger: Jaeger;
  const cleanups: Array<() => Promise<void> | void> = [];

  beforeAll(async () => {
    jaeger = await startJaeger();
  }, JAEGER_SETUP_TIMEOUT_MS);
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  afterAll(async () => {
    await jaeger?.stop();
  });

  async function serve(args: string[]): Promise<Serve> {
    const [xdsPort, adminPort] = (await freePorts(2)) as [number, number];
    const dataDir = mkdtempSync(join(tmpdir(), 'lucid-serve-tracing-'));
    // No TRACING_ENABLED / OTEL_* from the environment running the tests.
    const p = spawnCli(
      [
        ...['serve', '--host', '127.0.0.1'],
        ...['--xds-port', String(xdsPort), '--admin-port', String(adminPort)],
        ...['--data-dir', dataDir, '--mtls', 'off', '--auth', 'none', '--admin-auth', 'none'],
        ...args,
      ],
      { TRACING_ENABLED: '', OTEL_EXPORTER_OTLP_ENDPOINT: '' },
    );
    const s: Serve = {
      xdsPort,
      adminPort,
      output: p.output,
      async stop() {
        await p.stop();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
    cleanups.push(() => s.stop());
    await waitFor(
      async () =>
        (await httpGet(`http://127.0.0.1:${adminPort}/ready`).catch(() => undefined))?.status ===
        200,
      { what: 'serve /ready', timeoutMs: 30_000, details: p.output },
    );
    return s;
  }

  async function sidecar(s: Serve): Promise<EnvoyHandle> {
    const [adminPort, outboundPort] = (await freePorts(2)) as [number, number];
    const envoy = await startEnvoy({
      name: 'serve-tracing-hello-1',
      adminPort,
      bootstrapYaml: renderBootstrap({
        nodeId: 'hello-1',
        service: 'hello',
        xds: `127.0.0.1:${s.xdsPort}`,
        adminPort,
        outboundPort,
        dnsPort: 0,
      }),
    });
    cleanups.push(() => envoy.stop());
    await envoy.waitFor(
      async () => (await envoy.stat('cluster_manager.cds.update_success')) ?? 0,
      'hello-1 has its clusters',
    );
    return envoy;
  }

  /** The control-plane trace of the change that made the catalog `count` services. */
  function changeTrace(count: number, timeoutMs = 30_000): Promise<JaegerTrace> {
    return waitFor(
      async () =>
        (await jaeger.traces('lucid-mesh', 100)).find((t) =>
          t.spans.some(
            (s) => s.operationName === 'config change' && spanTag(s, 'lucid.services') === count,
          ),
        ),
      { what: `a control-plane trace with ${count} services`, timeoutMs, intervalMs: 300 },
    );
  }

  /** The proxies its CDS push names, and that hello-1 ACKed its own push span. */
  function expectPushToHello(trace: JaegerTrace): void {
    const cds = trace.spans.find((s) => s.operationName === 'push CDS');
    expect(cds, 'push CDS').toBeDefined();
    expect(spanTag(cds!, 'lucid.proxies')).toContain('hello-1');
    const own = trace.spans.find((s) => s.operationName === 'push CDS hello-1');
    expect(own, 'push CDS hello-1').toBeDefined();
    expect(spanTag(own!, 'lucid.node')).toBe('hello-1');
    expect(spanTag(own!, 'lucid.acked')).toBe(true);
    const root = trace.spans.find((s) => s.operationName === 'config change')!;
    expect(spanTag(root, 'lucid.outcome')).toBe('converged');
  }

  it('serve --tracing-otlp: a catalog edit is a trace whose push spans name the proxy', async () => {
    const catalog = new CatalogFile();
    cleanups.push(() => catalog.remove());
    catalog.write(services(2));
    const s = await serve(['--catalog', catalog.path, '--tracing-otlp', jaeger.otlpAddress]);
    expect(s.output()).toContain('control-plane tracing on');
    await sidecar(s);
    catalog.write(services(3));
    expectPushToHello(await changeTrace(3));
  });

  it('no flag: a proxy-defaults entry (Config lucid_tracing_collector) turns the traces on, and off when removed', async () => {
    const catalog = new CatalogFile();
    const traffic = new CatalogFile('traffic.yaml');
    cleanups.push(
      () => catalog.remove(),
      () => traffic.remove(),
    );
    catalog.write(services(4));
    traffic.write([{ Kind: 'proxy-defaults', Name: 'global', Config: { protocol: 'http' } }]);
    const s = await serve(['--catalog', catalog.path, '--traffic', traffic.path]);
    expect(s.output()).not.toContain('control-plane tracing on');
    const envoy = await sidecar(s);
    traffic.write([
      {
        Kind: 'proxy-defaults',
        Name: 'global',
        Config: { protocol: 'http', lucid_tracing_collector: jaeger.otlpAddress },
      },
    ]);
    await waitFor(() => s.output().includes('control-plane tracing on'), {
      what: 'tracing turned on by the entry',
      details: s.output,
    });
    catalog.write(services(5));
    expectPushToHello(await changeTrace(5));

    // The entry goes away: the control plane stops tracing (and says so).
    traffic.write([{ Kind: 'proxy-defaults', Name: 'global', Config: { protocol: 'http' } }]);
    await waitFor(() => s.output().includes('control-plane tracing off (entry)'), {
      what: 'tracing turned off with the entry',
      details: s.output,
    });
    catalog.write(services(6));
    // The change reaches the sidecar (its sixth service's cluster)...
    await envoy.waitFor(
      async () => (await envoy.clusters()).includes('svc-5::'),
      'the sixth service at hello-1',
    );
    // ...and no trace of it reaches Jaeger within 3 exporter intervals (they flush every 1 s).
    await new Promise((r) => setTimeout(r, 3_000));
    const traces = await jaeger.traces('lucid-mesh', 100);
    expect(
      traces.some((t) =>
        t.spans.some(
          (x) => x.operationName === 'config change' && spanTag(x, 'lucid.services') === 6,
        ),
      ),
    ).toBe(false);
  });
});
