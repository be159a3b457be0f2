// A Consul sidecar registration's Proxy.Config.lucid_local_app_idle_timeout_ms becomes its
// service's localAppIdleTimeoutMs (docs/local-app.md); bad values and disagreements are named.
import { describe, expect, it } from 'vitest';
import type { ConsulHealthEntry } from '../../src/sources/consul/client.js';
import { mapConsulCatalog } from '../../src/sources/consul/mapping.js';
import { webApp, webSidecar } from './consul-web-entries.js';

const sidecar = (id: string, config: Record<string, unknown>) => webSidecar(id, { Config: config });

function map(...sidecars: ConsulHealthEntry[]) {
  const apps = sidecars.map((s) => webApp(s.Service.ID.replace('-sidecar-proxy', '')));
  return mapConsulCatalog(
    new Map([
      ['web', apps],
      ['web-sidecar-proxy', sidecars],
    ]),
    { warningAs: 'passing' },
  );
}

const KEY = 'lucid_local_app_idle_timeout_ms';

describe('Consul Proxy.Config.lucid_local_app_idle_timeout_ms', () => {
  it('a number or a string of digits sets the service’s timeout', () => {
    expect(map(sidecar('web-1', { [KEY]: 3000 })).catalog.services[0]!.localAppIdleTimeoutMs).toBe(
      3000,
    );
    expect(map(sidecar('web-1', { [KEY]: '0' })).catalog.services[0]!.localAppIdleTimeoutMs).toBe(
      0,
    );
    expect(map(sidecar('web-1', {})).catalog.services[0]!.localAppIdleTimeoutMs).toBeUndefined();
  });

  it('a bad value is named and ignored; the instance stays', () => {
    const { catalog, problems } = map(sidecar('web-1', { [KEY]: '4s' }));
    expect(catalog.services[0]!.instances).toHaveLength(1);
    expect(catalog.services[0]!.localAppIdleTimeoutMs).toBeUndefined();
    expect(problems).toEqual([
      `consul service "web" instance "web-1-sidecar-proxy": Proxy.Config.${KEY}: expected integer 0-86400000 (ms), got "4s"; ignored`,
    ]);
  });

  it('sidecars that disagree: reported, the most common value wins', () => {
    const { catalog, problems } = map(
      sidecar('web-1', { [KEY]: 3000 }),
      sidecar('web-2', { [KEY]: 3000 }),
      sidecar('web-3', { [KEY]: 9000 }),
    );
    expect(catalog.services[0]!.localAppIdleTimeoutMs).toBe(3000);
    expect(problems).toEqual([
      `consul service "web": sidecars disagree on Proxy.Config.${KEY} (3000: 2, 9000: 1); using 3000`,
    ]);
  });
});
