// Without --datacenter the control plane is in its source's datacenter (Consul: the agent's),
// so instances the source reports there, and sidecars that name it, are local.
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import type { Catalog } from '../../src/catalog/model.js';
import { parseCatalog } from '../../src/catalog/schema.js';
import type { CatalogSink, DiscoverySource } from '../../src/sources/source.js';
import { startLoopbackControlPlane } from '../support/settable-source.js';
import { waitFor } from '../support/wait.js';

/** A source in datacenter "east" (the Consul one is tested against real Consul in test/sources). */
class EastSource implements DiscoverySource {
  readonly name = 'east';
  constructor(private readonly catalog: Catalog) {}
  async start(sink: CatalogSink): Promise<void> {
    sink.update(this.catalog);
  }
  async stop(): Promise<void> {}
  localDatacenter(): string {
    return 'east';
  }
}

const catalog = parseCatalog({
  services: [
    {
      name: 'api',
      instances: [
        { id: 'api-1', address: '10.0.0.1', port: 80, datacenter: 'east' },
        { id: 'api-2', address: '10.0.1.1', port: 80, datacenter: 'west' },
      ],
    },
  ],
});

let cp: RunningControlPlane | undefined;
afterEach(async () => {
  await cp?.stop();
  cp = undefined;
});

async function start(datacenter?: string): Promise<RunningControlPlane> {
  cp = await startLoopbackControlPlane(
    new EastSource(catalog),
    datacenter ? { mesh: { datacenter } } : {},
  );
  return cp;
}

describe("the control plane's datacenter", () => {
  it('is the source’s when --datacenter is not given', async () => {
    const running = await start();
    await waitFor(() => running.store.mesh?.settings.datacenter === 'east', {
      what: 'the datacenter taken from the source',
    });
    // A sidecar that names no datacenter is in east: api-1 first, west after it.
    const view = running.store.viewFor({ nodeId: 'web-1', service: 'web', outboundPort: 15001 });
    expect(running.store.mesh!.services[0]!.instances.map((i) => i.locality.datacenter)).toEqual([
      'east',
      'west',
    ]);
    expect(view.snapshot).toBe(running.store.snapshot);
  });

  it('is --datacenter when given', async () => {
    const running = await start('west');
    await waitFor(() => running.store.ready, { what: 'ready' });
    expect(running.store.mesh?.settings.datacenter).toBe('west');
  });
});
