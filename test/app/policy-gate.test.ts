// A configured authorization policy that has not loaded holds the mesh back: serving without
// it would open what it closes. Once it loads, the catalog that waited is served.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import { openCa } from '../../src/ca/open.js';
import type { PolicyProvider } from '../../src/policy/policy-file.js';
import { parsePolicy, type Policy } from '../../src/policy/schema.js';
import { httpGet } from '../support/http-app.js';
import { CatalogFile, startTestControlPlane } from '../support/mesh.js';
import { waitFor } from '../support/wait.js';

/** A policy that arrives when the test says so (the file-backed one is tested in test/policy). */
class LatePolicy implements PolicyProvider {
  private policy: Policy | undefined;
  private readonly listeners = new Set<(p: Policy) => void>();
  current(): Policy | undefined {
    return this.policy;
  }
  onChange(listener: (p: Policy) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  arrive(policy: Policy): void {
    this.policy = policy;
    for (const l of this.listeners) l(policy);
  }
}

let cp: RunningControlPlane | undefined;
const catalog = new CatalogFile();
afterEach(async () => {
  await cp?.stop();
  cp = undefined;
});

describe('policy gate', () => {
  it('stays not ready without a valid policy, then serves the waiting catalog', async () => {
    catalog.write({
      services: [{ name: 'web', instances: [{ id: 'web-1', address: '127.0.0.1', port: 8080 }] }],
    });
    const ca = await openCa({ dataDir: mkdtempSync(join(tmpdir(), 'lucid-gate-')) });
    const policy = new LatePolicy();
    cp = await startTestControlPlane(
      catalog,
      {},
      { security: { ca, mtls: true, auth: 'none', policy } },
    );
    const ready = () => httpGet(`http://127.0.0.1:${cp!.adminPort}/ready`);
    // The catalog has been read and accepted from the source...
    await waitFor(
      async () =>
        (
          await cp!.metrics.registry.getSingleMetricAsString(
            'lucid_mesh_source_last_success_timestamp_seconds',
          )
        ).includes('source="file"'),
      { what: 'the catalog read' },
    );
    // ...and still nothing is served.
    const before = await ready();
    expect(before.status).toBe(503);
    expect(JSON.parse(before.body).reason).toBe('waiting for a valid authorization policy');
    expect(cp.store.ready).toBe(false);

    policy.arrive(parsePolicy({ defaults: { action: 'deny' } }));
    await waitFor(async () => (await ready()).status === 200, { what: 'ready after the policy' });
    expect(cp.store.snapshot?.mesh.services.map((s) => s.name)).toEqual(['web']);
    ca.stop();
  });
});
