// A control plane in the test process: snapshot store + xDS server on a free port.
import { afterEach } from 'vitest';
import type { Catalog } from '../../src/catalog/model.js';
import { parseCatalog } from '../../src/catalog/schema.js';
import type { ResourceKind } from '../../src/protos/envoy.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { XdsCounters } from '../../src/xds/observer.js';
import { XdsServer } from '../../src/xds/server.js';
import type { DeltaDiscoveryRequest, DeltaDiscoveryResponse } from '../../src/xds/messages.js';
import {
  deltaClient,
  sotwClient,
  type DeltaStreamClient,
  type SotwStreamClient,
} from './ads-client.js';

export interface TestControlPlane {
  store: SnapshotStore;
  server: XdsServer;
  counters: XdsCounters;
  port: number;
  /** Parses a catalog document and applies it immediately (no debounce wait). */
  apply(doc: unknown): Catalog;
  close(): Promise<void>;
}

export async function startControlPlane(
  opts: { catalog?: unknown; port?: number } = {},
): Promise<TestControlPlane> {
  const store = new SnapshotStore({ logger: silentLogger, debounceMs: 10, maxDebounceMs: 50 });
  const counters = new XdsCounters();
  const server = new XdsServer({ watcher: store, observer: counters, logger: silentLogger });
  const port = await server.listen('127.0.0.1', opts.port ?? 0);
  const apply = (doc: unknown): Catalog => {
    const catalog = parseCatalog(doc);
    store.setCatalog(catalog);
    store.flush();
    return catalog;
  };
  if (opts.catalog !== undefined) apply(opts.catalog);
  return {
    store,
    server,
    counters,
    port,
    apply,
    close: async () => {
      server.forceClose();
      store.close();
    },
  };
}

/** A small two-service catalog document used by many tests. */
export function twoServices(extra: { worldInstances?: unknown[]; more?: unknown[] } = {}): unknown {
  return {
    services: [
      {
        name: 'hello',
        instances: [{ id: 'hello-1', address: '127.0.0.1', port: 9101, sidecarPort: 19101 }],
      },
      {
        name: 'world',
        instances: extra.worldInstances ?? [
          { id: 'world-1', address: '127.0.0.1', port: 9102, sidecarPort: 19102 },
        ],
      },
      ...(extra.more ?? []),
    ],
  };
}

/** twoServices with a second world instance: a change to world's endpoints only. */
export function twoServicesWithWorld2(): unknown {
  return twoServices({
    worldInstances: [
      { id: 'world-1', address: '127.0.0.1', port: 9102, sidecarPort: 19102 },
      { id: 'world-2', address: '127.0.0.2', port: 9102, sidecarPort: 19102 },
    ],
  });
}

/**
 * For protocol tests: a control plane and clients per test, all closed after each test.
 * `start` replaces (and closes) the current control plane, e.g. to simulate a restart.
 */
export function protocolFixture() {
  let current: TestControlPlane | undefined;
  const replicas: TestControlPlane[] = [];
  const clients: Array<{ close(): void }> = [];
  afterEach(async () => {
    clients.splice(0).forEach((c) => c.close());
    await current?.close();
    current = undefined;
    for (const r of replicas.splice(0).reverse()) await r.close();
  });
  const track = <C extends { close(): void }>(c: C): C => {
    clients.push(c);
    return c;
  };
  return {
    async start(opts: { catalog?: unknown; port?: number } = {}): Promise<TestControlPlane> {
      await current?.close();
      current = await startControlPlane(opts);
      return current;
    },
    /** Two replicas serving the same catalog (default twoServices()), as for a failover. */
    async replicas(
      catalog: unknown = twoServices(),
    ): Promise<[TestControlPlane, TestControlPlane]> {
      const a = await startControlPlane({ catalog });
      replicas.push(a);
      const b = await startControlPlane({ catalog });
      replicas.push(b);
      return [a, b];
    },
    sotw: (port: number, token?: string): SotwStreamClient => track(sotwClient(port, token)),
    delta: (port: number, token?: string): DeltaStreamClient => track(deltaClient(port, token)),
    /**
     * A delta stream of its own that sends `request`, and is closed once the first response
     * has come (a proxy that goes away with what it was sent, or reconnects holding versions).
     */
    async deltaOnce(port: number, request: DeltaDiscoveryRequest): Promise<DeltaDiscoveryResponse> {
      const c = track(deltaClient(port));
      c.send(request);
      const res = await c.next();
      c.close();
      return res;
    },
  };
}

/** The stream of the proxy `nodeId` on `cp` (undefined if not connected). */
export function streamOf(cp: TestControlPlane, nodeId: string) {
  return [...cp.server.connected.values()].find((s) => s.proxy?.nodeId === nodeId);
}

/** How `cp` tracks `kind` on the stream of the proxy `nodeId` (undefined if not connected). */
export function statusOf(cp: TestControlPlane, nodeId: string, kind: ResourceKind) {
  return streamOf(cp, nodeId)?.types.get(kind);
}
