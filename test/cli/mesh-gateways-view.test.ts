// `lucid-mesh mesh` and GET /v1/mesh show the mesh gateways the control plane knows (their
// datacenter, LAN and WAN addresses, health) and the gateway modes in force: what decides how
// sidecars reach other datacenters; GET /v1/snapshot previews a gateway's own resources.
// Against a real control plane, in-process.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MeshDump } from '../../src/admin/mesh-endpoints.js';
import type { RunningControlPlane } from '../../src/app.js';
import { MemoryCaStore, openCa, type OpenedCa } from '../../src/ca/index.js';
import type { SnapshotDump } from '../../src/admin/snapshot-dump.js';
import { meshCommand } from '../../src/cli/mesh-command.js';
import { httpGet } from '../support/http-app.js';
import { CatalogFile, startTestControlPlane } from '../support/mesh.js';
import { runCommand } from '../support/run-command.js';

describe('lucid-mesh mesh with mesh gateways', () => {
  const catalog = new CatalogFile();
  const traffic = new CatalogFile('traffic.yaml');
  let ca: OpenedCa | undefined;
  let cp: RunningControlPlane | undefined;
  let token: string;

  beforeAll(async () => {
    catalog.write({
      services: [
        {
          name: 'api',
          instances: [
            { id: 'api-1', address: '10.0.1.5', port: 8080, sidecarPort: 21000, datacenter: 'dc1' },
            { id: 'api-2', address: '10.0.2.5', port: 8080, sidecarPort: 21000, datacenter: 'dc2' },
          ],
        },
        { name: 'web', instances: [] },
      ],
      gateways: [
        { id: 'gw-dc1', datacenter: 'dc1', address: '10.0.1.9', port: 8443 },
        {
          id: 'gw-dc2',
          datacenter: 'dc2',
          address: '10.0.2.9',
          port: 8443,
          wanAddress: '192.0.2.2',
          wanPort: 443,
          health: 'critical',
        },
      ],
    });
    traffic.write([
      { Kind: 'proxy-defaults', Name: 'global', MeshGateway: { Mode: 'local' } },
      { Kind: 'service-defaults', Name: 'web', MeshGateway: { Mode: 'remote' } },
    ]);
    ca = await openCa({ store: new MemoryCaStore() });
    cp = await startTestControlPlane(
      catalog,
      {},
      { security: { ca, mtls: true, auth: 'token' }, traffic },
    );
    token = await ca.tokens.issueOperator({ name: 'mesh-gateways-view' });
  });

  afterAll(async () => {
    await cp?.stop();
    ca?.stop();
    catalog.remove();
    traffic.remove();
  });

  const mesh = (...args: string[]) =>
    runCommand(meshCommand, [
      '--server',
      `http://127.0.0.1:${cp!.adminPort}`,
      '--token',
      token,
      ...args,
    ]);

  it('lists each gateway with its datacenter, addresses and health, and the modes in force', async () => {
    const r = await mesh();
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      'Mesh gateways (mode local, proxy-defaults):\n' +
        '  gw-dc1  dc1  10.0.1.9:8443  healthy\n' +
        '  gw-dc2  dc2  10.0.2.9:8443  wan 192.0.2.2:443  critical\n',
    );
    expect(r.stdout).toMatch(
      /^web {2}http.*\n {2}instances: none\n {2}mesh gateway mode: remote \(service-defaults/m,
    );
  });

  it('--json: the gateways and the default mode', async () => {
    const dump = JSON.parse((await mesh('--json')).stdout) as MeshDump;
    expect(dump.gatewayMode).toBe('local');
    expect(dump.gateways.map((g) => [g.id, g.datacenter, g.healthy])).toEqual([
      ['gw-dc1', 'dc1', true],
      ['gw-dc2', 'dc2', false],
    ]);
  });

  it('GET /v1/snapshot of a gateway not connected yet previews its gateway listener, not a sidecar’s', async () => {
    const r = await httpGet(
      `http://127.0.0.1:${cp!.adminPort}/v1/snapshot?node=gw-dc1&type=listeners`,
      { authorization: `Bearer ${token}` },
    );
    const dump = JSON.parse(r.body) as SnapshotDump;
    expect(dump.connected).toBe(false);
    expect(dump.resources.listeners!.map((l) => l.name)).toEqual(['mesh-gateway|gw-dc1']);
  });
});
