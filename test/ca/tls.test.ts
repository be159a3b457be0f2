// Real mutual-TLS handshakes (Node's TLS, i.e. OpenSSL) with what the CA issues: the shapes
// Envoy will see, including the overlap bundle during a root rotation.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { CertificateAuthority } from '../../src/ca/authority.js';
import { MemoryCaStore } from '../../src/ca/store.js';
import type { IssuedLeaf } from '../../src/ca/types.js';

interface Side {
  leaf: IssuedLeaf;
  bundle: string;
}

/** Server `b` requires a client certificate; returns the peer's URI SAN each side saw, or the error. */
async function handshake(
  client: Side,
  server: Side,
): Promise<{ ok: true; sawClient: string } | { ok: false; error: string }> {
  const srv = createServer({
    cert: server.leaf.certChainPem,
    key: server.leaf.privateKeyPem,
    ca: server.bundle,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
  });
  let sawClient = '';
  srv.on('secureConnection', (s: TLSSocket) => {
    sawClient = s.getPeerCertificate().subjectaltname ?? '';
    s.end('ok');
  });
  srv.on('tlsClientError', () => undefined);
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as AddressInfo;
  try {
    const sock = connect({
      host: '127.0.0.1',
      port,
      cert: client.leaf.certChainPem,
      key: client.leaf.privateKeyPem,
      ca: client.bundle,
      // Envoy matches the URI SAN, not the host name; mirror that.
      checkServerIdentity: (_host, cert) =>
        cert.subjectaltname?.includes(server.leaf.spiffeId)
          ? undefined
          : new Error(`unexpected server ${cert.subjectaltname}`),
    });
    const result = await new Promise<
      { ok: true; sawClient: string } | { ok: false; error: string }
    >((resolve) => {
      let data = '';
      sock.on('data', (d) => (data += d));
      sock.on('end', () =>
        resolve(data === 'ok' ? { ok: true, sawClient } : { ok: false, error: 'closed' }),
      );
      sock.on('error', (err) => resolve({ ok: false, error: err.message }));
    });
    sock.destroy();
    return result;
  } finally {
    srv.close();
  }
}

describe('mTLS with issued certificates', () => {
  it('two services authenticate each other; the server sees the client SPIFFE ID', async () => {
    const ca = await CertificateAuthority.open({ store: new MemoryCaStore() });
    const bundle = ca.trustBundlePem();
    const web = { leaf: await ca.issueLeaf('web'), bundle };
    const api = { leaf: await ca.issueLeaf('api'), bundle };
    const res = await handshake(web, api);
    expect(res).toEqual({
      ok: true,
      sawClient: 'URI:spiffe://lucid.internal/ns/default/svc/web, DNS:web.lucid.internal',
    });
  });

  it('a certificate from another CA is refused', async () => {
    const ca = await CertificateAuthority.open({ store: new MemoryCaStore() });
    const rogue = await CertificateAuthority.open({ store: new MemoryCaStore() });
    const api = { leaf: await ca.issueLeaf('api'), bundle: ca.trustBundlePem() };
    const mallory = { leaf: await rogue.issueLeaf('web'), bundle: ca.trustBundlePem() };
    expect((await handshake(mallory, api)).ok).toBe(false);
  });

  it('during a root rotation, old-root and new-root leaves interoperate through the overlap bundle', async () => {
    const ca = await CertificateAuthority.open({ store: new MemoryCaStore() });
    const oldLeaf = await ca.issueLeaf('api');
    await ca.rotateRoot();
    const overlap = ca.trustBundlePem();
    const newLeaf = await ca.issueLeaf('web');
    expect(
      (await handshake({ leaf: newLeaf, bundle: overlap }, { leaf: oldLeaf, bundle: overlap })).ok,
    ).toBe(true);
    expect(
      (await handshake({ leaf: oldLeaf, bundle: overlap }, { leaf: newLeaf, bundle: overlap })).ok,
    ).toBe(true);
    // After the old root is dropped, a leftover old-root leaf no longer gets in.
    await ca.retireRoot(ca.roots().find((r) => r.state === 'retiring')!.serial);
    const after = ca.trustBundlePem();
    const res = await handshake({ leaf: oldLeaf, bundle: after }, { leaf: newLeaf, bundle: after });
    expect(res.ok).toBe(false);
  });
});
