// No map grows without bound with what clients choose: node ids (and the service, outbound
// port and locality a node claims), type URLs, resource names, event filters. Each is tried
// here with many distinct values; the structures stay at their bound or go back to where
// they were.
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { connect } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { parseCatalog } from '../../src/catalog/schema.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { EventHub } from '../../src/telemetry/events.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { internedSize } from '../../src/xds/name-set.js';
import { XdsCounters } from '../../src/xds/observer.js';
import { requestedNamesTableSize } from '../../src/xds/requested-names.js';
import { XdsServer } from '../../src/xds/server.js';
import { MAX_NAMES_PER_TYPE } from '../../src/xds/limits.js';
import { deltaClient, node, sotwClient, typeUrl } from '../support/ads-client.js';
import { twoServices } from '../support/control-plane.js';
import { waitFor } from '../support/wait.js';
import {
  describeMemory,
  quoted,
  sampleMemory,
  writeReliabilityResult,
} from '../support/reliability.js';

const cleanup: Array<() => void> = [];
afterEach(() => {
  cleanup.splice(0).forEach((f) => f());
});

const random = () => randomBytes(9).toString('base64url');

async function start(catalog: unknown = twoServices()) {
  const store = new SnapshotStore({ logger: silentLogger, debounceMs: 0, maxDebounceMs: 0 });
  store.setCatalog(parseCatalog(catalog));
  const counters = new XdsCounters();
  // No request rate: these tests send fast on purpose, and count what is kept, not the pace.
  const server = new XdsServer({
    watcher: store,
    observer: counters,
    logger: silentLogger,
    limits: { requestRate: 0, streamRate: 0 },
  });
  const port = await server.listen('127.0.0.1', 0);
  cleanup.push(() => {
    server.forceClose();
    store.close();
  });
  return { store, server, counters, port };
}

/** A mesh with a service in two datacenters, so where a caller is matters (locality snapshots). */
const failoverMesh = {
  services: [
    {
      name: 'api',
      instances: [
        { id: 'api-1', address: '10.0.0.1', port: 80, sidecarPort: 15006 },
        { id: 'api-2', address: '10.0.1.1', port: 80, sidecarPort: 15006, datacenter: 'dc2' },
      ],
    },
  ],
};

describe('maps keyed by client input stay bounded', () => {
  it('node ids, services, outbound ports, localities: 1,500 made-up proxies come and go; nothing stays', async () => {
    const cp = await start(failoverMesh);
    const client = new grpc.Client(`127.0.0.1:${cp.port}`, grpc.credentials.createInsecure());
    cleanup.push(() => client.close());
    const before = cp.store.cacheSizes();
    const memoryBefore = sampleMemory();
    let peak = before;
    let maxLocalities = 0;
    // Heap after GC once each wave has left: the test process holds the clients too, so the
    // first wave's figure is the baseline and later waves must not add to it.
    const afterWave: ReturnType<typeof sampleMemory>[] = [];
    for (let round = 0; round < 3; round++) {
      const streams = Array.from({ length: 500 }, () => {
        const c = sotwClient(cp.port);
        c.send({
          node: {
            id: random(),
            cluster: random(),
            metadata: {
              service: random(),
              outbound_port: 1024 + Math.floor(Math.random() * 60_000),
              datacenter: `dc-${random()}`,
            },
            locality: { region: `r-${random()}`, zone: `z-${random()}` },
          },
          typeUrl: typeUrl('listeners'),
        });
        return c;
      });
      await Promise.all(streams.map((c) => c.next(10_000)));
      const sizes = cp.store.cacheSizes();
      if (sizes.encoded > peak.encoded) peak = sizes;
      // While they are connected: one view per proxy, localities at their bound.
      expect(sizes.views).toBe(500);
      expect(sizes.localities).toBeLessThanOrEqual(256);
      maxLocalities = Math.max(maxLocalities, sizes.localities);
      streams.forEach((c) => c.close());
      await waitFor(() => cp.server.connected.size === 0, { what: 'every stream gone' });
      afterWave.push(sampleMemory());
    }
    const after = cp.store.cacheSizes();
    expect(after).toMatchObject({ views: 0, ownResources: 0, failingProxies: 0 });
    // Encoder entries added by proxies' own resources are bounded by what connected proxies
    // account for (8 each, plus slack) until the next build sweeps them.
    expect(after.encoded - after.encodedAtBuild).toBeLessThanOrEqual(8 * 500 + 4096);
    // Locality snapshots, by their bound, until the next build.
    expect(after.localities).toBeLessThanOrEqual(256);
    // The next catalog change sweeps the rest.
    cp.store.setCatalog(
      parseCatalog({ ...failoverMesh, services: [...failoverMesh.services, { name: 'x' }] }),
    );
    cp.store.flush();
    cp.store.setCatalog(parseCatalog(failoverMesh));
    cp.store.flush();
    const swept = cp.store.cacheSizes();
    expect(swept.localities).toBe(0);
    expect(swept.encoded).toBeLessThanOrEqual(before.encoded + 2);
    const memoryAfter = sampleMemory();
    const heaps = afterWave.map((m) => (m.heapBytes / 2 ** 20).toFixed(1)).join(' → ');
    writeReliabilityResult({
      id: 'hostile-node-ids',
      section: 'hostile',
      test: 'test/xds/bounded-maps.test.ts',
      fault:
        'Made-up node ids, services, outbound ports, datacenters, regions and zones (1,500 proxies in waves of 500)',
      behaviour:
        "A proxy's view and own resources go when its last stream does; locality snapshots are kept for at most 256 " +
        'localities (past that, built per use); own resources enter the encoder cache only up to 8 per connected ' +
        'proxy plus 4,096 (past that, encoded uncached); builds sweep the rest.',
      figures:
        `While a wave was connected: 500 views, at most ${maxLocalities} locality snapshots, encoder at most ` +
        `${peak.encoded.toLocaleString('en')} entries. After each wave left: ${after.views} views, ` +
        `${after.ownResources} own-resource entries; encoder ${before.encoded} → ${after.encoded} → ${swept.encoded} ` +
        `entries and localities ${after.localities} → ${swept.localities} after the next builds. ` +
        `Heap after GC once each wave had left: ${heaps} MiB (test process, clients included); ` +
        `${describeMemory(memoryBefore, memoryAfter)}.`,
      memoryBefore,
      memoryAfter,
    });
  });

  it('type URLs: 5,000 distinct unknown ones on one stream are counted, not kept', async () => {
    const cp = await start();
    const c = sotwClient(cp.port);
    cleanup.push(() => c.close());
    c.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('clusters') });
    await c.next();
    for (let i = 0; i < 5000; i++) c.send({ typeUrl: `type.googleapis.com/x.${random()}` });
    await waitFor(() => cp.counters.badRequests === 5000, { what: 'every request handled' });
    const info = [...cp.server.connected.values()][0]!;
    expect(info.types.size).toBe(1);
    expect(cp.counters.responsesByKind.size).toBe(1);
    writeReliabilityResult({
      id: 'hostile-type-urls',
      section: 'hostile',
      test: 'test/xds/bounded-maps.test.ts',
      fault: '5,000 distinct unknown `type_url`s on one stream',
      behaviour:
        'Ignored and counted (`lucid_mesh_xds_bad_requests_total`), logged at warn once per stream (then debug); ' +
        'nothing is kept per type URL.',
      figures:
        `${cp.counters.badRequests.toLocaleString('en')} bad requests counted; the stream's per-type status holds ` +
        `${info.types.size} entry (its real type), responses by kind ${cp.counters.responsesByKind.size}.`,
    });
  });

  it('resource names: 200,000 distinct SotW EDS names, interned and stand-ins bounded', async () => {
    const cp = await start();
    const c = sotwClient(cp.port);
    cleanup.push(() => c.close());
    c.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('endpoints'), resourceNames: [] });
    await c.next();
    for (let i = 0; i < 40; i++) {
      const names = Array.from({ length: 5000 }, random);
      c.send({ typeUrl: typeUrl('endpoints'), resourceNames: names });
      // Each gets empty stand-ins (Envoy must not wait for a name nothing has).
      const res = await c.next(10_000);
      expect(res.resources).toHaveLength(5000);
    }
    expect(internedSize().names).toBeLessThanOrEqual(500_000);
    expect(requestedNamesTableSize().entries).toBeLessThanOrEqual(4096);
    expect(requestedNamesTableSize().bytes).toBeLessThanOrEqual(64 * 1024 * 1024);
    expect(cp.store.cacheSizes().placeholders).toBe(1024);
    const mib = (b: number) => (b / 2 ** 20).toFixed(1);
    writeReliabilityResult({
      id: 'hostile-eds-names',
      section: 'hostile',
      test: 'test/xds/bounded-maps.test.ts',
      fault: '200,000 distinct EDS names on one SotW stream (40 requests of 5,000 made-up names)',
      behaviour:
        'Each request is answered with empty stand-ins (Envoy must not wait for a name nothing has). Subscriptions ' +
        'are interned in weak tables (an entry lives while a stream uses it; bounded by 20,000 sets / 500,000 names ' +
        'and 4,096 lists / 64 MiB); stand-ins for unknown EDS names are kept for 1,024 names.',
      figures:
        `After the 200,000: ${internedSize().names.toLocaleString('en')} interned names, ` +
        `${requestedNamesTableSize().entries.toLocaleString('en')} requested-name lists ` +
        `(${mib(requestedNamesTableSize().bytes)} MiB), ${cp.store.cacheSizes().placeholders.toLocaleString('en')} stand-ins kept.`,
    });
  });

  it('resource names: a delta stream subscribing or unsubscribing past the bound is ended', async () => {
    const cp = await start();
    const sub = deltaClient(cp.port);
    cleanup.push(() => sub.close());
    sub.send({ node: node('hello-1', 'hello'), typeUrl: typeUrl('endpoints') });
    await sub.next();
    const chunk = 20_000;
    for (let sent = 0; sent <= MAX_NAMES_PER_TYPE; sent += chunk) {
      sub.send({
        typeUrl: typeUrl('endpoints'),
        resourceNamesSubscribe: Array.from({ length: chunk }, random),
      });
    }
    const err = await sub.ended;
    expect(err?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(err?.details).toBe(
      `endpoints: more than ${MAX_NAMES_PER_TYPE} resource names subscribed or unsubscribed on one stream`,
    );

    // Unsubscribing names it never had: each is remembered until the next response, which
    // never comes for them; bounded the same way.
    const unsub = deltaClient(cp.port);
    cleanup.push(() => unsub.close());
    unsub.send({ node: node('hello-2', 'hello'), typeUrl: typeUrl('endpoints') });
    await unsub.next();
    for (let sent = 0; sent <= MAX_NAMES_PER_TYPE; sent += chunk) {
      unsub.send({
        typeUrl: typeUrl('endpoints'),
        resourceNamesUnsubscribe: Array.from({ length: chunk }, random),
      });
    }
    const unsubErr = await unsub.ended;
    expect(unsubErr?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    writeReliabilityResult({
      id: 'hostile-delta-names',
      section: 'hostile',
      test: 'test/xds/bounded-maps.test.ts',
      fault: `Subscribing, or unsubscribing names never held, past ${MAX_NAMES_PER_TYPE.toLocaleString('en')} names on one delta stream`,
      behaviour:
        `A delta stream past ${MAX_NAMES_PER_TYPE.toLocaleString('en')} names per type ends with \`RESOURCE_EXHAUSTED\` ` +
        '(an unsubscribed name is remembered until the next response, so both count).',
      figures:
        `Subscribe in chunks of ${chunk.toLocaleString('en')}: ended (${quoted(err?.details)}); unsubscribe the same way: ` +
        `ended (${grpc.status[unsubErr!.code]}).`,
    });
  });

  it('event filters: distinct node filters from 200 clients; at most --max-event-clients kept', async () => {
    const store = new SnapshotStore({ logger: silentLogger });
    const hub = new EventHub(store, () => [], { maxClients: 64 });
    const server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      hub.serveEvents(req, res, { node: url.searchParams.get('node') ?? undefined });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => {
      server.closeAllConnections();
      server.close();
    });
    const port = (server.address() as { port: number }).port;
    const statuses = await Promise.all(
      Array.from(
        { length: 200 },
        () =>
          new Promise<string>((resolve) => {
            const s = connect(port, '127.0.0.1');
            cleanup.push(() => s.destroy());
            s.once('data', (d: Buffer) => resolve(d.toString().slice(9, 12)));
            s.write(`GET /v1/events?node=${random()} HTTP/1.1\r\nhost: x\r\n\r\n`);
          }),
      ),
    );
    expect(statuses.filter((s) => s === '200')).toHaveLength(64);
    expect(statuses.filter((s) => s === '503')).toHaveLength(136);
    expect(hub.subscriberCount).toBe(64);
    writeReliabilityResult({
      id: 'hostile-max-event-clients',
      section: 'hostile',
      test: 'test/xds/bounded-maps.test.ts',
      fault: 'More SSE clients than `--max-event-clients` (64), each with its own `node` filter',
      behaviour:
        'Past the limit: `503` with `retry-after: 5` and a JSON reason, connection closed; the filters of refused ' +
        'clients are not kept.',
      figures:
        `200 clients with 200 distinct \`node\` filters: ${statuses.filter((s) => s === '200').length} served, ` +
        `${statuses.filter((s) => s === '503').length} refused; the hub keeps ${hub.subscriberCount} filters.`,
    });
  });
});
