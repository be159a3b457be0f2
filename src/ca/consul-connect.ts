// `serve --ca consul-connect`: Consul's Connect CA instead of the built-in one. Roots come from
// the local agent's `/v1/agent/connect/ca/roots`, each service's leaf from
// `/v1/agent/connect/ca/leaf/<service>`, both followed with blocking queries: the agent renews
// leaves and Consul rotates roots, and every change is pushed to the sidecars over SDS. The
// identity space is Consul's (trust domain `<cluster id>.consul`, SPIFFE IDs with the
// datacenter), so lucid-mesh sidecars and Consul's own sidecars verify each other.
import { X509Certificate } from 'node:crypto';
import { z } from 'zod';
import type { ConsulClient } from '../sources/consul/client.js';
import type { Logger } from '../telemetry/logger.js';
import { CaMaterialError } from './crypto.js';
import type { CaChange, CaChangeListener, LeafIssuedListener } from './leaf-manager.js';
import type { LeafSource } from './leaf-source.js';
import {
  DEFAULT_NAMESPACE,
  assertServiceName,
  assertTrustDomain,
  type Identity,
} from './spiffe.js';
import { lifetimeSeconds, type ExpiryReport, type IssuedLeaf } from './types.js';
import { compareStrings } from '../text-order.js';

const rootsSchema = z.object({
  ActiveRootID: z.string(),
  TrustDomain: z.string().min(1),
  Roots: z
    .array(
      z.object({
        ID: z.string(),
        RootCert: z.string().min(1),
        IntermediateCerts: z.array(z.string()).nullish(),
        Active: z.boolean(),
      }),
    )
    .min(1),
});

const leafSchema = z.object({
  CertPEM: z.string().min(1),
  PrivateKeyPEM: z.string().min(1),
  Service: z.string(),
});

interface ConnectRoot {
  readonly id: string;
  readonly active: boolean;
  readonly cert: X509Certificate;
  /** The root and its intermediates, PEM. */
  readonly pems: readonly string[];
}

export interface ConsulConnectOptions {
  readonly client: ConsulClient;
  readonly logger?: Logger;
  /** Blocking query wait. Default 5 min (Consul caps it at 10). */
  readonly waitMs?: number;
  /** First retry after a failed request; doubles up to 30 s. Default 1 s. */
  readonly retryMs?: number;
}

interface LeafWatch {
  leaf?: IssuedLeaf;
  readonly first: Promise<IssuedLeaf>;
}

export class ConsulConnectCa implements LeafSource {
  readonly identity: Identity;
  private roots: readonly ConnectRoot[];
  private readonly client: ConsulClient;
  private readonly log: Logger | undefined;
  private readonly waitMs: number;
  private readonly retryMs: number;
  private readonly abort = new AbortController();
  private readonly leaves = new Map<string, LeafWatch>();
  private readonly listeners = new Set<CaChangeListener>();
  private readonly issuedListeners = new Set<LeafIssuedListener>();

  private constructor(
    opts: ConsulConnectOptions,
    identity: Identity,
    roots: readonly ConnectRoot[],
    rootsIndex: number,
  ) {
    this.client = opts.client;
    this.log = opts.logger?.child({ component: 'ca-consul-connect' });
    this.waitMs = opts.waitMs ?? 5 * 60_000;
    this.retryMs = opts.retryMs ?? 1000;
    this.identity = identity;
    this.roots = roots;
    void this.watchRoots(rootsIndex);
  }

  /**
   * Reads the agent's datacenter and the Connect CA roots (their trust domain becomes the mesh
   * identity). Throws when Consul is unreachable or Connect is disabled.
   */
  static async start(opts: ConsulConnectOptions): Promise<ConsulConnectCa> {
    const where = `Consul ${opts.client.address}`;
    const datacenter = await opts.client.agentDatacenter();
    const { body, index } = await opts.client.connectRoots();
    const roots = parseRoots(body, where);
    if (!roots) {
      throw new CaMaterialError(
        `--ca consul-connect: ${where} has no Connect CA roots (is connect { enabled = true } set on its servers?)`,
      );
    }
    assertTrustDomain(roots.trustDomain);
    const identity: Identity = {
      trustDomain: roots.trustDomain,
      namespace: DEFAULT_NAMESPACE,
      format: 'consul',
      datacenter,
    };
    opts.logger?.info(
      { consul: opts.client.address, trustDomain: identity.trustDomain, datacenter },
      'certificates from Consul Connect CA',
    );
    return new ConsulConnectCa(opts, identity, roots.roots, index);
  }

  current(service: string): Promise<IssuedLeaf> {
    if (this.abort.signal.aborted) return Promise.reject(new Error('Consul Connect CA is stopped'));
    const running = this.leaves.get(service);
    if (running) return running.leaf ? Promise.resolve(running.leaf) : running.first;
    assertServiceName(service);
    let resolveFirst!: (leaf: IssuedLeaf) => void;
    let rejectFirst!: (err: Error) => void;
    const first = new Promise<IssuedLeaf>((resolve, reject) => {
      resolveFirst = resolve;
      rejectFirst = reject;
    });
    const watch: LeafWatch = { first };
    this.leaves.set(service, watch);
    void this.watchLeaf(service, watch, resolveFirst, rejectFirst);
    return first;
  }

  peek(service: string): IssuedLeaf | undefined {
    return this.leaves.get(service)?.leaf;
  }

  trustBundlePem(): string {
    return this.roots.flatMap((r) => r.pems).join('');
  }

  onChange(listener: CaChangeListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onIssued(listener: LeafIssuedListener): () => void {
    this.issuedListeners.add(listener);
    return () => this.issuedListeners.delete(listener);
  }

  expiries(): ExpiryReport {
    const now = Date.now();
    const seconds = (d: Date) => Math.floor((d.getTime() - now) / 1000);
    const leaves = [...this.leaves.values()].flatMap((w) => (w.leaf ? [w.leaf] : []));
    return {
      leaves: leaves
        .map((leaf) => ({
          service: leaf.service,
          serial: leaf.serial,
          rootSerial: leaf.rootSerial,
          notAfter: leaf.notAfter,
          secondsRemaining: seconds(leaf.notAfter),
          lifetimeSeconds: lifetimeSeconds(leaf),
        }))
        .sort((a, b) => compareStrings(a.service, b.service)),
      roots: this.roots.map((r) => {
        const notAfter = new Date(r.cert.validTo);
        return {
          serial: serialOf(r.cert),
          state: r.active ? ('active' as const) : ('retiring' as const),
          notAfter,
          secondsRemaining: seconds(notAfter),
          lifetimeSeconds: lifetimeSeconds({ notBefore: new Date(r.cert.validFrom), notAfter }),
        };
      }),
    };
  }

  /** Ends the blocking queries. */
  stop(): void {
    this.abort.abort();
    this.client.destroy();
  }

  private async watchRoots(index: number): Promise<void> {
    const where = `Consul ${this.client.address}`;
    let retry = this.retryMs;
    while (!this.abort.signal.aborted) {
      try {
        const res = await this.client.connectRoots({
          index,
          waitMs: this.waitMs,
          signal: this.abort.signal,
        });
        retry = this.retryMs;
        // An index that went backwards (agent restarted): start over without blocking.
        index = res.index < index ? 0 : res.index;
        const parsed = parseRoots(res.body, where);
        if (!parsed) continue;
        if (parsed.trustDomain !== this.identity.trustDomain) {
          this.log?.error(
            { was: this.identity.trustDomain, now: parsed.trustDomain },
            'Consul Connect trust domain changed; restart lucid-mesh to follow it',
          );
        }
        const before = this.trustBundlePem();
        this.roots = parsed.roots;
        if (this.trustBundlePem() !== before) {
          this.log?.info(
            { roots: parsed.roots.map((r) => `${r.id}${r.active ? ' (active)' : ''}`) },
            'Consul Connect CA roots changed',
          );
          this.emit({ bundleChanged: true });
        }
      } catch (err) {
        if (this.abort.signal.aborted) return;
        this.log?.warn(
          { error: (err as Error).message, retryInMs: retry },
          'reading Consul Connect CA roots failed; keeping the current ones',
        );
        index = 0;
        await this.sleep(retry);
        retry = Math.min(retry * 2, 30_000);
      }
    }
  }

  private async watchLeaf(
    service: string,
    watch: LeafWatch,
    resolveFirst: (leaf: IssuedLeaf) => void,
    rejectFirst: (err: Error) => void,
  ): Promise<void> {
    let index = 0;
    let retry = this.retryMs;
    let firstFailed = false;
    while (!this.abort.signal.aborted) {
      try {
        const res = await this.client.connectLeaf(service, {
          index,
          waitMs: this.waitMs,
          signal: this.abort.signal,
        });
        retry = this.retryMs;
        index = res.index < index ? 0 : res.index;
        const leaf = this.leafOf(service, res.body);
        if (watch.leaf?.serial === leaf.serial) continue;
        const renewed = watch.leaf !== undefined;
        watch.leaf = leaf;
        this.log?.info(
          { service, serial: leaf.serial, notAfter: leaf.notAfter },
          renewed ? 'Consul Connect leaf renewed' : 'Consul Connect leaf fetched',
        );
        resolveFirst(leaf);
        for (const listener of [...this.issuedListeners]) {
          try {
            listener(leaf, renewed);
          } catch (err) {
            this.log?.error({ error: (err as Error).message }, 'leaf listener threw');
          }
        }
        // A renewal, or a first leaf that came after its caller was told of a failure.
        if (renewed || firstFailed) this.emit({ service, bundleChanged: false });
      } catch (err) {
        if (this.abort.signal.aborted) break;
        if (!watch.leaf && !firstFailed) {
          // The caller hears of the failure; the watch keeps trying and announces the leaf.
          firstFailed = true;
          rejectFirst(err as Error);
        } else {
          this.log?.warn(
            { service, error: (err as Error).message, retryInMs: retry },
            watch.leaf
              ? 'watching the Consul Connect leaf failed; serving the current one'
              : 'fetching the Consul Connect leaf failed; retrying',
          );
        }
        index = 0;
        await this.sleep(retry);
        retry = Math.min(retry * 2, 30_000);
      }
    }
    rejectFirst(new Error('Consul Connect CA is stopped'));
  }

  private leafOf(service: string, body: unknown): IssuedLeaf {
    const what = `Consul ${this.client.address}: GET /v1/agent/connect/ca/leaf/${service}`;
    const parsed = leafSchema.safeParse(body);
    if (!parsed.success) {
      throw new CaMaterialError(`${what}: unexpected answer (${parsed.error.issues[0]?.message})`);
    }
    const pems = splitPems(parsed.data.CertPEM);
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(pems[0] ?? '');
    } catch (err) {
      throw new CaMaterialError(
        `${what}: CertPEM is not a certificate (${(err as Error).message})`,
      );
    }
    const root = this.roots.find((r) => pems.some((p) => issuedBy(p, r)) || issuedBy(pems[0]!, r));
    // Consul appends the intermediates to CertPEM; add the active root's when it does not.
    const intermediates = root && pems.length === 1 ? root.pems.slice(1) : [];
    return {
      service,
      spiffeId: cert.subjectAltName?.match(/URI:([^,\s]+)/)?.[1] ?? '',
      certChainPem: [...pems, ...intermediates].join(''),
      privateKeyPem: parsed.data.PrivateKeyPEM,
      serial: serialOf(cert),
      notBefore: new Date(cert.validFrom),
      notAfter: new Date(cert.validTo),
      rootSerial: root ? serialOf(root.cert) : '',
    };
  }

  private emit(change: CaChange): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(change);
      } catch (err) {
        this.log?.error({ error: (err as Error).message }, 'CA change listener threw');
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const signal = this.abort.signal;
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });
  }
}

function parseRoots(
  body: unknown,
  where: string,
): { trustDomain: string; roots: ConnectRoot[] } | undefined {
  // Connect disabled (or not bootstrapped yet): no roots, no trust domain.
  if (body === null || typeof body !== 'object' || !('Roots' in body) || !body.Roots) {
    return undefined;
  }
  const parsed = rootsSchema.safeParse(body);
  if (!parsed.success) {
    throw new CaMaterialError(
      `${where}: GET /v1/agent/connect/ca/roots: unexpected answer (${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message})`,
    );
  }
  return {
    trustDomain: parsed.data.TrustDomain,
    roots: parsed.data.Roots.map((r) => ({
      id: r.ID,
      active: r.Active,
      cert: new X509Certificate(r.RootCert),
      pems: [r.RootCert, ...(r.IntermediateCerts ?? [])].map(withNewline),
    })),
  };
}

/** Is `pem` signed by the root or one of its intermediates? */
function issuedBy(pem: string, root: ConnectRoot): boolean {
  try {
    const cert = new X509Certificate(pem);
    return root.pems.some((p) => cert.checkIssued(new X509Certificate(p)));
  } catch {
    return false;
  }
}

function splitPems(text: string): string[] {
  return (text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map(
    withNewline,
  );
}

function withNewline(pem: string): string {
  return pem.trim() + '\n';
}

/** Lowercase hex without separators, as Envoy's /certs prints it. */
function serialOf(cert: X509Certificate): string {
  return cert.serialNumber.toLowerCase().replace(/^0+(?=.)/, '');
}
