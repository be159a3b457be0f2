// The mesh model over HTTP: what the control plane understood from its inputs, before any
// Envoy terms.
//   GET /v1/mesh[?service=S]     the Mesh (settings, services, mesh gateways and the default
//                                gateway mode, problems, unsupported)
//   GET /v1/config/errors        entries that could not be applied, and input not implemented
//   GET /v1/route/explain?from=&to=&path=[&method=][&header=k:v]...
//                                explainRoute against the live mesh
import { DocumentError } from '../catalog/load-document.js';
import { explainRoute, ExplainError, type RouteExplanation } from '../mesh/explain.js';
import type {
  Mesh,
  MeshGateway,
  MeshGatewayMode,
  MeshService,
  MeshSettings,
} from '../mesh/types.js';
import type { PolicyProvider } from '../policy/policy-file.js';
import type { ConfigProblem, TrafficProvider } from '../traffic/provider.js';
import { TrafficFile } from '../traffic/traffic-file.js';
import type { Unsupported } from '../traffic/types.js';
import { DumpError } from './snapshot-dump.js';

export interface MeshDump {
  snapshotVersion: string;
  settings: MeshSettings;
  services: readonly MeshService[];
  /** The catalog's mesh gateways (any datacenter). */
  gateways: readonly MeshGateway[];
  /** proxy-defaults MeshGateway.Mode (a service's service-defaults may set its own). */
  gatewayMode: MeshGatewayMode;
  problems: readonly ConfigProblem[];
  unsupported: readonly Unsupported[];
}

export interface ConfigErrors {
  /** The mesh's problems (entries applied in part or not at all), then the provider's. */
  problems: readonly ConfigProblem[];
  /** Input lucid-mesh does not implement (listed, never silently dropped). */
  unsupported: readonly Unsupported[];
}

const NO_MESH = 'no mesh yet: waiting for the first complete catalog';

export function meshDump(
  mesh: Mesh | undefined,
  snapshotVersion: string,
  service: string | null,
): MeshDump {
  if (!mesh) throw new DumpError(503, NO_MESH);
  if (service === null || service === '') {
    return {
      snapshotVersion,
      settings: mesh.settings,
      services: mesh.services,
      gateways: mesh.gateways,
      gatewayMode: mesh.gatewayMode,
      problems: mesh.problems,
      unsupported: mesh.unsupported,
    };
  }
  const found = mesh.services.find((s) => s.name === service);
  if (!found) {
    throw new DumpError(
      404,
      `service: ${JSON.stringify(service)} is not in the mesh (services: ${mesh.services.map((s) => s.name).join(', ') || 'none'})`,
    );
  }
  return {
    snapshotVersion,
    settings: mesh.settings,
    services: [found],
    gateways: mesh.gateways,
    gatewayMode: mesh.gatewayMode,
    problems: mesh.problems.filter((p) => p.name === service),
    unsupported: mesh.unsupported.filter((u) => u.name === service),
  };
}

/**
 * What the traffic provider could not apply: its rejected entries (Consul, etcd) and, for a
 * file, why its current content is not in force (the last good configuration still is).
 */
export function providerProblems(traffic: TrafficProvider | undefined): ConfigProblem[] {
  if (!traffic) return [];
  const problems = [...traffic.problems()];
  const effect = traffic.current()
    ? 'the last good traffic configuration stays in force'
    : 'not ready until it is fixed';
  for (const line of trafficErrors(traffic)) {
    problems.push({
      ...(traffic instanceof TrafficFile
        ? { kind: 'traffic-file', name: traffic.path }
        : { kind: 'source', name: traffic.name }),
      message: `${line} (${effect})`,
    });
  }
  return problems;
}

/**
 * Why the traffic configuration in force is not the current one, one line per problem (none: it
 * is): a file's rejected content, or a backend that cannot be read (etcd: permission denied).
 */
function trafficErrors(traffic: TrafficProvider): readonly string[] {
  const failure = traffic.failure?.();
  if (failure) return [failure];
  const lastError = traffic instanceof TrafficFile ? traffic.lastError() : undefined;
  if (!lastError) return [];
  return lastError instanceof DocumentError ? lastError.problems : [lastError.message];
}

/**
 * What /ready adds to "waiting for a valid traffic configuration / policy": the file's last
 * rejection (its first problem, and how many more) or why the backend cannot be read, as it does
 * for the catalog's.
 */
export function lastErrorSuffix(
  traffic: TrafficProvider | undefined,
  policy?: PolicyProvider,
): string {
  const lines = policy
    ? policyProblems(policy).map((p) => p.message.replace(/ \([^()]*\)$/, ''))
    : traffic
      ? trafficErrors(traffic)
      : [];
  if (lines.length === 0) return '';
  const more = lines.length > 1 ? ` (and ${lines.length - 1} more: lucid-mesh status)` : '';
  return `; last error: ${lines[0]}${more}`;
}

/**
 * Why the authorization policy's current content is not in force (a rejected edit of the file
 * or Consul key), one problem per line; the last good policy stays in force.
 */
export function policyProblems(policy: PolicyProvider | undefined): ConfigProblem[] {
  const lastError = (policy as { lastError?: () => Error | undefined } | undefined)?.lastError?.();
  if (!policy || !lastError) return [];
  const name = 'path' in policy && typeof policy.path === 'string' ? policy.path : 'consul';
  const lines = lastError instanceof DocumentError ? lastError.problems : [lastError.message];
  const effect = policy.current()
    ? 'the last good policy stays in force'
    : 'nothing is served until it is fixed';
  return lines.map((line) => ({ kind: 'policy', name, message: `${line} (${effect})` }));
}

/** /v1/config/errors: the mesh's problems and the provider's, and what is not implemented. */
export function configErrors(
  mesh: Mesh | undefined,
  traffic: TrafficProvider | undefined,
): ConfigErrors {
  return {
    problems: [...(mesh?.problems ?? []), ...providerProblems(traffic)],
    unsupported: mesh?.unsupported ?? traffic?.current()?.unsupported ?? [],
  };
}

/** `k:v` (the name may be a pseudo-header such as `:authority`). */
function parseHeader(text: string): [string, string] {
  const at = text.indexOf(':', text.startsWith(':') ? 1 : 0);
  if (at <= 0) {
    throw new DumpError(400, `header: expected name:value, got ${JSON.stringify(text)}`);
  }
  return [text.slice(0, at).trim(), text.slice(at + 1).trim()];
}

export function routeExplain(mesh: Mesh | undefined, params: URLSearchParams): RouteExplanation {
  const required = (name: string): string => {
    const value = params.get(name);
    if (value === null || value === '') {
      throw new DumpError(
        400,
        `${name}: required, e.g. /v1/route/explain?from=web&to=api&path=/admin&method=GET&header=x-canary:1`,
      );
    }
    return value;
  };
  const from = required('from');
  const to = required('to');
  const path = required('path');
  if (!mesh) throw new DumpError(503, NO_MESH);
  const headers: Record<string, string[]> = {};
  for (const h of params.getAll('header')) {
    const [name, value] = parseHeader(h);
    (headers[name.toLowerCase()] ??= []).push(value);
  }
  try {
    return explainRoute(mesh, {
      from,
      to,
      path,
      method: params.get('method') || undefined,
      headers,
    });
  } catch (err) {
    if (err instanceof ExplainError) {
      throw new DumpError(err.reason === 'unknown-service' ? 404 : 400, err.message);
    }
    throw err;
  }
}
