// Make-before-break: additions and changes go out clusters → endpoints → listeners → routes
// → virtual hosts → secrets (RESOURCE_KINDS' order, its one home), so nothing refers to a
// resource the proxy does not have yet; removals go out the other way round, so nothing is
// removed while something still refers to it.
import { RESOURCE_KINDS, type ResourceKind } from '../protos/envoy.js';

export const UPSERT_ORDER: readonly ResourceKind[] = RESOURCE_KINDS;
export const REMOVAL_ORDER: readonly ResourceKind[] = [...UPSERT_ORDER].reverse();
