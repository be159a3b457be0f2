// The etcd source's view of the keys under `<prefix>services/`: every key decoded once when
// it arrives (from a list or a watch event), and the catalog built from the decoded keys.
//
// The catalog is a pure function of the current keys, so a re-list after a compaction or a
// disconnect yields exactly what following every event would have yielded. Rules for values
// that are fine on their own but clash with others (the catalog's cross-service rules):
//   - an instance id used in two services: the one registered first (lower create revision)
//     stays, the other is skipped (ids are Envoy node ids and must be unique);
//   - a tcp outboundPort claimed by two services: the service whose settings were written
//     first keeps it, the other service is skipped;
//   - bad service settings: the whole service is skipped. Its protocol decides the listener
//     and cluster type, and guessing "http" for a grpc or tcp service would break its traffic
//     in a less obvious way than leaving it out.
import type { Catalog, Instance, Service } from '../../catalog/model.js';
import { parseCatalog } from '../../catalog/schema.js';
import {
  decodeInstance,
  decodeServiceSettings,
  parseKey,
  type Decoded,
  type ServiceSettings,
} from './layout.js';

export interface KeyValue {
  readonly key: string;
  readonly value: string;
  /** etcd create_revision / mod_revision. */
  readonly createRevision: number;
  readonly modRevision: number;
}

export type Entry =
  | {
      readonly kind: 'instance';
      readonly kv: KeyValue;
      readonly service: string;
      readonly id: string;
      readonly decoded: Decoded<Instance>;
    }
  | {
      readonly kind: 'service';
      readonly kv: KeyValue;
      readonly service: string;
      readonly decoded: Decoded<ServiceSettings>;
    }
  | { readonly kind: 'bad-key'; readonly kv: KeyValue; readonly problem: string };

/** A key that contributes nothing to the catalog, and why. */
export interface Skipped {
  readonly key: string;
  readonly problem: string;
}

export function decodeEntry(prefix: string, kv: KeyValue): Entry | undefined {
  const parsed = parseKey(prefix, kv.key);
  switch (parsed.kind) {
    case 'ignored':
      return undefined;
    case 'bad':
      return { kind: 'bad-key', kv, problem: parsed.problem };
    case 'service':
      return {
        kind: 'service',
        kv,
        service: parsed.service,
        decoded: decodeServiceSettings(parsed.service, kv.value),
      };
    case 'instance':
      return {
        kind: 'instance',
        kv,
        service: parsed.service,
        id: parsed.id,
        decoded: decodeInstance(parsed.id, kv.value),
      };
  }
}

/** Problem of one entry on its own, if any (the value's own validity). */
export function entryProblem(entry: Entry): string | undefined {
  if (entry.kind === 'bad-key') return entry.problem;
  return entry.decoded.ok ? undefined : entry.decoded.problem;
}

function byAge(a: Entry, b: Entry): number {
  return a.kv.createRevision - b.kv.createRevision || (a.kv.key < b.kv.key ? -1 : 1);
}

/**
 * Builds the catalog from the current entries. Returns it with the keys that were skipped
 * because they clash with others or belong to a skipped service (a value's own problems are
 * reported when it arrives, see entryProblem).
 */
export function buildCatalog(entries: Iterable<Entry>): { catalog: Catalog; skipped: Skipped[] } {
  const settings = new Map<string, Entry & { kind: 'service' }>();
  const instances: { entry: Entry & { kind: 'instance' }; instance: Instance }[] = [];
  for (const e of entries) {
    if (e.kind === 'service') settings.set(e.service, e);
    else if (e.kind === 'instance' && e.decoded.ok)
      instances.push({ entry: e, instance: e.decoded.value });
  }
  const skipped: Skipped[] = [];
  const services = new Map<string, { settings: ServiceSettings; instances: Instance[] }>();

  // Services with settings first, oldest settings first (they win outboundPort clashes).
  const portOwner = new Map<number, string>();
  for (const e of [...settings.values()].sort(byAge)) {
    if (!e.decoded.ok) continue;
    const port = e.decoded.value.outboundPort;
    if (port !== undefined) {
      const owner = portOwner.get(port);
      if (owner !== undefined) {
        skipped.push({
          key: e.kv.key,
          problem: `outboundPort ${port} is already used by tcp service "${owner}"; service "${e.service}" skipped`,
        });
        continue;
      }
      portOwner.set(port, e.service);
    }
    services.set(e.service, { settings: e.decoded.value, instances: [] });
  }

  const idOwner = new Map<string, string>();
  for (const { entry: e, instance } of instances.sort((a, b) => byAge(a.entry, b.entry))) {
    const s = settings.get(e.service);
    if (s && !s.decoded.ok) {
      skipped.push({
        key: e.kv.key,
        problem: `service "${e.service}" skipped: its settings at ${s.kv.key} are invalid`,
      });
      continue;
    }
    if (s && !services.has(e.service)) {
      skipped.push({ key: e.kv.key, problem: `service "${e.service}" skipped (see ${s.kv.key})` });
      continue;
    }
    const owner = idOwner.get(e.id);
    if (owner !== undefined) {
      skipped.push({
        key: e.kv.key,
        problem: `instance id "${e.id}" is already registered at ${owner} (registered earlier); ids are Envoy node ids and must be unique`,
      });
      continue;
    }
    idOwner.set(e.id, e.kv.key);
    let service = services.get(e.service);
    if (!service) {
      service = { settings: { protocol: 'http' }, instances: [] };
      services.set(e.service, service);
    }
    service.instances.push(instance);
  }

  const list: Service[] = [...services].map(([name, s]) => ({
    name,
    ...s.settings,
    instances: s.instances,
  }));
  // The same validation as a catalog file (it cannot fail after the rules above; if it ever
  // did, the caller reports it and keeps the last good catalog).
  return { catalog: parseCatalog({ services: list }), skipped };
}
