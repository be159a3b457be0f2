// Make-before-break: additions and changes go out clusters → endpoints → listeners → routes
// (→ virtual hosts → secrets), so nothing refers to a resource the proxy does not have yet; removals go out
// the other way round, so nothing is removed while something still refers to it.
import type { ResourceKind } from '../protos/envoy.js';

export const UPSERT_ORDER: readonly ResourceKind[] = [
  'clusters',
  'endpoints',
  'listeners',
  'routes',
  'virtualHosts',
  'secrets',
];
export const REMOVAL_ORDER: readonly ResourceKind[] = [...UPSERT_ORDER].reverse();
