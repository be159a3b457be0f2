// A small mesh for the operator surface tests (admin endpoints, `lucid-mesh mesh`, `route
// explain`, `status`): web calls api, whose router sends /admin to subset v2 and names a subset
// that does not exist for x-canary; a service-defaults field lucid-mesh does not implement.
import type { RunningControlPlane } from '../../src/app.js';
import { CatalogFile, startTestControlPlane } from '../support/mesh.js';

export const CATALOG = {
  services: [
    {
      name: 'web',
      instances: [{ id: 'web-1', address: '127.0.0.1', port: 9100, sidecarPort: 19100 }],
    },
    {
      name: 'api',
      instances: [
        {
          id: 'api-1',
          address: '127.0.0.1',
          port: 9101,
          sidecarPort: 19101,
          meta: { version: 'v1' },
        },
        {
          id: 'api-2',
          address: '127.0.0.1',
          port: 9102,
          sidecarPort: 19102,
          meta: { version: 'v2' },
        },
      ],
    },
  ],
};

export const TRAFFIC = [
  {
    Kind: 'service-resolver',
    Name: 'api',
    DefaultSubset: 'v1',
    Subsets: {
      v1: { Filter: 'Service.Meta.version == v1' },
      v2: { Filter: 'Service.Meta.version == v2' },
    },
  },
  {
    Kind: 'service-router',
    Name: 'api',
    Routes: [
      {
        Match: { HTTP: { PathPrefix: '/admin' } },
        Destination: {
          ServiceSubset: 'v2',
          RequestTimeout: '500ms',
          NumRetries: 3,
          RetryOn: ['5xx'],
        },
      },
      {
        Match: { HTTP: { Header: [{ Name: 'x-canary', Exact: '1' }] } },
        Destination: { ServiceSubset: 'v9' },
      },
    ],
  },
  { Kind: 'service-defaults', Name: 'api', Protocol: 'http', MaxInboundConnections: 10 },
];

/** The problem the router's missing subset gives, as /v1/config/errors lists it. */
export const MISSING_SUBSET = {
  kind: 'service-router',
  name: 'api',
  message:
    'Routes[1].Destination: subset "v9" is not defined by service-resolver/api; using the default destination',
};

export interface OperatorMesh {
  cp: RunningControlPlane;
  server: string;
  traffic: CatalogFile;
  close(): Promise<void>;
}

export async function startOperatorMesh(): Promise<OperatorMesh> {
  const catalog = new CatalogFile();
  const traffic = new CatalogFile('traffic.yaml');
  catalog.write(CATALOG);
  traffic.write(TRAFFIC);
  const cp = await startTestControlPlane(catalog, {}, { traffic });
  return {
    cp,
    server: `http://127.0.0.1:${cp.adminPort}`,
    traffic,
    async close() {
      await cp.stop();
      catalog.remove();
      traffic.remove();
    },
  };
}
