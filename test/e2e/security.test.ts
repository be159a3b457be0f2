// The zero-trust mesh against real Envoy: mTLS between sidecars with certificates from the
// built-in CA over SDS, SAN checks, leaf and CA rotation under load, token-authenticated xDS,
// and authorization policy enforced by Envoy RBAC.
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningControlPlane } from '../../src/app.js';
import { CertificateAuthority, MemoryCaStore, openCa, type OpenedCa } from '../../src/ca/index.js';
import { PolicyFile } from '../../src/policy/policy-file.js';
import type { ResourceKind } from '../../src/protos/envoy.js';
import { node, sotwClient, typeUrl } from '../support/ads-client.js';
import { httpGet, startHttpApp, type HttpApp } from '../support/http-app.js';
import {
  CatalogFile,
  hasCluster,
  rejectedUpdates,
  startSidecar,
  startTestControlPlane,
  type Sidecar,
  waitReaches,
} from '../support/mesh.js';
import { freePort } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

const LEAF_TTL_MS = 20_000;

/** Requests A → service every 50 ms until stopped; counts what failed. */
function loadLoop(from: Sidecar, service: string) {
  let running = true;
  const stats = { ok: 0, failed: [] as string[] };
  const done = (async () => {
    while (running) {
      try {
        const res = await from.call(service);
        if (res.status === 200) stats.ok++;
        else stats.failed.push(`${res.status} ${res.body.slice(0, 200)}`);
      } catch (err) {
        stats.failed.push((err as Error).message);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    stats,
    stop: async () => {
      running = false;
      await done;
      return stats;
    },
  };
}

/** HTTPS straight to a sidecar's inbound port, as a client outside the mesh would. */
function directTls(
  port: number,
  cert?: { certChainPem: string; privateKeyPem: string },
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/',
        headers: { host: 'world' },
        rejectUnauthorized: false, // this checks the server side's demands, not its certificate
        ...(cert ? { cert: cert.certChainPem, key: cert.privateKeyPem } : {}),
        agent: false,
        timeout: 3000,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

interface EnvoyCerts {
  certificates: Array<{
    cert_chain?: Array<{ serial_number: string; subject_alt_names?: Array<{ uri?: string }> }>;
  }>;
}
async function ownCert(s: Sidecar): Promise<{ serial: string; uri: string } | undefined> {
  const certs = JSON.parse(await s.envoy.admin('/certs')) as EnvoyCerts;
  for (const c of certs.certificates) {
    const leaf = c.cert_chain?.[0];
    if (leaf)
      return {
        serial: leaf.serial_number,
        uri: leaf.subject_alt_names?.find((n) => n.uri)?.uri ?? '',
      };
  }
  return undefined;
}

describe('zero-trust mesh with real Envoy', () => {
  const catalog = new CatalogFile();
  const policyDir = mkdtempSync(join(tmpdir(), 'lucid-policy-'));
  const policyPath = join(policyDir, 'policy.yaml');
  const logs: string[] = [];
  let ca: OpenedCa;
  let policy: PolicyFile;
  let cp: RunningControlPlane;
  let hello: HttpApp, world: HttpApp, wallet: HttpApp;
  let a: Sidecar, b: Sidecar, c: Sidecar;
  let ports: { hello: number; world: number; wallet: number };

  const writePolicy = (callersOfWallet: string[]) => {
    const tmp = `${policyPath}.tmp`;
    writeFileSync(
      tmp,
      `planes:\n  wallet: { services: [wallet], isolation: isolated }\ndefaults: { action: allow }\nrules:\n  - { from: [${callersOfWallet.join(', ')}], to: [plane:wallet], action: allow }\n`,
    );
    renameSync(tmp, policyPath);
  };
  const doc = (extra: unknown[] = []) => ({
    services: [
      {
        name: 'hello',
        instances: [
          { id: 'hello-1', address: '127.0.0.1', port: hello.port, sidecarPort: ports.hello },
        ],
      },
      {
        name: 'world',
        instances: [
          { id: 'world-1', address: '127.0.0.1', port: world.port, sidecarPort: ports.world },
        ],
      },
      {
        name: 'wallet',
        instances: [
          { id: 'wallet-1', address: '127.0.0.1', port: wallet.port, sidecarPort: ports.wallet },
        ],
      },
      ...extra,
    ],
  });

  beforeAll(async () => {
    const logger = pino(
      { level: 'debug' },
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          logs.push(chunk.toString());
          cb();
        },
      }),
    );
    [hello, world, wallet] = await Promise.all([
      startHttpApp('hello'),
      startHttpApp('world'),
      startHttpApp('wallet'),
    ]);
    ports = { hello: await freePort(), world: await freePort(), wallet: await freePort() };
    catalog.write(doc());
    writePolicy(['world']);
    ca = await openCa({
      dataDir: mkdtempSync(join(tmpdir(), 'lucid-ca-')),
      leafTtlMs: LEAF_TTL_MS,
      rotationDelayMs: 500,
      rotationSpreadMs: 1500,
      retireDelayMs: 1500,
      logger,
    });
    policy = new PolicyFile(policyPath, logger);
    await policy.start();
    cp = await startTestControlPlane(
      catalog,
      {},
      { security: { ca, mtls: true, auth: 'token', policy }, logger },
    );
    const token = (service: string) => ca.tokens.issue(service);
    [a, b, c] = await Promise.all([
      startSidecar({
        nodeId: 'hello-1',
        service: 'hello',
        xdsPort: cp.xdsPort,
        mode: 'sotw',
        token: await token('hello'),
      }),
      startSidecar({
        nodeId: 'world-1',
        service: 'world',
        xdsPort: cp.xdsPort,
        mode: 'delta',
        token: await token('world'),
      }),
      startSidecar({
        nodeId: 'wallet-1',
        service: 'wallet',
        xdsPort: cp.xdsPort,
        mode: 'sotw',
        token: await token('wallet'),
      }),
    ]);
  });

  afterAll(async () => {
    await Promise.all([a?.envoy.stop(), b?.envoy.stop(), c?.envoy.stop()]);
    await cp?.stop();
    await Promise.all([hello?.close(), world?.close(), wallet?.close()]);
    catalog.remove();
  });

  it('routes A → B over mTLS with certificates delivered by SDS', async () => {
    await waitReaches(a, 'world', 'A → world over mTLS', 30_000);
    expect(JSON.parse((await a.call('world')).body)).toMatchObject({ app: 'world' });
    expect((await ownCert(b))?.uri).toBe('spiffe://lucid.internal/ns/default/svc/world');
    expect((await ownCert(a))?.uri).toBe('spiffe://lucid.internal/ns/default/svc/hello');
    // The sidecar port really demands TLS: the app behind it is only reachable through it.
    expect(
      await b.envoy.stat('listener.0.0.0.0_' + ports.world + '.ssl.handshake'),
    ).toBeGreaterThan(0);
  });

  it('refuses clients without a certificate, or with one from another CA', async () => {
    await expect(httpGet(`http://127.0.0.1:${ports.world}/`, { host: 'world' })).rejects.toThrow();
    await expect(directTls(ports.world)).rejects.toThrow();
    const foreign = await CertificateAuthority.open({ store: new MemoryCaStore() });
    await expect(directTls(ports.world, await foreign.issueLeaf('hello'))).rejects.toThrow();
    // Control: a certificate from our CA is let in, so the refusals above are about the cert.
    expect(await directTls(ports.world, await ca.ca.issueLeaf('hello'))).toBe(200);
  });

  it("checks the server's SAN: a sidecar presenting another identity is refused", async () => {
    // "decoy" points at world's sidecar, which presents world's certificate, not decoy's.
    catalog.write(
      doc([
        {
          name: 'decoy',
          instances: [
            { id: 'decoy-1', address: '127.0.0.1', port: world.port, sidecarPort: ports.world },
          ],
        },
      ]),
    );
    await a.envoy.waitFor(async () => hasCluster(a.envoy, 'decoy'), 'cluster decoy');
    const before = world.hits;
    const res = await a.call('decoy');
    expect(res.status).toBe(503);
    expect(world.hits).toBe(before);
    expect((await a.call('world')).status).toBe(200);
    catalog.write(doc());
    await a.envoy.waitFor(
      async () => !(await hasCluster(a.envoy, 'decoy')),
      'cluster decoy removed',
    );
  });

  it('enforces the policy with RBAC (403 for a denied pair) and follows a live edit', async () => {
    await waitReaches(b, 'wallet', 'world → wallet allowed', 20_000);
    const denied = await a.call('wallet');
    expect(denied.status).toBe(403);
    expect(denied.body).toContain('RBAC: access denied');
    writePolicy(['world', 'hello']);
    await a.envoy.waitFor(
      async () => (await a.call('wallet')).status === 200,
      'hello → wallet allowed after the edit',
    );
    writePolicy(['world']);
    await a.envoy.waitFor(
      async () => (await a.call('wallet')).status === 403,
      'hello → wallet denied again',
    );
  });

  it('rejects streams without a token, and a token used to claim another service', async () => {
    const anonymous = sotwClient(cp.xdsPort);
    anonymous.send({ node: node('x-1', 'hello'), typeUrl: typeUrl('clusters') });
    const noToken = await anonymous.ended;
    expect(noToken?.code).toBe(grpc.status.UNAUTHENTICATED);
    anonymous.close();

    const helloToken = await ca.tokens.issue('hello');
    const impostor = sotwClient(cp.xdsPort, helloToken);
    impostor.send({
      node: node('x-2', 'wallet'),
      typeUrl: typeUrl('secrets'),
      resourceNames: ['default'],
    });
    const denied = await impostor.ended;
    expect(denied?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(denied?.details).toContain('claims service "wallet" but its token is for "hello"');
    expect(impostor.received).toEqual([]);
    impostor.close();

    const metrics = await cp.metrics.registry.getSingleMetricAsString(
      'lucid_mesh_xds_auth_failures_total',
    );
    expect(metrics).toMatch(/reason="missing-token"} 1/);
    expect(metrics).toMatch(/reason="wrong-service"} 1/);
  });

  it("never sends another service's secret, even to a node using that service's instance id", async () => {
    const s = sotwClient(cp.xdsPort, await ca.tokens.issue('hello'));
    s.send({ node: node('wallet-1', 'hello'), typeUrl: typeUrl('listeners') });
    s.send({
      node: node('wallet-1', 'hello'),
      typeUrl: typeUrl('secrets'),
      resourceNames: ['default', 'trust_bundle'],
    });
    const got = await s.take(2, 10_000);
    await s.expectSilence(500);
    s.close();
    const byType = (k: ResourceKind) =>
      got.filter((r) => r.typeUrl === typeUrl(k)).flatMap((r) => r.resources ?? []);
    // Its outbound and DNS listeners (every node gets those), no inbound one of wallet's.
    expect(
      byType('listeners')
        .map((l) => l.name)
        .sort(),
    ).toEqual(['dns|15053', expect.stringMatching(/^outbound\|http\|/)]);
    const identity = byType('secrets').find((x) => x.name === 'default') as {
      tlsCertificate: { certificateChain: { inlineString: string } };
    };
    const cert = new X509Certificate(identity.tlsCertificate.certificateChain.inlineString);
    expect(cert.subjectAltName).toContain('spiffe://lucid.internal/ns/default/svc/hello');
    expect(JSON.stringify(got)).not.toContain('svc/wallet');
  });

  it('rotates leaves (20 s TTL) under load: new serials, zero failed requests, no LDS/CDS push', async () => {
    const before = { a: (await ownCert(a))!.serial, b: (await ownCert(b))!.serial };
    const pushes = () => ({
      clusters: cp.counters.responsesByKind.get('clusters') ?? 0,
      listeners: cp.counters.responsesByKind.get('listeners') ?? 0,
      secrets: cp.counters.responsesByKind.get('secrets') ?? 0,
    });
    const pushesBefore = pushes();
    const load = loadLoop(a, 'world');
    await waitFor(
      async () =>
        (await ownCert(a))!.serial !== before.a && (await ownCert(b))!.serial !== before.b,
      {
        what: 'both sidecars show a renewed certificate',
        timeoutMs: LEAF_TTL_MS + 10_000,
        intervalMs: 500,
      },
    );
    await new Promise((r) => setTimeout(r, 1000)); // traffic on the new certificates
    const stats = await load.stop();
    expect(stats.failed).toEqual([]);
    expect(stats.ok).toBeGreaterThan(50);
    const after = pushes();
    expect(after.clusters).toBe(pushesBefore.clusters);
    expect(after.listeners).toBe(pushesBefore.listeners);
    expect(after.secrets).toBeGreaterThan(pushesBefore.secrets);
  });

  it('rotates the CA under load: zero failures, old root kept until its last leaf is gone', async () => {
    const oldRoot = ca.ca.activeRoot().serial;
    const violations: string[] = [];
    let sawOverlap = false;
    const sampler = setInterval(() => {
      const roots = ca.ca.roots().map((r) => r.serial);
      if (roots.length > 1) sawOverlap = true;
      if (!roots.includes(oldRoot)) {
        for (const leaf of ca.leaves.expiries().leaves) {
          if (leaf.rootSerial === oldRoot)
            violations.push(`${leaf.service} still signed by the dropped root`);
        }
      }
    }, 50);
    const load = loadLoop(a, 'world');
    await ca.leaves.rotateRoot();
    await waitFor(() => ca.ca.roots().length === 1 && ca.ca.activeRoot().serial !== oldRoot, {
      what: 'old root retired',
      timeoutMs: 30_000,
    });
    await a.envoy
      .waitFor(
        async () => !(await a.envoy.admin('/certs')).includes(oldRoot.toLowerCase()),
        'old root gone from A',
        10_000,
      )
      .catch(() => undefined);
    await new Promise((r) => setTimeout(r, 1000));
    clearInterval(sampler);
    const stats = await load.stop();
    expect(stats.failed).toEqual([]);
    expect(sawOverlap).toBe(true);
    expect(violations).toEqual([]);
    expect((await a.call('world')).status).toBe(200);
  });

  it('kept private keys out of logs and operator output, and Envoy accepted everything', async () => {
    expect(logs.length).toBeGreaterThan(10);
    expect(logs.join('')).not.toContain('PRIVATE KEY');
    const dump = await httpGet(
      `http://127.0.0.1:${cp.adminPort}/v1/snapshot?node=world-1&type=secrets`,
      { authorization: `Bearer ${await ca.tokens.issueOperator({ name: 'security-test' })}` },
    );
    expect(dump.status, dump.body).toBe(200);
    expect(dump.body).toContain('"privateKey": "[redacted]"');
    expect(dump.body).not.toContain('PRIVATE KEY');
    expect(cp.counters.nacks).toBe(0);
    for (const s of [a, b, c]) expect(await rejectedUpdates(s.envoy)).toBe(0);
  });
});

describe('ADS over TLS', () => {
  it('serves a sidecar over TLS (serve --xds-tls-cert, bootstrap --xds-ca), and refuses plaintext', async () => {
    const ca = await CertificateAuthority.open({ store: new MemoryCaStore() });
    const serverCert = await ca.issueLeaf('lucid-mesh');
    const catalog = new CatalogFile();
    const app = await startHttpApp('web');
    catalog.write({
      services: [
        { name: 'web', instances: [{ id: 'web-1', address: '127.0.0.1', port: app.port }] },
      ],
    });
    const cp = await startTestControlPlane(
      catalog,
      {},
      { xdsTls: { cert: serverCert.certChainPem, key: serverCert.privateKeyPem } },
    );
    const sidecar = await startSidecar({
      nodeId: 'client-1',
      service: 'client',
      xdsPort: cp.xdsPort,
      mode: 'delta',
      xdsCaPem: ca.trustBundlePem(),
    });
    try {
      await waitReaches(sidecar, 'web', 'client → web via TLS-delivered config');
      // A plaintext client cannot talk to the TLS port.
      const plain = sotwClient(cp.xdsPort);
      plain.send({ node: node('x', 'client'), typeUrl: typeUrl('clusters') });
      expect((await plain.ended)?.code).toBe(grpc.status.UNAVAILABLE);
      plain.close();
    } finally {
      await sidecar.envoy.stop();
      await cp.stop();
      await app.close();
      catalog.remove();
    }
  });
});
