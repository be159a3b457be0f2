// GET /v1/mesh/calls: who may call whom under the policy file and Consul's intentions, for
// every pair of services in the mesh (the console draws it as a graph). Each decision is the
// one `route explain` gives for a plain `GET /`; where L7 intentions decide per request, the
// edge says so (`perRequest`) rather than pretending one answer holds for every request.
import type { Decision } from '../policy/evaluate.js';
import { explainRoute } from '../mesh/explain.js';
import type { Mesh } from '../mesh/types.js';
import { DumpError } from './snapshot-dump.js';

/** More services than this make an unreadable graph and n² explanations: refused. */
export const MAX_GRAPH_SERVICES = 200;

export interface CallEdge {
  readonly from: string;
  readonly to: string;
  readonly decision: Decision;
  /** false: no mTLS, so the sidecars do not enforce the decision. */
  readonly enforced: boolean;
  /** The decision depends on the request (L7 intention permissions). */
  readonly perRequest: boolean;
  readonly reason: string;
}

export interface CallGraph {
  readonly services: readonly string[];
  readonly calls: readonly CallEdge[];
}

export function callGraph(mesh: Mesh | undefined): CallGraph {
  if (!mesh) throw new DumpError(503, 'no mesh yet: waiting for the first complete catalog');
  const services = mesh.services.map((s) => s.name);
  if (services.length > MAX_GRAPH_SERVICES) {
    throw new DumpError(
      413,
      `the mesh has ${services.length} services; the call graph is drawn for at most ${MAX_GRAPH_SERVICES} (use /v1/route/explain for one pair)`,
    );
  }
  const calls: CallEdge[] = [];
  for (const to of mesh.services) {
    const rules = to.authorization.intentions?.rules ?? [];
    for (const from of services) {
      if (from === to.name) continue;
      // Exact sources first, then "*" (as mesh/explain.ts reads them).
      const rule = rules.find((r) => r.source === from) ?? rules.find((r) => r.source === '*');
      const perRequest = to.protocol !== 'tcp' && (rule?.permissions?.length ?? 0) > 0;
      const { authorization } = explainRoute(mesh, { from, to: to.name, path: '/', headers: {} });
      calls.push({
        from,
        to: to.name,
        decision: authorization.decision,
        enforced: authorization.enforced,
        perRequest,
        reason: authorization.reason,
      });
    }
  }
  return { services, calls };
}
