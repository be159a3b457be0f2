// The true/false keys of node.metadata that `lucid-mesh bootstrap` writes. exclusive_ports: read into
// ProxyIdentity.exclusivePorts (its own listeners lose SO_REUSEPORT, translate/envoy.ts);
// absent or false for sidecars bootstrapped before, which keep Envoy's default.
import { describe, expect, it } from 'vitest';
import { InvalidNodeError, proxyIdentityOf } from '../../src/xds/node.js';
import { node } from '../support/ads-client.js';

const withMeta = (value: unknown) => {
  const base = node('web-1', 'web');
  return { ...base, metadata: { ...base.metadata, exclusive_ports: value } };
};

describe('proxyIdentityOf: exclusive_ports', () => {
  it.each([true, 'true'])('%j → exclusivePorts', (value) => {
    expect(proxyIdentityOf(withMeta(value)).exclusivePorts).toBe(true);
  });

  it.each([false, 'false', '', null, undefined])(
    '%j → not set (Envoy keeps SO_REUSEPORT)',
    (value) => {
      expect(proxyIdentityOf(withMeta(value))).not.toHaveProperty('exclusivePorts');
    },
  );

  it('a bootstrap without the key (from before it existed) → not set', () => {
    expect(proxyIdentityOf(node('web-1', 'web'))).not.toHaveProperty('exclusivePorts');
  });

  it.each([1, 'yes', {}])('%j is refused, naming the field and the value', (value) => {
    expect(() => proxyIdentityOf(withMeta(value))).toThrow(InvalidNodeError);
    expect(() => proxyIdentityOf(withMeta(value))).toThrow(
      `node.metadata.exclusive_ports: expected true or false, got ${JSON.stringify(value)}`,
    );
  });
});

describe('proxyIdentityOf: dns_forward', () => {
  const withDns = (value: unknown, dnsPort: unknown = 15053) => {
    const base = node('web-1', 'web');
    return { ...base, metadata: { ...base.metadata, dns_port: dnsPort, dns_forward: value } };
  };

  it.each([false, 'false'])('%j → dnsForward false (bootstrap --dns-forward off)', (value) => {
    expect(proxyIdentityOf(withDns(value)).dnsForward).toBe(false);
  });

  it.each([true, 'true', undefined, ''])('%j → forwarded (not set)', (value) => {
    expect(proxyIdentityOf(withDns(value))).not.toHaveProperty('dnsForward');
  });

  it('without a DNS listener (dns_port 0) there is nothing to forward', () => {
    expect(proxyIdentityOf(withDns(false, 0))).not.toHaveProperty('dnsForward');
  });

  it('another value is refused, naming the field and the value', () => {
    expect(() => proxyIdentityOf(withDns('no'))).toThrow(
      'node.metadata.dns_forward: expected true or false, got "no"',
    );
  });
});
