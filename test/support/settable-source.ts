// A control plane in the test process on loopback ports, fed by a source the test drives: the
// set-up of tests that watch what a running control plane reports (/metrics, /v1/convergence).
import { startControlPlane, type RunningControlPlane } from '../../src/app.js';
import type { Catalog } from '../../src/catalog/model.js';
import type { CatalogSink, DiscoverySource } from '../../src/sources/source.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { waitFor } from './wait.js';

/** Delivers `first` at start; then whatever the test sets, or a failure reported once. */
export class SettableSource implements DiscoverySource {
  private sink: CatalogSink | undefined;
  constructor(
    private readonly first: Catalog,
    readonly name = 'test',
  ) {}
  async start(sink: CatalogSink): Promise<void> {
    this.sink = sink;
    sink.update(this.first);
  }
  set(catalog: Catalog): void {
    this.sink?.update(catalog);
  }
  /** As the file source does with a refused edit: reported once, the last catalog kept. */
  fail(message: string): void {
    this.sink?.error(new Error(message));
  }
  async stop(): Promise<void> {}
}

/** A control plane on 127.0.0.1 (ports chosen by the OS, debounce 5 ms), once it has a snapshot. */
export async function startLoopbackControlPlane(
  source: DiscoverySource,
  more: Partial<Parameters<typeof startControlPlane>[0]> = {},
): Promise<RunningControlPlane> {
  const cp = await startControlPlane({
    source,
    logger: silentLogger,
    host: '127.0.0.1',
    xdsPort: 0,
    adminPort: 0,
    debounceMs: 5,
    maxDebounceMs: 20,
    ...more,
  });
  await waitFor(() => cp.store.ready, { what: 'the first snapshot' });
  return cp;
}

/** GET `path` on the control plane's admin port; must answer 200. */
export async function adminGet(cp: RunningControlPlane, path: string): Promise<Response> {
  const res = await fetch(`http://127.0.0.1:${cp.adminPort}${path}`);
  if (res.status !== 200) throw new Error(`GET ${path}: HTTP ${res.status}: ${await res.text()}`);
  return res;
}

/** The changes /v1/convergence lists, and how many lucid_mesh_convergence_seconds observed. */
export async function convergenceOf(
  cp: RunningControlPlane,
): Promise<{ changes: Array<{ seconds: number }>; observations: number }> {
  const { changes } = (await (await adminGet(cp, '/v1/convergence')).json()) as {
    changes: Array<{ seconds: number }>;
  };
  const metrics = await (await adminGet(cp, '/metrics')).text();
  const count = /^lucid_mesh_convergence_seconds_count (\d+)$/m.exec(metrics)?.[1];
  return { changes, observations: Number(count) };
}
