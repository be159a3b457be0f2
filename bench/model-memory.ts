// W10: what the mesh model of a large catalog costs in memory. A control plane on an empty
// catalog is measured (full GC, no proxy) and set against the session's own control plane
// with the catalog loaded and no proxy yet: the difference is the catalog, the mesh model,
// the translated and encoded shared resources, and the caches that keep them.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startBenchControlPlane, type CpStats } from './control-plane.js';
import type { CpChildConfig } from './cp-child.js';
import type { ModelMemory } from './types.js';

/** Starts a control plane on `{"services":[]}` in `dir`, measures it after a full GC, stops it. */
export async function emptyCatalogStats(
  dir: string,
  config: Omit<CpChildConfig, 'catalogPath' | 'trafficPath'>,
): Promise<CpStats> {
  mkdirSync(join(dir, 'empty-catalog'), { recursive: true });
  const catalogPath = join(dir, 'empty-catalog', 'catalog.json');
  writeFileSync(catalogPath, '{"services":[]}\n');
  const cp = await startBenchControlPlane({ ...config, catalogPath }, join(dir, 'empty-cp.log'));
  try {
    return await cp.gcStats();
  } finally {
    await cp.stop();
  }
}

export function modelMemory(empty: CpStats, loaded: CpStats, services: number): ModelMemory {
  const modelBytes = loaded.heapUsed + loaded.external - empty.heapUsed - empty.external;
  return {
    emptyRssBytes: empty.rss,
    emptyHeapBytes: empty.heapUsed,
    emptyExternalBytes: empty.external,
    modelBytes,
    modelBytesPerService: Math.round(modelBytes / Math.max(1, services)),
    modelRssBytes: loaded.rss - empty.rss,
  };
}
