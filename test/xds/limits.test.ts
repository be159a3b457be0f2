// xDS limits: --max-streams and --stream-rate refuse with RESOURCE_EXHAUSTED (so a sidecar
// tries another replica), a request over the size limit ends its stream, and a client sending
// requests in a tight loop is slowed to the per-stream rate and counted, while well-behaved
// clients alongside are served as usual.
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { proxyRows } from '../../src/admin/proxies.js';
import { parseCatalog } from '../../src/catalog/schema.js';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import {
  DEFAULT_XDS_LIMITS,
  TokenBucket,
  ageOutDelayMs,
  type XdsLimits,
} from '../../src/xds/limits.js';
import { adsServiceDefinition, type DiscoveryRequest } from '../../src/xds/messages.js';
import { XdsCounters } from '../../src/xds/observer.js';
import { XdsServer } from '../../src/xds/server.js';
import {
  ack,
  namesOf,
  node,
  sotwClient,
  typeUrl,
  type SotwStreamClient,
} from '../support/ads-client.js';
import { twoServices } from '../support/control-plane.js';
import { waitFor } from '../support/wait.js';
import { quoted, sampleMemory, writeReliabilityResult } from '../support/reliability.js';

const ADS = '/envoy.service.discovery.v3.AggregatedDiscoveryService';
const encodeSotw = adsServiceDefinition.StreamAggregatedResources!.requestSerialize as (
  r: DiscoveryRequest,
) => Buffer;

const cleanup: Array<() => void> = [];
afterEach(() => {
  cleanup.splice(0).forEach((f) => f());
});

async function start(limits: Partial<XdsLimits> = {}, catalog: unknown = twoServices()) {
  const store = new SnapshotStore({ logger: silentLogger, debounceMs: 0, maxDebounceMs: 0 });
  store.setCatalog(parseCatalog(catalog));
  const counters = new XdsCounters();
  const server = new XdsServer({
    watcher: store,
    observer: counters,
    logger: silentLogger,
    limits,
  });
  const port = await server.listen('127.0.0.1', 0);
  cleanup.push(() => {
    server.forceClose();
    store.close();
  });
  const sotw = () => {
    const c = sotwClient(port);
    cleanup.push(() => c.close());
    return c;
  };
  return { store, server, counters, port, sotw };
}

/** Opens `n` SotW streams over one connection (as many sidecars behind one address would). */
function streamsOverOneChannel(port: number, n: number) {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  cleanup.push(() => client.close());
  return Array.from({ length: n }, (_, i) => {
    const call = client.makeBidiStreamRequest(
      `${ADS}/StreamAggregatedResources`,
      (b: Buffer) => b,
      (b: Buffer) => b,
    );
    let first = false;
    const outcome = new Promise<'served' | grpc.ServiceError>((resolve) => {
      call.on('data', () => {
        first = true;
        resolve('served');
      });
      call.on('error', (err: grpc.ServiceError) => resolve(err));
    });
    call.write(encodeSotw({ node: node(`storm-${i}`, 'hello'), typeUrl: typeUrl('clusters') }));
    cleanup.push(() => call.cancel());
    return { call, outcome, served: () => first };
  });
}

describe('TokenBucket', () => {
  it('gives the burst at once, then one token per 1/rate, booked ahead', () => {
    let now = 0;
    const b = new TokenBucket(10, 3, () => now);
    expect([b.reserve(), b.reserve(), b.reserve()]).toEqual([0, 0, 0]);
    expect(b.reserve()).toBeCloseTo(100);
    expect(b.reserve()).toBeCloseTo(200);
    expect(b.reserve(150)).toBe(-1); // would be 300 ms out: not booked
    now = 1000;
    expect(b.reserve()).toBe(0); // refilled, up to the burst
  });

  it("the defaults take the benchmark's storm of 1,000 new streams without a wait", () => {
    const b = new TokenBucket(DEFAULT_XDS_LIMITS.streamRate, DEFAULT_XDS_LIMITS.streamBurst);
    const waits = Array.from({ length: 1000 }, () => b.reserve());
    expect(waits.every((w) => w === 0)).toBe(true);
  });
});

describe('--max-stream-age delays', () => {
  const age = DEFAULT_XDS_LIMITS.maxStreamAgeMs;

  it('spread ±10 % over at most 201 distinct values', () => {
    const delays = Array.from({ length: 20_000 }, () => ageOutDelayMs(age));
    expect(Math.min(...delays)).toBeGreaterThanOrEqual(age * 0.9);
    expect(Math.max(...delays)).toBeLessThanOrEqual(age * 1.1);
    expect(new Set(delays).size).toBeGreaterThan(150);
    expect(new Set(delays).size).toBeLessThanOrEqual(201);
    expect(ageOutDelayMs(1000, () => 0.5)).toBe(1000);
  });

  it("20,000 streams' age timers set and cleared leave nothing behind (each its own delay did)", () => {
    // What the server does per stream: an unref'd timer, cleared when the stream ends.
    const leftBehind = (delay: () => number): number => {
      const before = sampleMemory().heapBytes;
      for (let i = 0; i < 20_000; i++) {
        const timer = setTimeout(() => undefined, delay());
        timer.unref();
        clearTimeout(timer);
      }
      return sampleMemory().heapBytes - before;
    };
    const onGrid = leftBehind(() => ageOutDelayMs(age));
    const ownEach = leftBehind(() => age * (0.9 + 0.2 * Math.random()));
    console.log(
      `age timers: ${(onGrid / 1024).toFixed(0)} KiB left by 20,000 on the grid, ` +
        `${(ownEach / 1024).toFixed(0)} KiB with a delay of their own`,
    );
    expect(onGrid).toBeLessThan(512 * 1024);
    expect(ownEach).toBeGreaterThan(1536 * 1024);
  });
});

describe('xDS limits', () => {
  it('--max-streams: one more stream is refused with RESOURCE_EXHAUSTED; a slot that frees is used', async () => {
    const cp = await start({ maxStreams: 3 });
    const clients: SotwStreamClient[] = [];
    for (let i = 0; i < 3; i++) {
      const c = cp.sotw();
      c.send({ node: node(`p-${i}`, 'hello'), typeUrl: typeUrl('clusters') });
      await c.next();
      clients.push(c);
    }
    const extra = cp.sotw();
    extra.send({ node: node('p-3', 'hello'), typeUrl: typeUrl('clusters') });
    const err = await extra.ended;
    expect(err?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(err?.details).toBe(
      'this control plane replica serves at most 3 streams (--max-streams); try another replica',
    );
    expect(cp.counters.streamsRefused['max-streams']).toBe(1);
    clients[0]!.close();
    await waitFor(() => cp.server.connected.size === 2, { what: 'a stream gone' });
    const again = cp.sotw();
    again.send({ node: node('p-4', 'hello'), typeUrl: typeUrl('clusters') });
    expect(namesOf(await again.next())).toContain('world');
    writeReliabilityResult({
      id: 'hostile-max-streams',
      section: 'hostile',
      test: 'test/xds/limits.test.ts',
      fault: 'More xDS streams than `--max-streams`',
      behaviour:
        'Refuses the stream with `RESOURCE_EXHAUSTED`; the sidecar reconnects through its xDS cluster, to another ' +
        'replica if there is one. Counted: `lucid_mesh_xds_streams_refused_total{reason="max-streams"}`; logged at ' +
        'most once per 10 s with the count since.',
      figures:
        `Limit 3: the 4th stream refused (${quoted(err?.details)}), ` +
        `${cp.counters.streamsRefused['max-streams']} counted; once one of the 3 left, the next was served.`,
    });
  });

  it('--stream-rate: past the burst, streams wait up to a second for their turn, the rest are refused', async () => {
    const cp = await start({ streamRate: 5, streamBurst: 5 });
    const started = performance.now();
    const streams = streamsOverOneChannel(cp.port, 20);
    const outcomes = await Promise.all(streams.map((s) => s.outcome));
    const elapsed = performance.now() - started;
    const served = outcomes.filter((o) => o === 'served').length;
    const refused = outcomes.filter(
      (o) => o !== 'served' && o.code === grpc.status.RESOURCE_EXHAUSTED,
    ) as grpc.ServiceError[];
    // 5 at once, 5 more within the second they may wait (one per 200 ms), 10 refused.
    expect(served).toBeGreaterThanOrEqual(10);
    expect(served).toBeLessThanOrEqual(11);
    expect(served + refused.length).toBe(20);
    expect(refused[0]!.details).toBe(
      'too many new streams (--stream-rate 5/s, burst 5); retry later or try another replica',
    );
    expect(cp.counters.streamsRefused['stream-rate']).toBe(refused.length);
    expect(elapsed).toBeGreaterThanOrEqual(800); // the last admitted waited for its turn
    writeReliabilityResult({
      id: 'hostile-stream-rate',
      section: 'hostile',
      test: 'test/xds/limits.test.ts',
      fault:
        'A burst of new streams past `--stream-burst`, then more than `--stream-rate` a second',
      behaviour:
        'A stream over the bucket waits up to 1 s for its turn (not read meanwhile), then is refused with ' +
        '`RESOURCE_EXHAUSTED` (counted with `reason="stream-rate"`).',
      figures:
        `Rate 5/s, burst 5, 20 opened at once: ${served} served (5 at once, the rest within the second), ` +
        `${refused.length} refused (${quoted(refused[0]!.details)}); all settled in ${(elapsed / 1000).toFixed(1)} s.`,
    });
  });

  it('the defaults serve 1,000 streams opened at once without refusing or delaying one', async () => {
    const cp = await start();
    const started = performance.now();
    const streams = streamsOverOneChannel(cp.port, 1000);
    const outcomes = await Promise.all(streams.map((s) => s.outcome));
    const elapsed = performance.now() - started;
    expect(outcomes.filter((o) => o !== 'served')).toEqual([]);
    expect(cp.counters.streamsRefused).toEqual({ 'max-streams': 0, 'stream-rate': 0 });
    expect(cp.counters.throttledRequests).toBe(0);
    console.log(`1,000 streams at once, default limits: all served in ${elapsed.toFixed(0)} ms`);
    writeReliabilityResult({
      id: 'hostile-stream-storm',
      section: 'hostile',
      test: 'test/xds/limits.test.ts',
      fault:
        "1,000 new streams at once with the default limits (the benchmark's storm of sidecars, on one connection)",
      behaviour: `All served: the default burst (${DEFAULT_XDS_LIMITS.streamBurst.toLocaleString('en')}) takes them without a wait.`,
      figures:
        `1,000 served in ${(elapsed / 1000).toFixed(2)} s; ${cp.counters.streamsRefused['max-streams']} refused ` +
        `(max-streams), ${cp.counters.streamsRefused['stream-rate']} refused (stream-rate), ` +
        `${cp.counters.throttledRequests} requests throttled.`,
    });
  });

  it('a request over --max-request-bytes ends its stream with RESOURCE_EXHAUSTED; others go on', async () => {
    const cp = await start({ maxRequestBytes: 64 * 1024 });
    const good = cp.sotw();
    good.send({ node: node('good-1', 'hello'), typeUrl: typeUrl('clusters') });
    good.send(ack(await good.next()));
    // Raw grpc-js: a well-formed request naming 10,000 clusters (~150 KB).
    const raw = new grpc.Client(`127.0.0.1:${cp.port}`, grpc.credentials.createInsecure());
    cleanup.push(() => raw.close());
    const call = raw.makeBidiStreamRequest(
      `${ADS}/StreamAggregatedResources`,
      (b: Buffer) => b,
      (b: Buffer) => b,
    );
    const ended = new Promise<grpc.ServiceError>((resolve) => call.on('error', resolve));
    call.on('data', () => undefined);
    const names = Array.from({ length: 10_000 }, (_, i) => `cluster-name-number-${i}`);
    const big = encodeSotw({
      node: node('big-1', 'hello'),
      typeUrl: typeUrl('endpoints'),
      resourceNames: names,
    });
    expect(big.length).toBeGreaterThan(64 * 1024);
    call.write(big);
    const err = await ended;
    expect(err.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    // The well-behaved stream is unaffected.
    good.send({ typeUrl: typeUrl('endpoints'), resourceNames: ['world'] });
    expect(namesOf(await good.next())).toEqual(['world']);
    expect(cp.server.connected.size).toBe(1);
    writeReliabilityResult({
      id: 'hostile-max-request-bytes',
      section: 'hostile',
      test: 'test/xds/limits.test.ts',
      fault: 'A request larger than `--max-request-bytes`',
      behaviour:
        'The xDS server ends that stream with `RESOURCE_EXHAUSTED` from the length prefix, before buffering or decoding it (either transport).',
      figures:
        `Limit 64 KiB, a ${(big.length / 1000).toFixed(0)} KB request (10,000 names): that stream ended ` +
        `(${grpc.status[err.code]}: ${err.details}); the other stream on the server answered its next request.`,
    });
  });

  it('a client sending requests in a tight loop is held to the request rate and counted', async () => {
    const rate = 50;
    const burst = 20;
    const cp = await start({ requestRate: rate, requestBurst: burst });
    const loud = cp.sotw();
    loud.send({ node: node('loud-1', 'hello'), typeUrl: typeUrl('clusters') });
    await loud.next();
    // Another proxy alongside, behaving.
    const quiet = cp.sotw();
    quiet.send({ node: node('quiet-1', 'hello'), typeUrl: typeUrl('clusters') });
    quiet.send(ack(await quiet.next()));

    // 5,000 requests written as fast as the client can: each a stale-nonce ACK, which the
    // server counts when it handles one (so the count is what it did).
    const staleBefore = cp.counters.staleNonces;
    const started = performance.now();
    for (let i = 0; i < 5000; i++) loud.send({ typeUrl: typeUrl('clusters'), responseNonce: 'x' });
    const cpuBefore = process.cpuUsage();
    await new Promise((r) => setTimeout(r, 1000));
    const cpu = process.cpuUsage(cpuBefore);
    const seconds = (performance.now() - started) / 1000;
    const handled = cp.counters.staleNonces - staleBefore;
    // At most the burst plus the rate over the time elapsed (and one in flight).
    expect(handled).toBeLessThanOrEqual(burst + rate * seconds + 2);
    expect(handled).toBeGreaterThanOrEqual(rate * 0.5);
    expect(cp.counters.throttledRequests).toBeGreaterThan(0);
    const row = proxyRows(cp.server.connected.values()).find((r) => r.nodeId === 'loud-1');
    expect(row?.throttledRequests).toBe(cp.counters.throttledRequests);

    // Meanwhile the well-behaved proxy is answered at once.
    const asked = performance.now();
    quiet.send({ typeUrl: typeUrl('endpoints'), resourceNames: ['world'] });
    expect(namesOf(await quiet.next(1000))).toEqual(['world']);
    const answeredMs = performance.now() - asked;
    expect(answeredMs).toBeLessThan(250);
    console.log(
      `tight loop of 5,000 requests: ${handled} handled in ${seconds.toFixed(2)} s (rate ${rate}/s, burst ${burst}), ` +
        `${cp.counters.throttledRequests} throttled; process CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms ` +
        `over that second; a well-behaved proxy answered in ${answeredMs.toFixed(1)} ms`,
    );
    writeReliabilityResult({
      id: 'hostile-tight-loop',
      section: 'hostile',
      test: 'test/xds/limits.test.ts',
      fault: 'A proxy sending requests in a tight loop',
      behaviour:
        'Past `--request-burst`, a stream is not read until its next request is due at `--request-rate` (HTTP/2 flow ' +
        'control holds the rest at the client); nothing is dropped (an ACK must not be lost). Counted: ' +
        '`lucid_mesh_xds_throttled_requests_total`, and `throttledRequests` in `/v1/proxies`.',
      figures:
        `5,000 requests written at once, rate ${rate}/s, burst ${burst}: ${handled} handled in ${seconds.toFixed(1)} s, ` +
        `${cp.counters.throttledRequests} throttled; process CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms over that ` +
        `second; a well-behaved proxy alongside answered in ${answeredMs.toFixed(1)} ms.`,
    });
  });

  it('a client that does not read its responses has its requests wait too', async () => {
    // 400 services: a full CDS response is ~100 KB, so an unread one fills the windows.
    const services = Array.from({ length: 400 }, (_, i) => ({
      name: `svc-${i}`,
      instances: [{ id: `svc-${i}-1`, address: '10.0.0.1', port: 8080 }],
    }));
    const cp = await start({ requestRate: 0 }, { services });
    const c = cp.sotw();
    c.send({ node: node('deaf-1', 'svc-0'), typeUrl: typeUrl('clusters') });
    await c.next();
    c.pause();
    const before = cp.counters.responses;
    // Each asks for everything again (no nonce): without the hold, each would be answered
    // and buffered here.
    for (let i = 0; i < 500; i++) c.send({ typeUrl: typeUrl('clusters') });
    await new Promise((r) => setTimeout(r, 1000));
    const written = cp.counters.responses - before;
    expect(written).toBeLessThan(50);
    c.resume();
    await waitFor(() => cp.counters.responses - before === 500 || undefined, {
      what: 'every request answered once the client reads',
    });
    console.log(
      `unread responses: ${written} of 500 requests answered while the client did not read`,
    );
    writeReliabilityResult({
      id: 'hostile-unread-responses',
      section: 'hostile',
      test: 'test/xds/limits.test.ts',
      fault: 'A proxy that asks for everything again and again without reading the answers',
      behaviour:
        'While its responses are not being read, its requests are not read either (changes for it are coalesced, as before).',
      figures:
        `500 "send me everything" requests (~100 KB answers each): ${written} answered while it did not read, the other ` +
        `${500 - written} once it read again.`,
    });
  });
});
