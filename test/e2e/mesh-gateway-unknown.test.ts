// A mesh gateway whose node id is no gateway of the catalog (a typo in `bootstrap --gateway
// mesh --node-id`, or not registered yet), with real Envoy: it is told so on its status row and
// configured nothing, rather than served as a sidecar (an outbound listener, SYNCED) that
// forwards nothing. Once its id is registered it gets its gateway listener.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProxyRow } from '../../src/admin/proxies.js';
import type { RunningControlPlane } from '../../src/app.js';
import { MemoryCaStore, openCa, type OpenedCa } from '../../src/ca/index.js';
import type { EnvoyHandle } from '../support/envoy.js';
import { startMeshGateway } from '../support/gateway.js';
import { httpGet } from '../support/http-app.js';
import { CatalogFile, rejectedUpdates, startTestControlPlane } from '../support/mesh.js';
import { freePorts } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

describe('a mesh gateway that is not in the catalog', () => {
  const catalog = new CatalogFile();
  let ca: OpenedCa | undefined;
  let cp: RunningControlPlane | undefined;
  let gw: EnvoyHandle | undefined;
  let ports: number[];

  const doc = (gatewayIds: string[]) => ({
    services: [
      {
        name: 'api',
        instances: [
          {
            id: 'api-1',
            address: '127.0.0.1',
            port: ports[0]!,
            sidecarPort: ports[1]!,
            datacenter: 'dc2',
          },
        ],
      },
    ],
    gateways: gatewayIds.map((id, i) => ({
      id,
      datacenter: 'dc2',
      address: '127.0.0.1',
      port: ports[2 + i]!,
    })),
  });

  beforeAll(async () => {
    ports = await freePorts(4);
    catalog.write(doc(['gw-dc2']));
    ca = await openCa({ store: new MemoryCaStore() });
    cp = await startTestControlPlane(catalog, {}, { security: { ca, mtls: true, auth: 'token' } });
  });

  afterAll(async () => {
    await gw?.stop();
    await cp?.stop();
    ca?.stop();
    catalog.remove();
  });

  it('is refused with the catalog’s gateway ids on its row, then configured once registered', async () => {
    gw = await startMeshGateway({
      id: 'gw-dc2-1',
      datacenter: 'dc2',
      xdsPort: cp!.xdsPort,
      mode: 'sotw',
      token: await ca!.tokens.issue('mesh-gateway'),
    });
    const operator = await ca!.tokens.issueOperator({ name: 'gateway-test' });
    const row = async () =>
      (
        JSON.parse(
          (
            await httpGet(`http://127.0.0.1:${cp!.adminPort}/v1/proxies`, {
              authorization: `Bearer ${operator}`,
            })
          ).body,
        ) as { proxies: ProxyRow[] }
      ).proxies.find((p) => p.nodeId === 'gw-dc2-1');
    const refused = await waitFor(async () => (await row())?.buildError, {
      what: 'gw-dc2-1 refused on its status row',
    });
    expect(refused.message).toBe(
      'node "gw-dc2-1" is bootstrapped as a mesh gateway but is no gateway of the catalog (its gateways: gw-dc2); it gets no configuration until its node id is registered as one',
    );
    // Nothing to listen on: not a sidecar's outbound listener (which forwards nothing).
    expect((await gw.admin('/listeners')).trim()).toBe('');

    catalog.write(doc(['gw-dc2', 'gw-dc2-1']));
    await gw.waitFor(
      async () => (await gw!.admin('/listeners')).includes(`mesh-gateway|gw-dc2-1`),
      'its gateway listener once it is registered',
    );
    expect((await row())?.buildError).toBeUndefined();
    expect(await rejectedUpdates(gw)).toBe(0);
  });
});
