// Consul's explicit upstreams (sidecar registrations' Proxy.Upstreams) become the service's
// declared upstreams; bad entries are named and skipped.
import { describe, expect, it } from 'vitest';
import { mapConsulCatalog } from '../../src/sources/consul/mapping.js';
import { webApp, webSidecar } from './consul-web-entries.js';

const app = webApp;
const sidecar = (id: string, upstreams: unknown) => webSidecar(id, { Upstreams: upstreams });

describe('Consul Proxy.Upstreams', () => {
  it('the sidecars’ upstreams together, bind ports kept, bad entries named and skipped', () => {
    const { catalog, problems } = mapConsulCatalog(
      new Map([
        ['web', [app('web-1'), app('web-2')]],
        [
          'web-sidecar-proxy',
          [
            sidecar('web-1', [
              { DestinationType: 'service', DestinationName: 'api', LocalBindPort: 9191 },
              { DestinationName: 'Bad_Name', LocalBindPort: 9192 },
              { DestinationType: 'prepared_query', DestinationName: 'q' },
            ]),
            sidecar('web-2', [
              { DestinationName: 'search', LocalBindAddress: '127.0.0.2', LocalBindPort: 9300 },
              { DestinationName: 'api', LocalBindPort: 0 },
            ]),
          ],
        ],
      ]),
      { warningAs: 'passing' },
    );
    expect(catalog.services[0]!.upstreams).toEqual([
      { name: 'api', localBindPort: 9191 },
      { name: 'search', localBindPort: 9300, localBindAddress: '127.0.0.2' },
    ]);
    expect(problems).toEqual([
      expect.stringMatching(
        /"web" instance "web-1-sidecar-proxy": Proxy\.Upstreams\[1\]: .*"Bad_Name".*upstream ignored/,
      ),
      expect.stringMatching(
        /Proxy\.Upstreams\[2\]: DestinationType prepared_query is not supported/,
      ),
    ]);
  });

  it('LocalBindSocketPath and Datacenter, which lucid-mesh does not act on, are named; the upstreams stay declared', () => {
    const { catalog, problems } = mapConsulCatalog(
      new Map([
        ['web', [app('web-1')]],
        [
          'web-sidecar-proxy',
          [
            sidecar('web-1', [
              { DestinationName: 'api', LocalBindSocketPath: '/run/api.sock', LocalBindPort: 0 },
              { DestinationName: 'db', Datacenter: 'dc2', LocalBindPort: 5432 },
              { DestinationName: 'search', Datacenter: '', LocalBindPort: 9200 },
            ]),
          ],
        ],
      ]),
      { warningAs: 'passing' },
    );
    expect(catalog.services[0]!.upstreams).toEqual([
      { name: 'api' },
      { name: 'db', localBindPort: 5432 },
      { name: 'search', localBindPort: 9200 },
    ]);
    expect(problems).toEqual([
      'consul service "web" instance "web-1-sidecar-proxy": Proxy.Upstreams[0]: LocalBindSocketPath is not supported (no unix socket listener for "api"); use LocalBindPort',
      'consul service "web" instance "web-1-sidecar-proxy": Proxy.Upstreams[1]: Datacenter "dc2" is not read; "db" is reached in the mesh\'s locality and failover order',
    ]);
  });

  it('two upstreams on one bind port: the second gets no listener, reported; the service stays', () => {
    const { catalog, problems } = mapConsulCatalog(
      new Map([
        ['web', [app('web-1')]],
        [
          'web-sidecar-proxy',
          [
            sidecar('web-1', [
              { DestinationName: 'api', LocalBindPort: 9191 },
              { DestinationName: 'db', LocalBindPort: 9191 },
              { DestinationName: 'cache', LocalBindPort: 9191, LocalBindAddress: '0.0.0.0' },
            ]),
          ],
        ],
      ]),
      { warningAs: 'passing' },
    );
    expect(catalog.services[0]!.upstreams).toEqual([
      { name: 'api', localBindPort: 9191 },
      { name: 'cache' },
      { name: 'db' },
    ]);
    expect(problems).toEqual([
      expect.stringContaining(
        'upstream "db": LocalBindPort 127.0.0.1:9191 is already the local bind address of upstream "api"; "db" gets no local listener',
      ),
      expect.stringContaining(
        'upstream "cache": LocalBindPort 0.0.0.0:9191 overlaps 127.0.0.1:9191, the local bind address of upstream "api"; "cache" gets no local listener',
      ),
    ]);
  });

  it('no sidecar declaring upstreams: none declared (the service is not scoped by them)', () => {
    const { catalog } = mapConsulCatalog(
      new Map([
        ['web', [app('web-1')]],
        ['web-sidecar-proxy', [sidecar('web-1', undefined)]],
      ]),
      { warningAs: 'passing' },
    );
    expect(catalog.services[0]!.upstreams).toBeUndefined();
  });

  it('an upstream in a cluster peer, another partition or namespace is named and skipped', () => {
    const { catalog, problems } = mapConsulCatalog(
      new Map([
        ['web', [app('web-1')]],
        [
          'web-sidecar-proxy',
          [
            sidecar('web-1', [
              { DestinationName: 'api', DestinationPeer: 'cluster-02', LocalBindPort: 9191 },
              { DestinationName: 'db', DestinationPartition: 'finance' },
              { DestinationName: 'cache', DestinationNamespace: 'team-b' },
              {
                DestinationName: 'search',
                DestinationPeer: '',
                DestinationPartition: 'default',
                DestinationNamespace: 'default',
              },
            ]),
          ],
        ],
      ]),
      { warningAs: 'passing' },
    );
    // The local api, db and cache are other services: none of them is sent for these entries.
    expect(catalog.services[0]!.upstreams).toEqual([{ name: 'search' }]);
    const where = 'consul service "web" instance "web-1-sidecar-proxy": Proxy.Upstreams';
    const why = (name: string) =>
      `is not supported (lucid-mesh reaches only services of its own mesh, and its "${name}" is another service); upstream ignored`;
    expect(problems).toEqual([
      `${where}[0]: DestinationPeer "cluster-02" ${why('api')}`,
      `${where}[1]: DestinationPartition "finance" ${why('db')}`,
      `${where}[2]: DestinationNamespace "team-b" ${why('cache')}`,
    ]);
  });
});
