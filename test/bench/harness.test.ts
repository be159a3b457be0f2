// The benchmark harness measures something real: a tiny run (control plane in its own
// process, simulated sidecars in worker processes) converges, agrees, and writes its files.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runBench } from '../../bench/harness.js';
import {
  addressMarker,
  edsNameOfCluster,
  encodeDeltaRequest,
  encodeNames,
  encodeSotwRequest,
  nameOf,
  rdsNamesOfListener,
  readDeltaResponse,
  readSotwResponse,
} from '../../bench/load/wire.js';
import type { RunResult } from '../../bench/types.js';
import { WORKLOADS } from '../../bench/workloads.js';
import { buildMesh, DEFAULT_MESH_SETTINGS, meshProxy } from '../../src/mesh/index.js';
import { EMPTY_TRAFFIC } from '../../src/traffic/types.js';
import { translateProxy, translateShared } from '../../src/translate/index.js';
import { encodeResource } from '../../src/snapshot/encoded-resource.js';
import { TYPE_URLS, messageType } from '../../src/protos/envoy.js';
import { deltaDiscoveryResponse, discoveryResponse } from '../../src/protos/wire.js';
import { parseCatalog } from '../../src/catalog/schema.js';
import { quickBenchOptions } from './quick-bench.js';

const dir = mkdtempSync(join(tmpdir(), 'lucid-bench-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('load-client wire format', () => {
  const catalog = parseCatalog({
    services: [
      {
        name: 'world',
        instances: [
          { id: 'world-1', address: '10.0.0.1', port: 80, sidecarPort: 15006 },
          { id: 'world-2', address: '10.0.0.10', port: 80, sidecarPort: 15006 },
        ],
      },
    ],
  });
  const mesh = buildMesh({ catalog, traffic: EMPTY_TRAFFIC, settings: DEFAULT_MESH_SETTINGS });
  const shared = translateShared(mesh);
  const own = translateProxy(
    mesh,
    meshProxy(mesh, { nodeId: 'world-1', service: 'world', outboundPort: 15001 }),
  );

  it('reads names, EDS and RDS dependencies and markers from responses the server frames', () => {
    const cla = encodeResource('endpoints', 'world', shared.endpoints.get('world')!);
    const cluster = encodeResource('clusters', 'world', shared.clusters.get('world')!);
    const local = encodeResource(
      'clusters',
      'local_app|world-1',
      own.clusters.get('local_app|world-1')!,
    );
    const listener = encodeResource(
      'listeners',
      'outbound|http|15001',
      own.listeners.get('outbound|http|15001')!,
    );

    const cds = readSotwResponse(
      discoveryResponse('v1', TYPE_URLS.clusters, 'n1', [cluster.sotwEntry, local.sotwEntry]),
    );
    expect(cds).toMatchObject({ versionInfo: 'v1', typeUrl: TYPE_URLS.clusters, nonce: 'n1' });
    const buf = discoveryResponse('v1', TYPE_URLS.clusters, 'n1', [
      cluster.sotwEntry,
      local.sotwEntry,
    ]);
    expect(cds.values.map((v) => nameOf(buf, v))).toEqual(['world', 'local_app|world-1']);
    expect(cds.values.map((v) => edsNameOfCluster(buf, v))).toEqual(['world', undefined]);

    const lbuf = discoveryResponse('v2', TYPE_URLS.listeners, 'n2', [listener.sotwEntry]);
    expect(rdsNamesOfListener(lbuf, readSotwResponse(lbuf).values[0]!)).toEqual(['outbound']);

    const dbuf = deltaDiscoveryResponse(
      'snap',
      TYPE_URLS.endpoints,
      'n3',
      [cla.deltaEntry],
      ['gone'],
    );
    const delta = readDeltaResponse(dbuf);
    expect(delta).toMatchObject({ systemVersionInfo: 'snap', nonce: 'n3', removed: ['gone'] });
    expect(delta.resources[0]).toMatchObject({ name: 'world', version: cla.version });
    const value = dbuf.subarray(delta.resources[0]!.value.start, delta.resources[0]!.value.end);
    // The marker is exact: 10.0.0.1 is present and does not match inside 10.0.0.10.
    expect(value.indexOf(addressMarker('10.0.0.1'))).toBeGreaterThanOrEqual(0);
    expect(value.indexOf(addressMarker('10.0.0.10'))).toBeGreaterThanOrEqual(0);
    expect(value.indexOf(addressMarker('10.0.0.100'))).toBe(-1);
  });

  it('encodes requests the server can decode', () => {
    const sotw = messageType('envoy.service.discovery.v3.DiscoveryRequest');
    const node = { id: 'world-1', service: 'world', outboundPort: 15001 };
    const req = sotw.toObject(
      sotw.decode(
        encodeSotwRequest({
          node,
          versionInfo: 'v',
          typeUrl: TYPE_URLS.endpoints,
          nonce: 'n',
          names: encodeNames(3, ['a', 'b']),
        }),
      ),
    );
    expect(req).toMatchObject({
      versionInfo: 'v',
      typeUrl: TYPE_URLS.endpoints,
      responseNonce: 'n',
      resourceNames: ['a', 'b'],
      node: { id: 'world-1', cluster: 'world' },
    });
    const delta = messageType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
    expect(
      delta.toObject(
        delta.decode(
          encodeDeltaRequest({
            typeUrl: TYPE_URLS.routes,
            subscribe: ['outbound'],
            unsubscribe: ['x'],
          }),
        ),
      ),
    ).toMatchObject({ resourceNamesSubscribe: ['outbound'], resourceNamesUnsubscribe: ['x'] });
  });
});

describe('benchmark harness', () => {
  it('measures convergence, fan-out and cost on a tiny mesh, and writes the run file and RESULTS.md', async () => {
    const plan = {
      ...WORKLOADS.Q,
      services: 12,
      instances: 3,
      proxies: 12,
      changes: 3,
      churn: [{ rate: 10, seconds: 1 }],
    };
    const { run, runFile } = await runBench(
      quickBenchOptions(dir, { sessions: [plan], modes: ['sotw', 'delta'] }),
    );

    expect(run.sessions.map((s) => s.mode)).toEqual(['sotw', 'delta']);
    for (const s of run.sessions) {
      expect(s.errors).toEqual([]);
      expect(s.storm?.configured).toBe(12);
      expect(s.storm!.allConfiguredMs).toBeGreaterThan(0);
      // M9: every proxy ends with the same shared content, as many resources as the catalog has.
      expect(s.agreement).toMatchObject({
        agree: true,
        countsMatch: true,
        nacks: 0,
        streamErrors: 0,
      });
      const c = s.changes!;
      expect(c.complete).toBe(3);
      for (const v of [c.fanoutMs.p50, c.fanoutMs.p99, c.endToEndMs.p99, c.buildMs.p50]) {
        expect(Number.isFinite(v) && v > 0).toBe(true);
      }
      // The change reaches the last proxy after the snapshot was built, and after the write.
      expect(c.endToEndMs.p50).toBeGreaterThan(c.fanoutMs.p50);
      for (const r of c.records) {
        expect(r.builtAt).toBeGreaterThan(r.writeAt);
        expect(r.lastAt).toBeGreaterThanOrEqual(r.firstAt);
        expect(r.firstAt).toBeGreaterThan(r.builtAt);
        expect(r.detected).toBe(12);
      }
      // One changed assignment: one encode and one response per proxy, whatever K is.
      expect(c.encodesPerChange.max).toBe(1);
      expect(c.responsesPerChange.p50).toBe(12);
      expect(c.cpCpuMsPerChange.p50).toBeGreaterThan(0);
      expect(s.churn[0]).toMatchObject({ flips: 10, complete: 10 });
      expect(s.memory!.loadedRssBytes).toBeGreaterThan(0);
      // RSS split: V8's committed heap, external and the native rest add up to the RSS delta.
      const m = s.memory!;
      expect(m.newSpaceBytes?.loaded).toBeGreaterThan(0);
      expect(m.oldSpaceBytes?.loaded).toBeGreaterThan(0);
      const parts =
        m.heapCommittedPerProxyBytes! +
        m.nativeRestPerProxyBytes! +
        (m.heapExternalPerProxyBytes - m.heapPerProxyBytes);
      expect(Math.abs(parts - m.rssPerProxyBytes)).toBeLessThanOrEqual(2);
      // GC pauses are counted where the control plane spent its CPU (storm, each change).
      expect(s.storm!.gcMs).toBeGreaterThanOrEqual(0);
      expect(s.storm!.majorGcs).toBeGreaterThanOrEqual(0);
      expect(c.records.every((r) => typeof r.gcMs === 'number' && r.gcMs >= 0)).toBe(true);
      expect(s.storm!.settledExternalBytes).toBeGreaterThan(0);
      // The IPC counters and /metrics agree.
      expect(s.metrics.lucid_mesh_xds_nacks_total ?? 0).toBe(0);
      expect(s.metrics.lucid_mesh_xds_responses_total).toBeGreaterThan(0);
    }

    expect(existsSync(runFile)).toBe(true);
    const saved = JSON.parse(readFileSync(runFile, 'utf8')) as RunResult;
    expect(saved.sessions).toHaveLength(2);
    expect(saved.machine.nproc).toBeGreaterThan(0);
    const md = readFileSync(join(dir, 'RESULTS.md'), 'utf8');
    expect(md).toContain('Generated file — do not edit');
    expect(md).toContain('## Sequential changes');
    expect(md).toMatch(/\| Q +\| sotw +\| 12×3×12 +\| 3\/3 /);
  }, 180_000);
});
