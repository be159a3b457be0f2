// A connected sidecar as the mesh sees it: its identity, its outbound port, and, when it is
// a meshed instance it may serve, its inbound side.
import type { ProxyIdentity } from '../catalog/model.js';
import { meshService } from './build.js';
import type { Mesh, MeshInstance, MeshProxy, MeshService } from './types.js';

type Located = { service: MeshService; instance: MeshInstance };

const instanceIndexes = new WeakMap<Mesh, Map<string, Located>>();

/** The instance with this id (= the Envoy node id of its sidecar), if any. */
export function findMeshInstance(mesh: Mesh, nodeId: string): Located | undefined {
  let index = instanceIndexes.get(mesh);
  if (!index) {
    index = new Map();
    for (const service of mesh.services) {
      for (const instance of service.instances) {
        if (!index.has(instance.id)) index.set(instance.id, { service, instance });
      }
    }
    instanceIndexes.set(mesh, index);
  }
  return index.get(nodeId);
}

export function meshProxy(mesh: Mesh, proxy: ProxyIdentity): MeshProxy {
  const found = findMeshInstance(mesh, proxy.nodeId);
  // With authenticated proxies, a node id naming another service's instance gets nothing of it.
  const mayServe = !mesh.settings.authenticatedProxies || found?.service.name === proxy.service;
  const sidecarPort = found?.instance.sidecarPort;
  const own = proxy.service ? meshService(mesh, proxy.service) : undefined;
  return {
    nodeId: proxy.nodeId,
    service: proxy.service,
    outboundPort: proxy.outboundPort,
    ...(found && sidecarPort !== undefined && mayServe
      ? {
          inbound: {
            service: found.service.name,
            protocol: found.service.protocol,
            sidecarPort,
            appPort: found.instance.port,
            authorization: found.service.authorization,
            locality: found.instance.locality,
          },
        }
      : {}),
    upstreamOverrides: own?.upstreamOverrides ?? [],
  };
}
