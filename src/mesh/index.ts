// The mesh model: inputs → IR. See types.ts for what it holds.
export { buildMesh, meshService, MeshCache, withoutFailover } from './build.js';
export {
  findMeshInstance,
  gatewayOf,
  meshProxy,
  meshServiceNames,
  proxyLocality,
  MESH_GATEWAY_SERVICE,
} from './proxy.js';
export { proxyScope, reachableFrom, sameReach } from './scope.js';
export { localityKey, localityRank, datacenterOrder } from './locality.js';
export { backendName } from './names.js';
export type { MeshInputs } from './inputs.js';
export type * from './types.js';
export { DEFAULT_MESH_SETTINGS } from './types.js';
