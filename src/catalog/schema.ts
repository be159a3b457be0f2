// Validation of catalog documents (file source; the etcd source reuses instanceSchema).
// Error messages name the path and the offending value, e.g.
//   services[2].instances[0].port: expected integer 1-65535, got "80a"
import { z } from 'zod';
import './zod-wording.js';
import { bindAddressesOverlap, bindAddressOf } from './bind-address.js';
import {
  HEALTH_STATES,
  PROTOCOLS,
  normalizeCatalog,
  type Catalog,
  type Gateway,
  type Service,
  type Upstream,
} from './model.js';

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const INSTANCE_ID = /^[A-Za-z0-9]([A-Za-z0-9._:-]{0,126}[A-Za-z0-9])?$/;

const port = z
  .number({ error: (i) => `expected integer 1-65535, got ${show(i.input)}` })
  .int({ error: (i) => `expected integer 1-65535, got ${show(i.input)}` })
  .min(1, { error: (i) => `expected integer 1-65535, got ${show(i.input)}` })
  .max(65535, { error: (i) => `expected integer 1-65535, got ${show(i.input)}` });

/** Milliseconds up to a day; 0 turns the timeout off (Envoy's meaning of a zero duration). */
export const MAX_TIMEOUT_MS = 86_400_000;
export const timeoutMs = z
  .number({ error: (i) => `expected integer 0-${MAX_TIMEOUT_MS} (ms), got ${show(i.input)}` })
  .int({ error: (i) => `expected integer 0-${MAX_TIMEOUT_MS} (ms), got ${show(i.input)}` })
  .min(0, { error: (i) => `expected integer 0-${MAX_TIMEOUT_MS} (ms), got ${show(i.input)}` })
  .max(MAX_TIMEOUT_MS, {
    error: (i) => `expected integer 0-${MAX_TIMEOUT_MS} (ms), got ${show(i.input)}`,
  });

/** Datacenter, region and zone names: Consul's datacenter names are DNS labels too. */
const localityPart = z
  .string({ error: (i) => `expected a name (a-z, 0-9, . _ -), got ${show(i.input)}` })
  .regex(/^[A-Za-z0-9]([A-Za-z0-9._-]{0,62})?$/, {
    error: (i) => `expected a name (a-z, 0-9, . _ -), got ${show(i.input)}`,
  });

function oneOf<T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, {
    error: (i) => `expected one of ${values.join(' | ')}, got ${show(i.input)}`,
  });
}

export const instanceSchema = z
  .object({
    id: z.string({ error: (i) => `expected a string, got ${show(i.input)}` }).regex(INSTANCE_ID, {
      error: (i) => `expected an id of letters, digits, . _ : -, got ${show(i.input)}`,
    }),
    // An IP: Envoy's EDS endpoints are not resolved, so a hostname would never connect.
    address: z.union([z.ipv4(), z.ipv6()], {
      error: (i) => `expected an IPv4 or IPv6 address, got ${show(i.input)}`,
    }),
    port,
    sidecarPort: port.optional(),
    localAppAddress: z
      .union([z.ipv4(), z.ipv6()], {
        error: (i) => `expected an IPv4 or IPv6 address, got ${show(i.input)}`,
      })
      .optional(),
    health: oneOf(HEALTH_STATES).default('passing'),
    tags: z.array(z.string().min(1, { error: 'expected a non-empty tag, got ""' })).default([]),
    meta: z.record(z.string(), z.string()).default({}),
    datacenter: localityPart.optional(),
    region: localityPart.optional(),
    zone: localityPart.optional(),
  })
  .strict()
  .superRefine((inst, ctx) => {
    // Peers (and gateways) connect to it: the unspecified address is no one's.
    if (inst.address === '0.0.0.0' || inst.address === '::') {
      ctx.addIssue({
        code: 'custom',
        path: ['address'],
        message: `expected the instance's own IP address (peers connect to it), got "${inst.address}" (the unspecified address)`,
      });
    }
    // The sidecar listens on 0.0.0.0:sidecarPort and forwards to 127.0.0.1:port: the same port
    // would be its own listener (a loop), or the app's port taken.
    if (inst.sidecarPort !== undefined && inst.sidecarPort === inst.port && !inst.localAppAddress) {
      ctx.addIssue({
        code: 'custom',
        path: ['sidecarPort'],
        message: `expected a port other than the app's port ${inst.port}: the sidecar listens on sidecarPort and forwards to the app on port (set localAppAddress when the app runs elsewhere)`,
      });
    }
  });

const serviceName = z
  .string({ error: (i) => `expected a string, got ${show(i.input)}` })
  .regex(NAME, { error: (i) => `expected a DNS label (a-z, 0-9, -), got ${show(i.input)}` });

/** A declared upstream: a service name, or {name, localBindPort, localBindAddress}. */
export const upstreamSchema = z.union(
  [
    serviceName.transform((name) => ({ name })),
    z
      .object({
        name: serviceName,
        localBindPort: port.optional(),
        localBindAddress: z
          .union([z.ipv4(), z.ipv6()], {
            error: (i) => `expected an IPv4 or IPv6 address, got ${show(i.input)}`,
          })
          .optional(),
      })
      .strict(),
  ],
  {
    error: (i) =>
      `expected a service name or {name, localBindPort, localBindAddress}, got ${show(i.input)}`,
  },
);

/**
 * Why `u`'s local bind address cannot listen next to those `taken` by other upstreams of the
 * service (bind-address.ts), if it cannot.
 */
export function bindClash(
  taken: ReadonlyArray<{ address: string; port: number; name: string }>,
  u: Upstream,
): string | undefined {
  const address = bindAddressOf(u);
  const other = taken.find(
    (t) => t.port === u.localBindPort && bindAddressesOverlap(t.address, address),
  );
  if (!other) return undefined;
  const at = `${address}:${u.localBindPort}`;
  return other.address === address
    ? `${at} is already the local bind address of upstream "${other.name}"`
    : `${at} overlaps ${other.address}:${other.port}, the local bind address of upstream "${other.name}"`;
}

/** A service as a source may produce it: a tcp service may lack its outbound port. */
export const sourceServiceSchema = z
  .object({
    name: z
      .string({ error: (i) => `expected a string, got ${show(i.input)}` })
      .regex(NAME, { error: (i) => `expected a DNS label (a-z, 0-9, -), got ${show(i.input)}` }),
    protocol: oneOf(PROTOCOLS).default('http'),
    outboundPort: port.optional(),
    instances: z.array(instanceSchema).default([]),
    upstreams: z.array(upstreamSchema).optional(),
    // Below the app's own keep-alive timeout, so the sidecar never reuses a connection the
    // app is closing (docs/local-app.md).
    localAppIdleTimeoutMs: timeoutMs.optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    const seen = new Set<string>();
    const binds: Array<{ address: string; port: number; name: string }> = [];
    s.upstreams?.forEach((u: Upstream, ui) => {
      if (seen.has(u.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['upstreams', ui],
          message: `duplicate upstream "${u.name}"`,
        });
      }
      seen.add(u.name);
      if (u.localBindPort === undefined) return;
      // Two listeners on one address and port: Envoy would refuse the sidecar's listeners.
      const message = bindClash(binds, u);
      if (message !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['upstreams', ui, 'localBindPort'], message });
      }
      binds.push({ address: bindAddressOf(u), port: u.localBindPort, name: u.name });
    });
  });

/** A service in a catalog file: a tcp service must name its outbound port. */
export const serviceSchema = sourceServiceSchema.superRefine((s, ctx) => {
  if (s.protocol === 'tcp' && s.outboundPort === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['outboundPort'],
      message: `required for tcp services (the local port sidecars listen on for "${s.name}")`,
    });
  }
  if (s.protocol !== 'tcp' && s.outboundPort !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['outboundPort'],
      message: `only valid for tcp services; "${s.name}" is ${s.protocol}`,
    });
  }
});

export const gatewaySchema = z
  .object({
    id: z.string({ error: (i) => `expected a string, got ${show(i.input)}` }).regex(INSTANCE_ID, {
      error: (i) => `expected an id of letters, digits, . _ : -, got ${show(i.input)}`,
    }),
    datacenter: localityPart.optional(),
    address: z.union([z.ipv4(), z.ipv6()], {
      error: (i) => `expected an IPv4 or IPv6 address, got ${show(i.input)}`,
    }),
    port,
    wanAddress: z
      .union([z.ipv4(), z.ipv6()], {
        error: (i) => `expected an IPv4 or IPv6 address, got ${show(i.input)}`,
      })
      .optional(),
    wanPort: port.optional(),
    health: oneOf(HEALTH_STATES).default('passing'),
  })
  .strict();

export const gatewaysSchema = z.array(gatewaySchema).optional();

export const catalogSchema = z
  .object({
    services: z.array(serviceSchema).default([]),
    gateways: gatewaysSchema,
  })
  .strict()
  .superRefine((c, ctx) => {
    for (const issue of crossEntryIssues(c)) ctx.addIssue({ code: 'custom', ...issue });
  });

/** A problem found across entries (duplicates), at its path in the document. */
export interface CrossEntryIssue {
  readonly path: Array<string | number>;
  readonly message: string;
}

/** Catalog-wide rules: unique service names, tcp outbound ports, instance and gateway ids. */
export function crossEntryIssues(c: {
  readonly services: readonly Pick<Service, 'name' | 'outboundPort' | 'instances'>[];
  readonly gateways?: readonly Pick<Gateway, 'id'>[];
}): CrossEntryIssue[] {
  const issues: CrossEntryIssue[] = [];
  const names = new Map<string, number>();
  const ids = new Map<string, string>();
  c.gateways?.forEach((g, gi) => {
    const owner = ids.get(g.id);
    if (owner !== undefined) {
      issues.push({
        path: ['gateways', gi, 'id'],
        message: `duplicate gateway id "${g.id}"; ids are Envoy node ids and must be unique`,
      });
    }
    ids.set(g.id, 'a gateway');
  });
  const outboundPorts = new Map<number, string>();
  c.services.forEach((s, si) => {
    const prev = names.get(s.name);
    if (prev !== undefined) {
      issues.push({
        path: ['services', si, 'name'],
        message: `duplicate service "${s.name}" (also services[${prev}])`,
      });
    }
    names.set(s.name, si);
    if (s.outboundPort !== undefined) {
      const other = outboundPorts.get(s.outboundPort);
      if (other) {
        issues.push({
          path: ['services', si, 'outboundPort'],
          message: `port ${s.outboundPort} already used by tcp service "${other}"`,
        });
      }
      outboundPorts.set(s.outboundPort, s.name);
    }
    s.instances.forEach((inst, ii) => {
      const owner = ids.get(inst.id);
      if (owner !== undefined) {
        issues.push({
          path: ['services', si, 'instances', ii, 'id'],
          message: `duplicate instance id "${inst.id}" (also in service "${owner}"); ids are Envoy node ids and must be unique`,
        });
      }
      ids.set(inst.id, s.name);
    });
  });
  return issues;
}

export class CatalogValidationError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
    this.name = 'CatalogValidationError';
  }
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out ? `.${String(seg)}` : String(seg);
  }
  return out || '(root)';
}

export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'string') return JSON.stringify(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

export function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${formatPath(issue.path)}: ${issue.message}`);
}

/** Validates a parsed document. Throws CatalogValidationError listing every problem. */
export function parseCatalog(document: unknown): Catalog {
  const result = catalogSchema.safeParse(document ?? {});
  if (!result.success) throw new CatalogValidationError(formatIssues(result.error));
  return normalizeCatalog(result.data);
}
