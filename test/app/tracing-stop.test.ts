// serve --tracing-otlp with a collector that is down at shutdown: stopping the control plane
// must neither fail on nor wait out the exporter's last flush. Real SDK and OTLP gRPC exporter
// against a port that refuses connections, and one that accepts and never answers.
import { createServer, type Socket } from 'node:net';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import { parseCatalog } from '../../src/catalog/schema.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { startControlPlaneTracing } from '../../src/telemetry/tracing.js';
import { twoServices } from '../support/control-plane.js';
import { CatalogFile, startTestControlPlane } from '../support/mesh.js';
import { freePort } from '../support/ports.js';

describe('stopping control-plane tracing whose collector is down', () => {
  const catalog = new CatalogFile();
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('serve stop resolves promptly when the collector refuses connections', async () => {
    catalog.write(twoServices());
    cleanups.push(() => catalog.remove());
    const port = await freePort(); // probed and closed: connecting is refused
    let cp: RunningControlPlane | undefined = await startTestControlPlane(
      catalog,
      {},
      { controlPlaneTracing: { collector: { host: '127.0.0.1', port } } },
    );
    cleanups.push(() => cp?.stop());
    // A built snapshot opens a change trace; stop ends it, so there is a span to flush.
    await expect.poll(() => cp?.store.snapshot?.version, { timeout: 5000 }).toBeDefined();
    const started = Date.now();
    const stopping = cp.stop();
    cp = undefined;
    await expect(stopping).resolves.toBeUndefined();
    expect(Date.now() - started).toBeLessThan(4000);
  });

  it('gives up after stopTimeoutMs on a collector that never answers, and logs the loss', async () => {
    // Accepts the TCP connection and says nothing: the gRPC export hangs until its own timeout.
    const sockets = new Set<Socket>();
    const silent = createServer((s) => sockets.add(s));
    await new Promise<void>((done) => silent.listen(0, '127.0.0.1', done));
    cleanups.push(
      () =>
        new Promise<void>((done) => {
          for (const s of sockets) s.destroy();
          silent.close(() => done());
        }),
    );
    const address = silent.address();
    if (!address || typeof address === 'string') throw new Error('no port');
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
    const store = new SnapshotStore({ logger: silentLogger, debounceMs: 0 });
    cleanups.push(() => store.close());
    const tracing = await startControlPlaneTracing({
      collector: { host: '127.0.0.1', port: address.port },
      store,
      logger,
      stopTimeoutMs: 300,
    });
    store.setCatalog(parseCatalog(twoServices()));
    store.flush();
    const started = Date.now();
    await expect(tracing.stop()).resolves.toBeUndefined();
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(3000);
    expect(lines.join('')).toContain('control-plane tracing: last spans lost');
    expect(lines.join('')).toContain('exporter shutdown took over 300 ms');
  });
});
