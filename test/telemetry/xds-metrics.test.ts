// The xDS counters per kind (responses, their bytes, ACKs) are counted in plain numbers and
// handed to prom-client at scrape time (src/telemetry/metrics.ts): the exposition must show
// what was counted, the same on every scrape, and no series for a kind nothing was sent of.
import { describe, expect, it } from 'vitest';
import { SnapshotStore } from '../../src/snapshot/store.js';
import { Metrics } from '../../src/telemetry/metrics.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import type { ResponseReport } from '../../src/xds/observer.js';
import type { StreamInfo } from '../../src/xds/type-status.js';

const stream = { id: 1, mode: 'sotw' } as unknown as StreamInfo;

function report(kind: ResponseReport['kind'], bytes: number): ResponseReport {
  return {
    kind,
    version: 'v1',
    resources: 1,
    removed: [],
    nonce: '1',
    bytes,
    durationMs: 0.2,
    snapshot: { version: 'v1', changedAt: 0 },
  };
}

/** `name{type="kind"} value` lines of the exposition, as a map. */
async function series(metrics: Metrics, name: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const line of (await metrics.registry.metrics()).split('\n')) {
    const m = new RegExp(`^lucid_mesh_${name}\\{type="(\\w+)"\\} (\\d+)$`).exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

describe('xDS counters per kind', () => {
  it('responses, bytes and ACKs by type, the same on a second scrape', async () => {
    const metrics = new Metrics({
      store: new SnapshotStore({ logger: silentLogger }),
      streams: () => [],
    });
    for (let i = 0; i < 3; i++) metrics.responseSent(stream, report('clusters', 100));
    metrics.responseSent(stream, report('listeners', 40));
    metrics.acked(stream, 'clusters', 'v1', undefined);
    metrics.acked(stream, 'clusters', 'v1', undefined);
    for (let scrape = 0; scrape < 2; scrape++) {
      expect(await series(metrics, 'xds_responses_total')).toEqual(
        new Map([
          ['clusters', 3],
          ['listeners', 1],
        ]),
      );
      expect(await series(metrics, 'xds_response_bytes_total')).toEqual(
        new Map([
          ['clusters', 300],
          ['listeners', 40],
        ]),
      );
      expect(await series(metrics, 'xds_acks_total')).toEqual(new Map([['clusters', 2]]));
    }
    metrics.responseSent(stream, report('endpoints', 7));
    expect((await series(metrics, 'xds_responses_total')).get('endpoints')).toBe(1);
    expect((await series(metrics, 'xds_response_bytes_total')).get('clusters')).toBe(300);
  });
});
