// Per-proxy fault isolation: one proxy whose own resources fail to build keeps its last good
// config (or, with none, is not served yet); the failure is logged once with its node, counted
// and shown in `status`; every other proxy of the fan-out is served.
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { proxyRows } from '../../src/admin/proxies.js';
import { parseCatalog } from '../../src/catalog/schema.js';
import { renderStatus } from '../../src/cli/status-command.js';
import type { MeshProxy } from '../../src/mesh/types.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { Metrics } from '../../src/telemetry/metrics.js';
import { translateProxy } from '../../src/translate/index.js';
import { XdsCounters } from '../../src/xds/observer.js';
import { XdsServer } from '../../src/xds/server.js';
import {
  ack,
  deltaClient,
  namesOf,
  node,
  sotwClient,
  typeUrl,
  type DeltaStreamClient,
  type SotwStreamClient,
} from '../support/ads-client.js';
import { writeReliabilityResult } from '../support/reliability.js';
import { waitFor } from '../support/wait.js';

/**
 * `world` moves between addresses 127.0.1.N: a change every proxy subscribed to it is owed.
 */
function catalog(worldHost: number) {
  return parseCatalog({
    services: [
      {
        name: 'hello',
        instances: [
          // Its app port follows too, so hello-1's own resources must be built again.
          { id: 'hello-1', address: '127.0.0.1', port: 9100 + worldHost, sidecarPort: 19101 },
          { id: 'hello-2', address: '127.0.0.2', port: 9101, sidecarPort: 19101 },
          { id: 'hello-3', address: '127.0.0.3', port: 9101, sidecarPort: 19101 },
        ],
      },
      {
        name: 'world',
        instances: [
          { id: 'world-1', address: `127.0.1.${worldHost}`, port: 9102, sidecarPort: 19102 },
        ],
      },
    ],
  });
}

interface LogLine {
  level: number;
  msg: string;
  node?: string;
}

let close: () => Promise<void> = async () => undefined;
afterEach(async () => {
  await close();
  close = async () => undefined;
});

async function start() {
  const lines: LogLine[] = [];
  const logger = pino(
    { level: 'info' },
    { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) },
  );
  /** Nodes whose inbound listener build throws (a translator bug that only some proxies hit). */
  const broken = new Set<string>();
  const store = new SnapshotStore({
    logger,
    debounceMs: 0,
    maxDebounceMs: 0,
    translateProxy: (mesh, proxy: MeshProxy) => {
      if (broken.has(proxy.nodeId)) throw new Error(`inbound listener of ${proxy.nodeId}: boom`);
      return translateProxy(mesh, proxy);
    },
  });
  const counters = new XdsCounters();
  const server = new XdsServer({ watcher: store, observer: counters, logger });
  const port = await server.listen('127.0.0.1', 0);
  const clients: Array<SotwStreamClient | DeltaStreamClient> = [];
  close = async () => {
    clients.forEach((c) => c.close());
    server.forceClose();
    store.close();
  };
  const apply = (worldHost: number) => {
    store.setCatalog(catalog(worldHost));
    store.flush();
  };
  const sotw = () => {
    const c = sotwClient(port);
    clients.push(c);
    return c;
  };
  const delta = () => {
    const c = deltaClient(port);
    clients.push(c);
    return c;
  };
  const errorLines = () => lines.filter((l) => l.level === 50 && l.node !== undefined);
  return { store, server, counters, apply, sotw, delta, broken, lines, errorLines };
}

/** The inbound listener's name of a node (our translators name it after the node). */
const hasInbound = (names: string[], id: string) => names.some((n) => n.includes(id));

describe('per-proxy fault isolation', () => {
  it('a proxy whose build throws keeps its last good config; the others are served', async () => {
    const t = await start();
    t.apply(1);
    // hello-1 is first in the fan-out: a failure there once stopped everyone after it.
    const eds = { typeUrl: typeUrl('endpoints'), resourceNames: ['world'] };
    const bad = t.sotw();
    bad.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('listeners') });
    const badFirst = await bad.next();
    expect(hasInbound(namesOf(badFirst), 'hello-1')).toBe(true);
    bad.send(ack(badFirst));
    bad.send(eds);
    bad.send(ack(await bad.next(), ['world']));
    const good = [t.sotw(), t.sotw()];
    good[0]!.send({ node: node('hello-2', 'hello'), ...eds });
    good[1]!.send({ node: node('hello-3', 'hello'), ...eds });
    for (const c of good) c.send(ack(await c.next(), ['world']));
    const deltaGood = t.delta();
    deltaGood.send({
      node: node('world-1', 'world'),
      typeUrl: typeUrl('endpoints'),
      resourceNamesSubscribe: ['world'],
    });
    await deltaGood.next();
    await waitFor(() => t.counters.acks >= 4, { what: 'the first ACKs' });

    t.broken.add('hello-1');
    t.apply(2); // world moves
    for (const c of good) {
      const update = await c.next();
      expect(JSON.stringify(update)).toContain('127.0.1.2');
      c.send(ack(update, ['world']));
    }
    expect(JSON.stringify(await deltaGood.next())).toContain('127.0.1.2');
    await bad.expectSilence(200); // keeps what it has: no partial or broken listener set

    expect(t.store.counters.proxyBuildErrors).toBeGreaterThanOrEqual(1);
    const rows = proxyRows(t.server.connected.values());
    const badRow = rows.find((r) => r.nodeId === 'hello-1')!;
    expect(badRow.buildError?.message).toBe('inbound listener of hello-1: boom');
    expect(badRow.types.listeners?.status).toBe('SYNCED'); // still on its last good version
    expect(rows.filter((r) => r.buildError)).toHaveLength(1);
    expect(renderStatus(rows)).toContain(
      `hello-1 BUILD ERROR since ${badRow.buildError!.since} (keeps its last good config): inbound listener of hello-1: boom`,
    );
    // A second change with the same failure: counted again, not logged again.
    const counted = t.store.counters.proxyBuildErrors;
    const firstCount = counted;
    t.apply(3);
    for (const c of good) expect(JSON.stringify(await c.next())).toContain('127.0.1.3');
    expect(t.store.counters.proxyBuildErrors).toBeGreaterThan(counted);
    expect(t.errorLines().filter((l) => l.node === 'hello-1')).toHaveLength(1);
    expect(t.errorLines()[0]!.msg).toContain('keeps its last good configuration');

    // Fixed: the proxy gets the current config and the error is gone.
    t.broken.delete('hello-1');
    t.apply(4);
    expect(JSON.stringify(await bad.next())).toContain('127.0.1.4');
    expect(proxyRows(t.server.connected.values()).every((r) => !r.buildError)).toBe(true);
    expect(t.store.cacheSizes().failingProxies).toBe(0);
    writeReliabilityResult({
      id: 'hostile-proxy-isolation',
      section: 'hostile',
      test: 'test/snapshot/proxy-isolation.test.ts',
      fault:
        "One proxy's own resources fail to build (a translator bug hit by one node), first in the fan-out",
      behaviour:
        'That proxy keeps its last good config (with none yet, it is not served until a build succeeds); every other ' +
        'proxy of the pass is served. Logged once per node and episode (error, with the node id), counted in ' +
        '`lucid_mesh_proxy_build_errors_total`, shown in `/v1/proxies` (`buildError`) and `lucid-mesh status`.',
      figures:
        `1 of 4 proxies (3 SotW, 1 delta) failing over 2 catalog changes: the 3 others got both changes, the failing ` +
        `one nothing; ${t.errorLines().filter((l) => l.node === 'hello-1').length} error line ` +
        `("${t.errorLines()[0]!.msg}"), the counter ${firstCount} → ${t.store.counters.proxyBuildErrors}; ` +
        '`status`: "hello-1 BUILD ERROR since … (keeps its last good config): inbound listener of hello-1: boom". ' +
        'Fixed, it got the current config at the next change and the error cleared.',
    });
  });

  it('a proxy that fails from its first request is not served until its build succeeds', async () => {
    const t = await start();
    t.apply(1);
    t.broken.add('hello-2');
    const bad = t.delta();
    bad.send({ node: node('hello-2', 'hello'), typeUrl: typeUrl('listeners') });
    const other = t.delta();
    other.send({ node: node('hello-3', 'hello'), typeUrl: typeUrl('listeners') });
    expect(
      hasInbound(
        (await other.next()).resources!.map((r) => r.name!),
        'hello-3',
      ),
    ).toBe(true);
    await bad.expectSilence(200);
    await waitFor(
      () => proxyRows(t.server.connected.values()).find((r) => r.nodeId === 'hello-2')?.buildError,
      { what: 'the build error in /v1/proxies' },
    );
    t.broken.delete('hello-2');
    t.apply(2);
    const first = await bad.next();
    expect(
      hasInbound(
        first.resources!.map((r) => r.name!),
        'hello-2',
      ),
    ).toBe(true);
  });

  it('exports the count as lucid_mesh_proxy_build_errors_total', async () => {
    const t = await start();
    t.apply(1);
    t.broken.add('hello-1');
    const metrics = new Metrics({ store: t.store, streams: () => t.server.connected.values() });
    const c = t.sotw();
    c.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
    await waitFor(() => t.store.counters.proxyBuildErrors > 0, { what: 'a failed build' });
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^lucid_mesh_proxy_build_errors_total [1-9]/m);
  });
});
