// Generated catalogs of a given shape (services × instances), written as a catalog file the
// control plane watches. Each service's JSON is kept as a fragment so a change re-serialises
// one service, not the whole catalog (at 100 flips/s the writer must stay cheap).
import { renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { ProxySpec } from './load/protocol.js';

export type Health = 'passing' | 'warning' | 'critical';

export interface InstanceDoc {
  id: string;
  address: string;
  port: number;
  sidecarPort?: number;
  health: Health;
  /** Catalog tags (W7: the subset an instance belongs to). */
  tags?: string[];
}

export interface ServiceDoc {
  name: string;
  protocol: 'http';
  instances: InstanceDoc[];
  /** W9 scoped: the services this one's sidecars may call (catalog `upstreams`). */
  upstreams?: string[];
}

export interface CatalogShape {
  readonly services: number;
  readonly instances: number;
}

/** The flip of change number `n`: which instance, and its health before and after. */
export interface Flip {
  readonly n: number;
  readonly service: string;
  readonly instance: string;
  /** The address peers reach the instance at (sidecar port when meshed). */
  readonly address: string;
  readonly health: Health;
}

export function serviceName(s: number): string {
  return `svc-${String(s).padStart(4, '0')}`;
}

/** 10.x.y.z, unique per instance in the catalog. */
function address(index: number): string {
  const i = index + 1;
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}

export class GeneratedCatalog {
  readonly services: ServiceDoc[] = [];
  private readonly fragments: string[] = [];
  private seq = 0;
  private planned = 0;

  constructor(
    readonly shape: CatalogShape,
    readonly path: string,
    customize?: (service: number, instance: number, doc: InstanceDoc) => InstanceDoc,
  ) {
    let index = 0;
    for (let s = 0; s < shape.services; s++) {
      const name = serviceName(s);
      const instances: InstanceDoc[] = [];
      for (let i = 0; i < shape.instances; i++) {
        const doc: InstanceDoc = {
          id: `${name}-${i}`,
          address: address(index++),
          port: 8080,
          sidecarPort: 15006,
          health: 'passing',
        };
        instances.push(customize ? customize(s, i, doc) : doc);
      }
      this.services.push({ name, protocol: 'http', instances });
      this.fragments.push(JSON.stringify(this.services[s]));
    }
  }

  /** Re-serialises every service (after a change to `services` made outside apply()). */
  refresh(): void {
    this.services.forEach((s, i) => (this.fragments[i] = JSON.stringify(s)));
  }

  get instanceCount(): number {
    return this.shape.services * this.shape.instances;
  }

  text(): string {
    return `{"services":[\n${this.fragments.join(',\n')}\n]}\n`;
  }

  /** Replaces the file atomically (write + rename), as an editor or a ConfigMap update does. */
  write(): void {
    const tmp = join(dirname(this.path), `.${basename(this.path)}.${this.seq++}.tmp`);
    writeFileSync(tmp, this.text());
    renameSync(tmp, this.path);
  }

  /**
   * Node ids of `k` simulated sidecars: instances spread over the services (proxy j is
   * instance ⌊j / services⌋ of service j mod services), so each is a meshed catalog instance
   * with its own inbound listener and local app cluster, like a real sidecar.
   */
  proxies(k: number): ProxySpec[] {
    if (k > this.instanceCount)
      throw new Error(`${k} proxies but only ${this.instanceCount} instances`);
    const out: ProxySpec[] = [];
    for (let j = 0; j < k; j++) {
      const s = j % this.shape.services;
      const i = Math.floor(j / this.shape.services);
      out.push({ nodeId: this.services[s]!.instances[i]!.id, service: this.services[s]!.name });
    }
    return out;
  }

  /**
   * The next `count` changes, planned without applying them (so watches can be armed ahead):
   * each toggles one instance between passing and critical (a critical instance leaves its
   * service's ClusterLoadAssignment). Round-robin over services, so consecutive changes touch
   * different clusters, and from one round to the next over instances (last first). Only that
   * service's assignment changes.
   */
  planFlips(count: number): Flip[] {
    const health = new Map<string, Health>();
    const out: Flip[] = [];
    for (let k = 0; k < count; k++) {
      const n = this.planned++;
      const s = n % this.shape.services;
      const round = Math.floor(n / this.shape.services);
      const i = this.shape.instances - 1 - (round % this.shape.instances);
      const service = this.services[s]!;
      const inst = service.instances[i]!;
      const before = health.get(inst.id) ?? inst.health;
      const after: Health = before === 'critical' ? 'passing' : 'critical';
      health.set(inst.id, after);
      out.push({
        n,
        service: service.name,
        instance: inst.id,
        address: inst.address,
        health: after,
      });
    }
    return out;
  }

  /** Applies a planned change (in plan order); does not write the file. */
  apply(flip: Flip): void {
    const s = this.services.findIndex((x) => x.name === flip.service);
    const service = this.services[s]!;
    const inst = service.instances.find((x) => x.id === flip.instance)!;
    inst.health = flip.health;
    this.fragments[s] = JSON.stringify(service);
  }
}
