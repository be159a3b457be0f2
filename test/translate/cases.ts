// Loading a golden case: catalog.yaml, proxies.yaml and, optionally, security.yaml (mTLS
// identity, authorization policy, authenticated proxies), settings.yaml (datacenters,
// failover threshold) and traffic.yaml (config entries),
// turned into the mesh model every translator reads.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { z } from 'zod';
import {
  DEFAULT_OUTBOUND_PORT,
  type Catalog,
  type ProxyIdentity,
} from '../../src/catalog/model.js';
import { parseCatalog } from '../../src/catalog/schema.js';
import {
  buildMesh,
  DEFAULT_MESH_SETTINGS,
  type Mesh,
  type MeshSettings,
} from '../../src/mesh/index.js';
import { parsePolicy } from '../../src/policy/schema.js';
import type { Policy } from '../../src/policy/schema.js';
import { parseTrafficDocument } from '../../src/traffic/schema.js';
import { EMPTY_TRAFFIC, type TrafficConfig } from '../../src/traffic/types.js';

export const CASES_DIR = fileURLToPath(new URL('./cases/', import.meta.url));

const proxiesSchema = z.array(
  z
    .object({
      nodeId: z.string().min(1),
      service: z.string().default(''),
      outboundPort: z.number().int().min(1).max(65535).default(DEFAULT_OUTBOUND_PORT),
      /** node.metadata.dns_port as the xDS server reads it; absent: no DNS listener. */
      dnsPort: z.number().int().min(1).max(65535).optional(),
      /** node.metadata.exclusive_ports (what `lucid-mesh bootstrap` writes); absent: not set. */
      exclusivePorts: z.literal(true).optional(),
      /** node.metadata.dns_forward false (`bootstrap --dns-forward off`); absent: forwarded. */
      dnsForward: z.literal(false).optional(),
      /** node.metadata.vhds on a delta stream (`bootstrap --mode delta`): VHDS routes. */
      vhds: z.literal(true).optional(),
      locality: z
        .object({
          datacenter: z.string().optional(),
          region: z.string().optional(),
          zone: z.string().optional(),
        })
        .strict()
        .optional(),
    })
    .strict(),
);

/** settings.yaml: the serve flags that shape the mesh (datacenters, failover threshold). */
const settingsSchema = z
  .object({
    datacenter: z.string().optional(),
    datacenters: z.array(z.string()).optional(),
    failoverThresholdPercent: z.number().optional(),
    /** serve --scope (docs/scoping.md). */
    scope: z.enum(['all', 'declared', 'policy']).optional(),
  })
  .strict();

const securitySchema = z
  .object({
    mtls: z
      .object({
        trustDomain: z.string(),
        namespace: z.string(),
        format: z.literal('consul').optional(),
        datacenter: z.string().optional(),
      })
      .strict()
      .optional(),
    policy: z.unknown().optional(),
    authenticatedProxies: z.boolean().optional(),
    intentionsDefault: z.enum(['allow', 'deny']).optional(),
  })
  .strict();

export function readYaml(path: string): unknown {
  return parse(readFileSync(path, 'utf8')) as unknown;
}

export interface GoldenCase {
  dir: string;
  mesh: Mesh;
  proxies: ProxyIdentity[];
}

export function caseNames(): string[] {
  return readdirSync(CASES_DIR, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
}

/** What a case's mesh is built from, as the sources hand it over (before buildMesh). */
export interface CaseInputs {
  dir: string;
  catalog: Catalog;
  traffic: TrafficConfig;
  policy: Policy | undefined;
  settings: MeshSettings;
  proxies: ProxyIdentity[];
}

export function caseInputs(name: string): CaseInputs {
  const dir = join(CASES_DIR, name);
  const catalog = parseCatalog(readYaml(join(dir, 'catalog.yaml')));
  const proxies: ProxyIdentity[] = proxiesSchema.parse(readYaml(join(dir, 'proxies.yaml')) ?? []);
  const securityFile = join(dir, 'security.yaml');
  let settings: MeshSettings = DEFAULT_MESH_SETTINGS;
  let policy: Policy | undefined;
  if (existsSync(securityFile)) {
    const s = securitySchema.parse(readYaml(securityFile));
    settings = {
      ...DEFAULT_MESH_SETTINGS,
      ...(s.mtls ? { mtls: s.mtls } : {}),
      authenticatedProxies: s.authenticatedProxies === true,
      ...(s.intentionsDefault ? { intentionsDefault: s.intentionsDefault } : {}),
    };
    if (s.policy !== undefined) policy = parsePolicy(s.policy);
  }
  const settingsFile = join(dir, 'settings.yaml');
  if (existsSync(settingsFile)) {
    settings = { ...settings, ...settingsSchema.parse(readYaml(settingsFile)) };
  }
  const trafficFile = join(dir, 'traffic.yaml');
  const traffic = existsSync(trafficFile)
    ? parseTrafficDocument(readYaml(trafficFile))
    : EMPTY_TRAFFIC;
  return { dir, catalog, traffic, policy, settings, proxies };
}

export function loadCase(name: string): GoldenCase {
  const { dir, catalog, traffic, policy, settings, proxies } = caseInputs(name);
  const mesh = buildMesh({ catalog, traffic, policy, settings });
  return { dir, mesh, proxies };
}
