// What `config check` finds beyond each entry on its own: what the entries name that does not
// exist. Consul refuses such an entry when it is written (a route to a subset the resolver does
// not define, a split to a service whose protocol is not HTTP); `serve` applies it with the
// default destination instead and lists it in `lucid-mesh status`. Checked offline by building
// the mesh as serve would: from the catalog when given, else assuming every service the
// entries name exists (so only what the file itself contradicts is reported).
import type { Catalog } from '../catalog/model.js';
import { parseCatalog } from '../catalog/schema.js';
import { buildMesh } from '../mesh/build.js';
import { DEFAULT_MESH_SETTINGS } from '../mesh/types.js';
import { DEFAULT_NAMESPACE, DEFAULT_TRUST_DOMAIN } from '../policy/schema.js';
import type { ConfigProblem } from '../traffic/provider.js';
import type { TrafficConfig } from '../traffic/types.js';

/** The problems serve would list for these entries (with `catalog`, or the services named). */
export function referenceProblems(
  traffic: TrafficConfig,
  catalog: Catalog | undefined,
): ConfigProblem[] {
  const mesh = buildMesh({
    catalog:
      catalog ?? parseCatalog({ services: [...namedServices(traffic)].map((name) => ({ name })) }),
    traffic,
    settings: {
      ...DEFAULT_MESH_SETTINGS,
      mtls: { trustDomain: DEFAULT_TRUST_DOMAIN, namespace: DEFAULT_NAMESPACE },
    },
  });
  // Without a catalog, what depends on instances and outbound ports (catalog fields) is unknown.
  const found = catalog
    ? mesh.problems
    : mesh.problems.filter((p) => !NEEDS_CATALOG.test(p.message));
  const seen = new Set<string>();
  return found.filter((p) => {
    const key = `${p.kind}/${p.name}: ${p.message}`;
    return !seen.has(key) && !!seen.add(key);
  });
}

const NEEDS_CATALOG = /has no outbound port|has no instances/;

/** Every service an entry configures or refers to (`Service` fields at any depth). */
function namedServices(traffic: TrafficConfig): Set<string> {
  const names = new Set<string>();
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) value.forEach(visit);
    else if (value && typeof value === 'object') {
      for (const [key, v] of Object.entries(value)) {
        if (key === 'Service' && typeof v === 'string' && v !== '*') names.add(v);
        else visit(v);
      }
    }
  };
  for (const entries of [
    traffic.serviceDefaults,
    traffic.routers,
    traffic.splitters,
    traffic.resolvers,
  ]) {
    for (const [name, entry] of entries) {
      names.add(name);
      visit(entry);
    }
  }
  return names;
}
