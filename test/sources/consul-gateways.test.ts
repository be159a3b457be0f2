// Consul mesh-gateway registrations (Kind mesh-gateway, as a Consul user already has them)
// become the catalog's gateways, against a real Consul agent.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Catalog } from '../../src/catalog/model.js';
import { ConsulSource } from '../../src/sources/consul/consul-source.js';
import type { CatalogSink } from '../../src/sources/source.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { CONSUL_SETUP_TIMEOUT_MS, startConsul, type ConsulAgent } from '../support/consul.js';
import { waitFor } from '../support/wait.js';

class LatestSink implements CatalogSink {
  latest: Catalog | undefined;
  update(catalog: Catalog): void {
    this.latest = catalog;
  }
  error(): void {}
}

describe('Consul mesh gateways', () => {
  let consul: ConsulAgent;
  let source: ConsulSource | undefined;
  beforeAll(async () => {
    consul = await startConsul();
  }, CONSUL_SETUP_TIMEOUT_MS);
  afterAll(async () => {
    await source?.stop();
    await consul?.stop();
  });

  it('reads a Kind mesh-gateway registration with its lan and wan addresses and health', async () => {
    await consul.register({
      Kind: 'mesh-gateway',
      Name: 'mesh-gateway',
      ID: 'gw-1',
      Address: '127.0.0.5',
      Port: 8443,
      TaggedAddresses: {
        lan: { Address: '127.0.0.5', Port: 8443 },
        wan: { Address: '198.51.100.7', Port: 443 },
      },
      Check: { CheckID: 'gw-1-ttl', TTL: '10m', Status: 'passing' },
    });
    await consul.register({ Name: 'api', ID: 'api-1', Port: 8080 });
    const sink = new LatestSink();
    source = new ConsulSource(
      { connection: { secure: false, host: '127.0.0.1', port: consul.httpPort }, waitMs: 20_000 },
      silentLogger,
    );
    await source.start(sink);
    await waitFor(() => sink.latest?.gateways?.length === 1, {
      what: 'the gateway in the catalog',
    });
    expect(sink.latest!.gateways).toEqual([
      {
        id: 'gw-1',
        datacenter: 'dc1',
        address: '127.0.0.5',
        port: 8443,
        wanAddress: '198.51.100.7',
        wanPort: 443,
        health: 'passing',
      },
    ]);
    // A gateway is not a service.
    expect(sink.latest!.services.map((s) => s.name)).toEqual(['api']);

    await consul.api('PUT', '/v1/agent/check/fail/gw-1-ttl');
    await waitFor(() => sink.latest?.gateways?.[0]?.health === 'critical', {
      what: 'the gateway critical',
    });
    await consul.deregister('gw-1');
    await waitFor(() => (sink.latest?.gateways ?? []).length === 0, { what: 'the gateway gone' });
  });
});
