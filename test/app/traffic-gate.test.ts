// A traffic file that is invalid from the start holds the control plane back (intentions are
// authorization); /ready says why with the file's own error, as it does for the catalog, and
// /v1/config/errors does not claim a last good configuration that never was.
import { afterAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import { httpGet } from '../support/http-app.js';
import { CatalogFile, startTestControlPlane } from '../support/mesh.js';
import { waitFor } from '../support/wait.js';

const catalog = new CatalogFile();
const traffic = new CatalogFile('traffic.yaml');
let cp: RunningControlPlane | undefined;
afterAll(async () => {
  await cp?.stop();
  catalog.remove();
  traffic.remove();
});

const NEGATIVE =
  'service-router/api: Routes[0].Destination.NumRetries: expected integer ≥ 0, got -1';

describe('traffic gate', () => {
  it('not ready with the file’s error until the file is fixed', async () => {
    catalog.write({
      services: [{ name: 'api', instances: [{ id: 'api-1', address: '127.0.0.1', port: 8080 }] }],
    });
    traffic.write([
      { Kind: 'service-router', Name: 'api', Routes: [{ Destination: { NumRetries: -1 } }] },
      { Kind: 'service-splitter', Name: 'api', Splits: [{ Weight: 90 }] },
    ]);
    cp = await startTestControlPlane(catalog, {}, { traffic });
    const get = (path: string) => httpGet(`http://127.0.0.1:${cp!.adminPort}${path}`);

    const before = await get('/ready');
    expect(before.status).toBe(503);
    expect(JSON.parse(before.body).reason).toBe(
      `waiting for a valid traffic configuration from file; last error: ${NEGATIVE} (and 1 more: lucid-mesh status)`,
    );
    const errors = JSON.parse((await get('/v1/config/errors')).body) as {
      problems: Array<{ kind: string; message: string }>;
    };
    expect(errors.problems.map((p) => [p.kind, p.message])).toEqual([
      ['traffic-file', `${NEGATIVE} (not ready until it is fixed)`],
      [
        'traffic-file',
        'service-splitter/api: Splits: expected weights summing to 100, got 90 (not ready until it is fixed)',
      ],
    ]);

    traffic.write([
      { Kind: 'service-router', Name: 'api', Routes: [{ Destination: { NumRetries: 1 } }] },
    ]);
    await waitFor(async () => (await get('/ready')).status === 200, { what: 'ready once fixed' });
  });
});
