// describeEtcdError names the likely fix. An https:// endpoint on a plain etcd port fails in
// one of two ways, by timing: OpenSSL reads the reply ("wrong version number", "disconnected
// before secure TLS connection") or the reset comes first ("read ECONNRESET"); both get the
// hint (the second failed a CI run of test/cli/etcd-tls without it).
import { describe, expect, it } from 'vitest';
import { describeEtcdError } from '../../src/sources/etcd/client.js';

const reset = new Error('14 UNAVAILABLE: No connection established. Last error: read ECONNRESET');
const HINT = '(does etcd serve TLS there? http:// for a plain port)';

describe('etcd error hints', () => {
  it('a reset at connect to an https:// endpoint: is etcd serving TLS there?', () => {
    expect(describeEtcdError(reset, ['https://127.0.0.1:2379'])).toBe(`${reset.message} ${HINT}`);
  });

  it('the same reset to an http:// endpoint: no TLS hint', () => {
    expect(describeEtcdError(reset, ['http://127.0.0.1:2379'])).toBe(reset.message);
    expect(describeEtcdError(reset)).toBe(reset.message);
  });
});
