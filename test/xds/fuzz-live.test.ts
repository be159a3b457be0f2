// A live control plane (the same composition as `lucid-mesh serve`) under 10,000 hostile
// requests over real gRPC streams, seeded and bounded in time: garbage bytes, mutated and
// field-shuffled requests, huge name lists, unknown types, wrong nonces and NACKs, the node
// changing mid-stream, streams that stop reading, SotW and delta. Meanwhile two well-behaved
// sidecars (SotW and delta) follow catalog changes. Afterwards: the server is up, both
// sidecars are SYNCED on the latest config with their ACKs recorded, nothing the hostile
// streams asked for is still held, and memory is back within 10 % of its baseline.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import { messageType } from '../../src/protos/envoy.js';
import { internedSize } from '../../src/xds/name-set.js';
import { requestedNamesTableSize } from '../../src/xds/requested-names.js';
import { syncState } from '../../src/xds/type-status.js';
import {
  deltaClient,
  namesOf,
  node,
  sotwClient,
  typeUrl,
  type DeltaStreamClient,
  type SotwStreamClient,
} from '../support/ads-client.js';
import { CatalogFile, startTestControlPlane } from '../support/mesh.js';
import { waitFor } from '../support/wait.js';
import {
  KNOWN_TYPE_URLS,
  anyDeltaRequest,
  anySotwRequest,
  nodeMessage,
  text,
} from './fuzz-requests.js';
import { writeReliabilityResult } from '../support/reliability.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261130);
const REQUESTS = 10_000;
const ADS = '/envoy.service.discovery.v3.AggregatedDiscoveryService';
const sotwType = messageType('envoy.service.discovery.v3.DiscoveryRequest');
const deltaType = messageType('envoy.service.discovery.v3.DeltaDiscoveryRequest');

// A full GC from inside the test process (vitest runs files without --expose-gc).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

function catalog(generation: number) {
  return {
    services: Array.from({ length: 20 }, (_, s) => ({
      name: `svc-${s}`,
      instances: Array.from({ length: 3 }, (_, i) => ({
        id: `svc-${s}-${i}`,
        address: `10.${s}.${generation % 250}.${i + 1}`,
        port: 8080,
        sidecarPort: 19000,
      })),
    })),
  };
}

// --- hostile sessions -------------------------------------------------------------------

interface Session {
  readonly mode: 'sotw' | 'delta';
  readonly requests: readonly Buffer[];
  /** Stops reading responses after the first (its requests then wait for it to read). */
  readonly deaf: boolean;
  /** Ends by cancelling instead of half-closing. */
  readonly cancel: boolean;
}

const encodeSotw = (r: object) => Buffer.from(sotwType.encode(sotwType.fromObject(r)).finish());
const encodeDelta = (r: object) => Buffer.from(deltaType.encode(deltaType.fromObject(r)).finish());

/** Names beyond what any mesh here has: 2,000 to 20,000 of them (up to ~500 KB). */
const hugeNames = fc
  .tuple(fc.integer({ min: 2000, max: 20_000 }), fc.string({ maxLength: 8 }))
  .map(([n, salt]) => Array.from({ length: n }, (_, i) => `huge-${salt}-${i}`));

const sotwFollowUp: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 40, arbitrary: anySotwRequest },
  {
    weight: 30,
    arbitrary: fc
      .record(
        {
          typeUrl: fc.oneof(fc.constantFrom(...KNOWN_TYPE_URLS), text),
          resourceNames: fc.array(text, { maxLength: 20 }),
          responseNonce: fc.oneof(text, fc.constantFrom('~1', '1', '2', 'a')),
          versionInfo: text,
          errorDetail: fc.record({ code: fc.constant(3), message: fc.string({ maxLength: 2000 }) }),
          node: nodeMessage, // a different node mid-stream
        },
        { requiredKeys: ['typeUrl'] },
      )
      .map(encodeSotw),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(...KNOWN_TYPE_URLS), hugeNames)
      .map(([t, names]) => encodeSotw({ typeUrl: t, resourceNames: names })),
  },
  { weight: 10, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)) },
);

const deltaFollowUp: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 50, arbitrary: anyDeltaRequest },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom(...KNOWN_TYPE_URLS), hugeNames, fc.boolean())
      .map(([t, names, unsubscribe]) =>
        encodeDelta({
          typeUrl: t,
          [unsubscribe ? 'resourceNamesUnsubscribe' : 'resourceNamesSubscribe']: names,
        }),
      ),
  },
  { weight: 10, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)) },
);

/** A first request that identifies a (made-up) node, so the session gets past identification. */
const firstRequest = (mode: 'sotw' | 'delta') =>
  fc
    .tuple(fc.string({ minLength: 1, maxLength: 20 }), fc.constantFrom(...KNOWN_TYPE_URLS))
    .map(([id, t]) => {
      const n = node(`fuzz-${id}`, 'svc-1');
      return mode === 'sotw'
        ? encodeSotw({ node: n, typeUrl: t })
        : encodeDelta({ node: n, typeUrl: t });
    });

const session: fc.Arbitrary<Session> = fc
  .constantFrom('sotw' as const, 'delta' as const)
  .chain((mode) =>
    fc.record({
      mode: fc.constant(mode),
      requests: fc
        .tuple(
          fc.oneof(
            { weight: 9, arbitrary: firstRequest(mode) },
            { weight: 1, arbitrary: mode === 'sotw' ? anySotwRequest : anyDeltaRequest },
          ),
          fc.array(mode === 'sotw' ? sotwFollowUp : deltaFollowUp, { minLength: 0, maxLength: 60 }),
        )
        .map(([first, rest]) => [first, ...rest]),
      deaf: fc.boolean(),
      cancel: fc.boolean(),
    }),
  );

/** Sessions whose requests add up to exactly `total`. */
function sessions(total: number, seed: number): Session[] {
  const out: Session[] = [];
  let count = 0;
  for (const s of fc.sample(session, { seed, numRuns: total })) {
    if (count >= total) break;
    const requests = s.requests.slice(0, total - count);
    out.push({ ...s, requests });
    count += requests.length;
  }
  if (count < total) throw new Error(`only ${count} requests generated`);
  return out;
}

/** Runs one session on a raw call; resolves when the call is over (or cut after 3 s). */
function runSession(client: grpc.Client, s: Session): Promise<void> {
  return new Promise((resolve) => {
    const call = client.makeBidiStreamRequest(
      `${ADS}/${s.mode === 'sotw' ? 'StreamAggregatedResources' : 'DeltaAggregatedResources'}`,
      (b: Buffer) => b,
      (b: Buffer) => b,
    );
    let responses = 0;
    const done = () => {
      clearTimeout(cut);
      resolve();
    };
    const cut = setTimeout(() => {
      call.cancel();
      done();
    }, 1000);
    call.on('data', () => {
      if (++responses === 1 && s.deaf) call.pause();
    });
    call.on('error', done);
    call.on('end', done);
    call.on('status', done);
    for (const r of s.requests) call.write(r);
    setTimeout(() => (s.cancel ? call.cancel() : call.end()), 20);
  });
}

async function runAll(port: number, all: Session[], concurrency: number): Promise<number> {
  const clients = Array.from(
    { length: 4 },
    () => new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()),
  );
  let next = 0;
  let sent = 0;
  const worker = async (w: number) => {
    while (next < all.length) {
      const s = all[next++]!;
      sent += s.requests.length;
      await runSession(clients[w % clients.length]!, s);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  clients.forEach((c) => c.close());
  return sent;
}

// --- well-behaved sidecars --------------------------------------------------------------

const EDS_NAMES = Array.from({ length: 20 }, (_, s) => `svc-${s}`);

/** A SotW sidecar that ACKs every response, as Envoy does; counts what it ACKed. */
function goodSotw(port: number) {
  const c = sotwClient(port);
  const acked = { count: 0 };
  const names = (t: string | undefined) => (t === typeUrl('endpoints') ? EDS_NAMES : []);
  void (async () => {
    for (;;) {
      const res = await c.next(600_000).catch(() => undefined);
      if (!res) return;
      c.send({
        typeUrl: res.typeUrl,
        versionInfo: res.versionInfo,
        responseNonce: res.nonce,
        resourceNames: names(res.typeUrl),
      });
      acked.count++;
    }
  })();
  c.send({ node: node('svc-0-0', 'svc-0'), typeUrl: typeUrl('clusters') });
  c.send({ typeUrl: typeUrl('endpoints'), resourceNames: EDS_NAMES });
  c.send({ typeUrl: typeUrl('listeners') });
  return { c, acked };
}

function goodDelta(port: number) {
  const c = deltaClient(port);
  const acked = { count: 0 };
  void (async () => {
    for (;;) {
      const res = await c.next(600_000).catch(() => undefined);
      if (!res) return;
      c.send({ typeUrl: res.typeUrl, responseNonce: res.nonce });
      acked.count++;
    }
  })();
  c.send({ node: node('svc-2-0', 'svc-2'), typeUrl: typeUrl('clusters') });
  c.send({ typeUrl: typeUrl('endpoints'), resourceNamesSubscribe: EDS_NAMES });
  c.send({ typeUrl: typeUrl('listeners') });
  return { c, acked };
}

function memory(): { heap: number; buffers: number; total: number } {
  for (let i = 0; i < 4; i++) gc();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, buffers: m.arrayBuffers, total: m.heapUsed + m.arrayBuffers };
}

const settle = async () => {
  // Finalizers (weak tables) run after a collection, in their own tasks.
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 50));
  }
};

let cp: RunningControlPlane | undefined;
const file = new CatalogFile();
const good: Array<{ c: SotwStreamClient | DeltaStreamClient }> = [];
afterAll(async () => {
  good.forEach((g) => g.c.close());
  await cp?.stop();
  file.remove();
});

const MB = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;

describe('a live server under 10,000 hostile requests', () => {
  it('stays up, keeps a well-behaved SotW and delta sidecar SYNCED, and gives its memory back', async () => {
    let generation = 0;
    file.write(catalog(generation));
    cp = await startTestControlPlane(file);
    const sotw = goodSotw(cp.xdsPort);
    const delta = goodDelta(cp.xdsPort);
    good.push(sotw, delta);
    // Every type ACKed as sent (no NACK, nothing unanswered), endpoints of the latest build.
    const synced = () =>
      [...cp!.xds.connected.values()]
        .filter((s) => s.proxy?.nodeId === 'svc-0-0' || s.proxy?.nodeId === 'svc-2-0')
        .every(
          (s) =>
            s.types.size === 3 &&
            [...s.types.values()].every((t) => syncState(t) === 'SYNCED') &&
            s.types.get('endpoints')?.sentFrom?.version === cp!.store.snapshot!.version,
        );
    await waitFor(() => cp!.xds.connected.size === 2 && synced(), { what: 'both sidecars SYNCED' });

    // Warm-up (compiled code, protobuf codecs, grpc internals), then the baseline.
    await runAll(cp.xdsPort, sessions(500, SEED + 1), 16);
    await waitFor(() => cp!.xds.connected.size === 2, { what: 'warm-up streams gone' });
    await settle();
    const baseline = memory();
    const cachesBefore = cp.store.cacheSizes();

    // The requests are made here and dropped after the run: the test's own data must not
    // count as memory the server kept.
    const port = cp.xdsPort;
    const { sent, streams, elapsed } = await (async () => {
      const all = sessions(REQUESTS, SEED);
      const started = performance.now();
      // Catalog changes while it runs: the well-behaved sidecars must follow them.
      const changes = setInterval(() => file.write(catalog(++generation)), 1000);
      const sent = await runAll(port, all, 64);
      clearInterval(changes);
      return { sent, streams: all.length, elapsed: performance.now() - started };
    })();
    expect(sent).toBe(REQUESTS);
    expect(elapsed).toBeLessThan(90_000);
    const peakish = process.memoryUsage();

    // Up: a newcomer is served.
    const newcomer = sotwClient(cp.xdsPort);
    newcomer.send({ node: node('svc-3-0', 'svc-3'), typeUrl: typeUrl('clusters') });
    expect(namesOf(await newcomer.next(5000))).toContain('svc-3');
    newcomer.close();

    // Two more changes (the second sweeps what the first kept), then both sidecars SYNCED on
    // the latest config, their ACKs recorded for every type.
    const acksBefore = sotw.acked.count + delta.acked.count;
    file.write(catalog(++generation));
    await waitFor(
      () =>
        synced() &&
        cp!.store.snapshot!.mesh.services[0]!.instances[0]!.address.includes(
          `.${generation % 250}.`,
        )
          ? true
          : undefined,
      {
        what: 'the sidecars on the next change',
        details: () =>
          JSON.stringify(
            [...cp!.xds.connected.values()].map((x) => ({
              node: x.proxy?.nodeId,
              types: [...x.types].map(([k, t]) => [
                k,
                syncState(t),
                t.sentFrom?.version,
                t.nack?.message,
              ]),
            })),
          ) +
          ` snapshot ${cp!.store.snapshot!.version} ${JSON.stringify(cp!.store.snapshot!.mesh.services[0])}`.slice(
            0,
            3000,
          ),
        timeoutMs: 20_000,
      },
    );
    file.write(catalog(++generation));
    await waitFor(
      () => (synced() && sotw.acked.count + delta.acked.count > acksBefore ? true : undefined),
      {
        what: 'the sidecars SYNCED on the latest change',
        timeoutMs: 20_000,
      },
    );
    await waitFor(() => cp!.xds.connected.size === 2, { what: 'every hostile stream gone' });
    expect(synced()).toBe(true);

    // Nothing the hostile streams asked for is held any more.
    await settle();
    const after = memory();
    const caches = cp.store.cacheSizes();
    expect(caches.views).toBe(cachesBefore.views);
    expect(caches.ownResources).toBe(cachesBefore.ownResources);
    expect(caches.localities).toBe(0);
    expect(requestedNamesTableSize().entries).toBeLessThanOrEqual(4);
    expect(internedSize().sets).toBeLessThanOrEqual(16);
    expect(cp.events.clientCount).toBe(0);

    console.log(
      `live fuzz (seed ${SEED}): ${sent} requests in ${streams} streams over ${(elapsed / 1000).toFixed(1)} s; ` +
        `bad requests ${cp.counters.badRequests}, stale nonces ${cp.counters.staleNonces}, NACKs ${cp.counters.nacks}, ` +
        `throttled ${cp.counters.throttledRequests}; well-behaved ACKs ${sotw.acked.count + delta.acked.count}; ` +
        `heap+buffers baseline ${MB(baseline.total)} → during ${MB(peakish.heapUsed + peakish.arrayBuffers)} → after GC ${MB(after.total)} ` +
        `(${(((after.total - baseline.total) / baseline.total) * 100).toFixed(1)} %)`,
    );
    expect(after.total).toBeLessThanOrEqual(baseline.total * 1.1);
    writeReliabilityResult({
      id: 'hostile-live-fuzz',
      section: 'hostile',
      test: 'test/xds/fuzz-live.test.ts',
      fault:
        `${sent.toLocaleString('en')} hostile requests over real gRPC streams (${streams.toLocaleString('en')} streams, SotW and delta): ` +
        'garbage, mutations, huge name lists, unknown types, wrong nonces, NACKs, the node changing mid-stream, streams that stop reading',
      behaviour:
        'Stays up; invalid first requests end their stream (`INVALID_ARGUMENT`, or `INTERNAL` for bytes grpc-js cannot ' +
        'deserialize); names that are not UTF-8 end the stream with `INVALID_ARGUMENT`; everything else is answered, ignored ' +
        'or counted as above. A well-behaved SotW and a delta sidecar alongside follow every catalog change and stay SYNCED.',
      figures:
        `Seed ${SEED}: ${(elapsed / 1000).toFixed(1)} s for the ${sent.toLocaleString('en')}; ${cp.counters.badRequests} bad requests, ` +
        `${cp.counters.staleNonces} stale nonces, ${cp.counters.throttledRequests} throttled. Heap + buffers: ${MB(baseline.total)} baseline → ` +
        `${MB(peakish.heapUsed + peakish.arrayBuffers)} during → ${MB(after.total)} after GC ` +
        `(${(((after.total - baseline.total) / baseline.total) * 100).toFixed(1)} %, mostly the 1,024 kept stand-ins). After: store ` +
        "caches as before, the sidecars' subscription lists and interned sets only.",
      memoryBefore: { heapBytes: baseline.heap },
      memoryAfter: { heapBytes: after.heap },
    });
  });
});
