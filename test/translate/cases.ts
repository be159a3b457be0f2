// Loading a golden case: catalog.yaml, proxies.yaml and, optionally, security.yaml (mTLS
// identity, authorization policy, authenticated proxies) turned into TranslateOptions.
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
import { parsePolicy } from '../../src/policy/schema.js';
import { DEFAULT_TRANSLATE_OPTIONS, type TranslateOptions } from '../../src/translate/types.js';

export const CASES_DIR = fileURLToPath(new URL('./cases/', import.meta.url));

const proxiesSchema = z.array(
  z
    .object({
      nodeId: z.string().min(1),
      service: z.string().default(''),
      outboundPort: z.number().int().min(1).max(65535).default(DEFAULT_OUTBOUND_PORT),
    })
    .strict(),
);

const securitySchema = z
  .object({
    mtls: z.object({ trustDomain: z.string(), namespace: z.string() }).strict().optional(),
    policy: z.unknown().optional(),
    authenticatedProxies: z.boolean().optional(),
  })
  .strict();

export function readYaml(path: string): unknown {
  return parse(readFileSync(path, 'utf8')) as unknown;
}

export interface GoldenCase {
  dir: string;
  catalog: Catalog;
  proxies: ProxyIdentity[];
  options: TranslateOptions;
}

export function caseNames(): string[] {
  return readdirSync(CASES_DIR, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
}

export function loadCase(name: string): GoldenCase {
  const dir = join(CASES_DIR, name);
  const catalog = parseCatalog(readYaml(join(dir, 'catalog.yaml')));
  const proxies: ProxyIdentity[] = proxiesSchema.parse(readYaml(join(dir, 'proxies.yaml')) ?? []);
  const securityFile = join(dir, 'security.yaml');
  let options: TranslateOptions = DEFAULT_TRANSLATE_OPTIONS;
  if (existsSync(securityFile)) {
    const s = securitySchema.parse(readYaml(securityFile));
    options = {
      ...DEFAULT_TRANSLATE_OPTIONS,
      security: {
        ...(s.mtls ? { mtls: s.mtls } : {}),
        ...(s.policy !== undefined ? { policy: parsePolicy(s.policy) } : {}),
        ...(s.authenticatedProxies ? { authenticatedProxies: true } : {}),
      },
    };
  }
  return { dir, catalog, proxies, options };
}
