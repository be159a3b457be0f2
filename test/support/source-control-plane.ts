// The control plane of the end-to-end tests on a catalog source of its own (a real Consul or
// etcd) rather than a watched file (mesh.ts's startTestControlPlane), and those sources as the
// tests configure them: retries capped at 1 s, so a test's outage ends within a second of the
// component coming back.
import {
  startControlPlane,
  type ControlPlaneOptions,
  type RunningControlPlane,
} from '../../src/app.js';
import { ConsulSource } from '../../src/sources/consul/consul-source.js';
import { EtcdSource } from '../../src/sources/etcd/etcd-source.js';
import type { DiscoverySource } from '../../src/sources/source.js';
import { silentLogger } from '../../src/telemetry/logger.js';

/** Debounce of most tests' control planes: a catalog change is built at once (serve: 100 ms). */
export const QUICK_DEBOUNCE = { debounceMs: 20, maxDebounceMs: 200 } as const;

/**
 * The control plane as `lucid-mesh serve` composes it, on `source`, on loopback: xDS on
 * `xdsPort` (default any), admin on a free port, silent, serve's default debounce unless `rest`
 * says otherwise (e.g. QUICK_DEBOUNCE).
 */
export function startSourceControlPlane(
  source: DiscoverySource,
  rest: Partial<Omit<ControlPlaneOptions, 'source'>> = {},
): Promise<RunningControlPlane> {
  return startControlPlane({
    source,
    logger: silentLogger,
    host: '127.0.0.1',
    xdsPort: 0,
    adminPort: 0,
    ...rest,
  });
}

/** A ConsulSource on a test agent's HTTP API (plaintext), blocking queries of `waitMs`. */
export function consulTestSource(consul: { httpPort: number }, waitMs: number): ConsulSource {
  return new ConsulSource(
    {
      connection: { secure: false, host: '127.0.0.1', port: consul.httpPort },
      waitMs,
      backoffMaxMs: 1_000,
    },
    silentLogger,
  );
}

/** An EtcdSource on one endpoint (often a test's cuttable TCP proxy) under `prefix`. */
export function etcdTestSource(endpoint: string, prefix: string): EtcdSource {
  return new EtcdSource(
    { endpoints: [endpoint], prefix, retryMinMs: 100, retryMaxMs: 1_000 },
    silentLogger,
  );
}
