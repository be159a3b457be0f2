// node.metadata.exclusive_ports, which `lucid-mesh bootstrap` writes: read into
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
