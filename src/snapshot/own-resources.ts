// A proxy's own resources (its listeners, local app cluster, identity secret), cached per proxy
// key. They depend only on what the mesh says of the proxy (its instance, its service's upstream
// overrides) and the non-mesh inputs (secrets), so most snapshots reuse them untranslated: an
// endpoint change elsewhere costs a connected proxy a lookup, not a translation.
import type { ProxyIdentity } from '../catalog/model.js';
import {
  MESH_GATEWAY_SERVICE,
  findMeshInstance,
  gatewayOf,
  meshProxy,
  meshService,
  meshServiceNames,
  proxyScope,
} from '../mesh/index.js';
import type { Mesh, MeshInstance, MeshProxy, MeshService, ProxyScope } from '../mesh/types.js';
import { hasGateways } from '../translate/index.js';
import { IDENTITY_SECRET_NAME } from '../translate/names.js';
import type { ResourceSet } from '../translate/types.js';
import { encodeSet, encodeUncached } from './encode-set.js';
import type { ResourceEncoder } from './encoder.js';
import { proxyInputs } from './proxy-inputs.js';
import type { SecretProvider } from './secrets.js';
import type { KindMaps } from './snapshot.js';

/**
 * Encoder entries a connected proxy's own resources may add between builds (a sidecar has
 * 2–4: outbound and inbound listener, local cluster, identity; more with upstream overrides),
 * and slack for proxies coming and going. Past it, own resources are encoded uncached.
 */
const OWN_ENTRIES_PER_PROXY = 8;
const OWN_ENTRIES_SLACK = 4096;

interface OwnEntry {
  inputs: string;
  inputsGeneration: number;
  /** The mesh objects it was made from: the same objects mean the same inputs. */
  service?: MeshService;
  instance?: MeshInstance;
  ownService?: MeshService;
  /** The service names its DNS listener answers (meshServiceNames: same list, same array). */
  dnsNames?: readonly string[];
  /** Its scope (proxyScope: an equal scope is the same object from build to build). */
  scope?: ProxyScope;
  /**
   * Whether the mesh had gateways: its upstream override clusters carry their transport
   * sockets then, and no part of its MeshProxy says so.
   */
  gateways: boolean;
  own: KindMaps;
  generation: number;
}

const binding = new WeakMap<MeshService, boolean>();
/**
 * Whether the service's sidecars have local bind listeners (a declared upstream with a bind
 * port). Kept per service object: looking at each upstream of each proxy on every visit cost
 * ~0.5 µs a proxy (W9 scope all, 10 upstreams each).
 */
function bindsUpstreams(service: MeshService): boolean {
  let binds = binding.get(service);
  if (binds === undefined) {
    binds = service.upstreams?.some((u) => u.localBindPort !== undefined) === true;
    binding.set(service, binds);
  }
  return binds;
}

export class OwnResources {
  private readonly cache = new Map<string, OwnEntry>();
  /** Keys in the cache of proxies asked about but not watched (see sweep). */
  private readonly unwatched = new Set<string>();
  private generation = 0;
  /** The encoder's entries right after the last build (shared resources and their history). */
  private encodedAtBuild = 0;

  constructor(
    private readonly encoder: ResourceEncoder,
    private readonly secrets: SecretProvider | undefined,
    private readonly translate: (mesh: Mesh, proxy: MeshProxy) => ResourceSet,
    /** Watches per proxy key (the store's): a watched proxy's entry goes with its last watch. */
    private readonly watched: ReadonlyMap<string, number>,
  ) {}

  /** Proxies with cached own resources. */
  get size(): number {
    return this.cache.size;
  }

  /** The encoder's entries right after the last build (see built). */
  get encoderBaseline(): number {
    return this.encodedAtBuild;
  }

  /** A build has encoded the shared resources: own entries count from here. */
  built(): void {
    this.encodedAtBuild = this.encoder.size;
  }

  /**
   * The own resources of `proxy` (kept under `key`) in `mesh`, with the non-mesh inputs at
   * `inputsGeneration`. The cache key is the content of its MeshProxy.
   */
  of(key: string, proxy: ProxyIdentity, mesh: Mesh, inputsGeneration: number): KindMaps {
    const found = findMeshInstance(mesh, proxy.nodeId);
    const ownService = proxy.service ? meshService(mesh, proxy.service) : undefined;
    const cached = this.cache.get(key);
    // A gateway's resources follow every service of its datacenter: no identity shortcut
    // (there are few gateways; the encoder still skips what did not change).
    const gateway = gatewayOf(mesh, proxy) !== undefined;
    if (!gateway && proxy.service === MESH_GATEWAY_SERVICE) throw notAGateway(mesh, proxy);
    const dnsNames = proxy.dnsPort !== undefined ? meshServiceNames(mesh) : undefined;
    const scope = proxyScope(mesh, proxy.service);
    const gateways = hasGateways(mesh);
    // A local bind listener follows its target service (its protocol, the ports taken by tcp
    // services): those proxies compare contents.
    const binds = ownService !== undefined && bindsUpstreams(ownService);
    // Unchanged parts of the mesh keep their objects from one snapshot to the next, so the
    // common case is three identity checks, not a comparison of contents.
    if (
      !gateway &&
      !binds &&
      cached &&
      cached.service === found?.service &&
      cached.instance === found?.instance &&
      cached.ownService === ownService &&
      cached.dnsNames === dnsNames &&
      cached.scope === scope &&
      cached.gateways === gateways &&
      cached.inputsGeneration === inputsGeneration
    ) {
      cached.generation = this.generation;
      return cached.own;
    }
    const meshView = meshProxy(mesh, proxy);
    const inputs = proxyInputs(inputsGeneration, meshView);
    if (!gateway && cached && cached.inputs === inputs && cached.gateways === gateways) {
      cached.service = found?.service;
      cached.instance = found?.instance;
      cached.ownService = ownService;
      cached.dnsNames = dnsNames;
      cached.scope = scope;
      cached.generation = this.generation;
      return cached.own;
    }
    const set = this.setOf(proxy, mesh, meshView);
    const identity = set.secrets.has(IDENTITY_SECRET_NAME);
    // Every proxy's identity secret has the same name: cache each service's separately.
    // Own resources are named after what the node says (its outbound port, its service), so
    // past a bound on what connected proxies can account for, they are not kept in the
    // encoder's cache (its entries only go at the next build).
    const own = this.encoderHasRoom()
      ? encodeSet(
          this.encoder,
          set,
          // Gateways of each datacenter have clusters of the same names (mesh-gateway|api)
          // and other contents: under one key they replaced each other, and every build
          // encoded them all again.
          gateway
            ? (_kind, name) => `${name}@${proxy.nodeId}`
            : (kind, name) =>
                kind === 'secrets' && name === IDENTITY_SECRET_NAME
                  ? `${name}@${proxy.service}`
                  : name,
          true,
        )
      : encodeUncached(set);
    // Not cached while the identity is still being issued: the next build must ask again.
    if (!proxy.service || !this.secrets || identity) {
      this.cache.set(key, {
        inputs,
        inputsGeneration,
        service: found?.service,
        instance: found?.instance,
        ownService,
        dnsNames,
        scope,
        gateways,
        own,
        generation: this.generation,
      });
      if (!this.watched.has(key)) this.unwatched.add(key);
    }
    return own;
  }

  /** What `proxy` would get in `mesh`, made without keeping or caching anything. */
  preview(proxy: ProxyIdentity, mesh: Mesh): KindMaps {
    return encodeUncached(this.setOf(proxy, mesh, meshProxy(mesh, proxy)));
  }

  /** A proxy's last watch went: nothing of it stays behind. */
  forget(key: string): void {
    this.cache.delete(key);
  }

  /**
   * After a fan-out pass: forgets unwatched proxies not asked about since the previous one.
   * Watched ones go with their last watch (forget): a pass visits only what a change touched.
   */
  sweep(): void {
    for (const key of this.unwatched) {
      const entry = this.cache.get(key);
      if (entry && this.watched.has(key)) this.unwatched.delete(key);
      else if (!entry || entry.generation < this.generation) {
        this.cache.delete(key);
        this.unwatched.delete(key);
      }
    }
    this.generation++;
  }

  /** The store closes: no sweep is owed any more. */
  close(): void {
    this.unwatched.clear();
  }

  /**
   * Whether proxies' own resources may still be added to the encoder's cache: up to
   * OWN_ENTRIES_PER_PROXY per watched proxy (and some slack) beyond what the last build left.
   */
  private encoderHasRoom(): boolean {
    const room = OWN_ENTRIES_PER_PROXY * this.watched.size + OWN_ENTRIES_SLACK;
    return this.encoder.size < this.encodedAtBuild + room;
  }

  /** A proxy's own resources, translated (with its identity secret once it is issued). */
  private setOf(proxy: ProxyIdentity, mesh: Mesh, meshView: MeshProxy): ResourceSet {
    const set = this.translate(mesh, meshView);
    const identity = proxy.service ? this.secrets?.identity(proxy.service) : undefined;
    if (identity) set.secrets.set(IDENTITY_SECRET_NAME, identity);
    return set;
  }
}

/**
 * A node bootstrapped as a mesh gateway (`bootstrap --gateway mesh`) whose node id is no
 * gateway of the catalog (a typo, not registered yet, deregistered). Served as a sidecar it
 * would listen on an outbound port and show SYNCED, though it forwards nothing: it is refused
 * as a build error instead, which status and the console show on its row.
 */
function notAGateway(mesh: Mesh, proxy: ProxyIdentity): Error {
  const ids = mesh.gateways.map((g) => g.id);
  return new Error(
    `node "${proxy.nodeId}" is bootstrapped as a mesh gateway but is no gateway of the catalog ` +
      `(${ids.length > 0 ? `its gateways: ${ids.join(', ')}` : 'it has none'}); ` +
      'it gets no configuration until its node id is registered as one',
  );
}
