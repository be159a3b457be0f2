// Operator-provided CAs (`--ca-cert/--ca-key`, like the seeds' /etc/certs/ca.crt), made with
// OpenSSL the way an operator would: a root, an intermediate under a root, SEC1 and PKCS#8 keys.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CertificateAuthority } from '../../src/ca/authority.js';
import { readOperatorCa } from '../../src/ca/open.js';
import { MemoryCaStore } from '../../src/ca/store.js';
import { chainsTo, hasOpenssl, openssl, opensslVerify, tempDir } from './helpers.js';

const CA_EXT =
  'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\n';

interface Files {
  dir: string;
  rootCert: string;
  rootKey: string;
  rsaCert: string;
  rsaKey: string;
  intCert: string;
  intKey: string;
  intChain: string;
  leafCert: string;
  leafKey: string;
}

/** Builds the operator's PKI once: EC root (SEC1 key), RSA root, intermediate, a non-CA cert. */
function makeOperatorPki(): Files {
  const dir = tempDir('lucid-operator-ca-');
  const run = (args: string[]) => openssl(args, dir);
  /** `<name>.csr` signed by the root (ca.crt, root.key) with the extensions of `ext`: <name>.crt. */
  const signByRoot = (name: string, ext: string) =>
    run([
      ...['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'root.key'],
      ...['-CAcreateserial', '-days', '30', '-sha256', '-extfile', ext, '-out', `${name}.crt`],
    ]);
  writeFileSync(join(dir, 'ca.ext'), CA_EXT);
  writeFileSync(join(dir, 'leaf.ext'), 'basicConstraints=critical,CA:FALSE\n');
  run(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'root.key']); // SEC1
  run([
    'req',
    '-x509',
    '-new',
    '-key',
    'root.key',
    '-sha256',
    '-days',
    '30',
    '-subj',
    '/O=Lucid Ops/CN=Operator Root',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-out',
    'ca.crt',
  ]);
  run(['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'rsa.key']);
  run([
    'req',
    '-x509',
    '-new',
    '-key',
    'rsa.key',
    '-sha256',
    '-days',
    '30',
    '-subj',
    '/CN=Operator RSA Root',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-out',
    'rsa.crt',
  ]);
  run(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'int.key']);
  run(['req', '-new', '-key', 'int.key', '-subj', '/CN=Operator Intermediate', '-out', 'int.csr']);
  signByRoot('int', 'ca.ext');
  writeFileSync(
    join(dir, 'int-chain.crt'),
    readFileSync(join(dir, 'int.crt'), 'utf8') + readFileSync(join(dir, 'ca.crt'), 'utf8'),
  );
  run(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', 'leaf.key']);
  run(['req', '-new', '-key', 'leaf.key', '-subj', '/CN=not a ca', '-out', 'leaf.csr']);
  signByRoot('leaf', 'leaf.ext');
  const p = (f: string) => join(dir, f);
  return {
    dir,
    rootCert: p('ca.crt'),
    rootKey: p('root.key'),
    rsaCert: p('rsa.crt'),
    rsaKey: p('rsa.key'),
    intCert: p('int.crt'),
    intKey: p('int.key'),
    intChain: p('int-chain.crt'),
    leafCert: p('leaf.crt'),
    leafKey: p('leaf.key'),
  };
}

describe.skipIf(!hasOpenssl)('operator-provided CA', () => {
  let f: Files;
  beforeAll(() => {
    f = makeOperatorPki();
  });

  it('signs leaves with an operator root (SEC1 EC key) that OpenSSL verifies', async () => {
    const operatorCa = await readOperatorCa(f.rootCert, f.rootKey);
    const ca = await CertificateAuthority.open({ store: new MemoryCaStore(), operatorCa });
    expect(ca.roots()).toHaveLength(1);
    expect(ca.activeRoot().source).toBe('operator');
    expect(ca.activeRoot().subject).toContain('CN=Operator Root');
    expect(ca.trustBundlePem().trim()).toBe(readFileSync(f.rootCert, 'utf8').trim());
    const leaf = await ca.issueLeaf('web');
    expect(opensslVerify(leaf.certChainPem, ca.trustBundlePem(), 'sslclient')).toMatch(/OK/);
    expect(opensslVerify(leaf.certChainPem, ca.trustBundlePem(), 'sslserver')).toMatch(/OK/);
  });

  it('signs with an RSA operator root (PKCS#8 key)', async () => {
    const operatorCa = await readOperatorCa(f.rsaCert, f.rsaKey);
    const ca = await CertificateAuthority.open({ store: new MemoryCaStore(), operatorCa });
    const leaf = await ca.issueLeaf('web');
    expect(opensslVerify(leaf.certChainPem, ca.trustBundlePem(), 'sslclient')).toMatch(/OK/);
  });

  it('with an intermediate: leaf chain = leaf + intermediate, bundle = the root', async () => {
    const operatorCa = await readOperatorCa(f.intChain, f.intKey);
    const ca = await CertificateAuthority.open({ store: new MemoryCaStore(), operatorCa });
    expect(ca.trustBundlePem().trim()).toBe(readFileSync(f.rootCert, 'utf8').trim());
    const leaf = await ca.issueLeaf('api');
    const blocks = leaf.certChainPem.match(
      /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g,
    )!;
    expect(blocks).toHaveLength(2);
    expect(blocks[1]!.trim()).toBe(readFileSync(f.intCert, 'utf8').trim());
    expect(opensslVerify(leaf.certChainPem, ca.trustBundlePem(), 'sslserver')).toMatch(/OK/);
  });

  it('reopening with the same files changes nothing; new files rotate with overlap', async () => {
    const store = new MemoryCaStore();
    const root = await readOperatorCa(f.rootCert, f.rootKey);
    const first = await CertificateAuthority.open({ store, operatorCa: root });
    const again = await CertificateAuthority.open({ store, operatorCa: root });
    expect(again.roots()).toEqual(first.roots());
    const rsa = await readOperatorCa(f.rsaCert, f.rsaKey);
    const rotated = await CertificateAuthority.open({ store, operatorCa: rsa });
    expect(rotated.roots().map((r) => [r.subject, r.state])).toEqual([
      ['CN=Operator RSA Root', 'active'],
      ['O=Lucid Ops, CN=Operator Root', 'retiring'],
    ]);
    const leaf = await first.issueLeaf('web'); // still the old root in that instance
    expect(chainsTo(leaf.certChainPem, rotated.trustBundlePem())).toBe(true);
  });

  it('rejects unusable CA files, naming the flag, the file and the problem', async () => {
    const missing = join(f.dir, 'nope.crt');
    await expect(readOperatorCa(missing, f.rootKey)).rejects.toThrow(
      `--ca-cert: cannot read ${JSON.stringify(missing)} (ENOENT)`,
    );
    await expect(readOperatorCa(f.rootCert, undefined)).rejects.toThrow(
      `--ca-key: required with --ca-cert ${JSON.stringify(f.rootCert)}`,
    );
    await expect(readOperatorCa(undefined, f.rootKey)).rejects.toThrow(
      /^--ca-cert: required with --ca-key/,
    );
    await expect(readOperatorCa(f.rootCert, f.rsaKey)).rejects.toThrow(
      /^--ca-key: ".*rsa.key": the key does not belong to the certificate O=Lucid Ops, CN=Operator Root$/,
    );
    await expect(readOperatorCa(f.rootKey, f.rootKey)).rejects.toThrow(
      /^--ca-cert: ".*root.key": no PEM certificate found/,
    );
    await expect(readOperatorCa(f.rootCert, f.rootCert)).rejects.toThrow(
      /^--ca-key: ".*ca.crt": not a readable PEM private key/,
    );
    await expect(readOperatorCa(f.leafCert, f.leafKey)).rejects.toThrow(/is not a CA certificate/);
    // An intermediate alone cannot anchor a trust bundle.
    await expect(readOperatorCa(f.intCert, f.intKey)).rejects.toThrow(
      /CN=Operator Intermediate is not self-signed: an intermediate CA needs its issuers/,
    );
    expect(await readOperatorCa(undefined, undefined)).toBeUndefined();
  });
});
