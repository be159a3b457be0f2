// The SPIFFE ID and server-name rules of both CA backends (src/ca/spiffe.ts, their one home):
// lucid-mesh's own, and Consul Connect's with the datacenter, matched in any datacenter.
import { describe, expect, it } from 'vitest';
import {
  gatewayServerName,
  serviceSni,
  spiffeId,
  spiffeMatcher,
  type Identity,
} from '../../src/ca/spiffe.js';

const lucid: Identity = { trustDomain: 'lucid.internal', namespace: 'default' };
const consul: Identity = {
  trustDomain: '3685615c-7ea5-881c-88a7-1404f7b53aa3.consul',
  namespace: 'default',
  format: 'consul',
  datacenter: 'dc1',
};

describe('SPIFFE IDs and SNI by CA backend', () => {
  it("lucid-mesh's format is unchanged: exact IDs, <service>.<dns suffix> SNI", () => {
    expect(spiffeId(lucid, 'web')).toBe('spiffe://lucid.internal/ns/default/svc/web');
    expect(spiffeMatcher(lucid, 'web')).toEqual({
      exact: 'spiffe://lucid.internal/ns/default/svc/web',
    });
    expect(serviceSni(lucid, 'web', 'mesh.local')).toBe('web.mesh.local');
    expect(gatewayServerName(lucid, 'web', 'dc2')).toBe('web.default.dc2.lucid.internal');
  });

  it("Consul's format: the datacenter in the ID, Consul's service SNI", () => {
    expect(spiffeId(consul, 'web')).toBe(
      'spiffe://3685615c-7ea5-881c-88a7-1404f7b53aa3.consul/ns/default/dc/dc1/svc/web',
    );
    expect(serviceSni(consul, 'web', 'ignored')).toBe(
      'web.default.dc1.internal.3685615c-7ea5-881c-88a7-1404f7b53aa3.consul',
    );
    expect(gatewayServerName(consul, '*', 'dc2')).toBe(
      '*.default.dc2.internal.3685615c-7ea5-881c-88a7-1404f7b53aa3.consul',
    );
  });

  it('the Consul matcher takes the service from any datacenter and nothing else', () => {
    const m = spiffeMatcher(consul, 'web');
    expect('regex' in m).toBe(true);
    const re = new RegExp((m as { regex: string }).regex);
    const td = consul.trustDomain;
    expect(re.test(`spiffe://${td}/ns/default/dc/dc1/svc/web`)).toBe(true);
    expect(re.test(`spiffe://${td}/ns/default/dc/eu-west/svc/web`)).toBe(true);
    for (const other of [
      `spiffe://${td}/ns/default/dc/dc1/svc/web2`,
      `spiffe://${td}/ns/default/dc/dc1/svc/we`,
      `spiffe://${td}/ns/other/dc/dc1/svc/web`,
      `spiffe://${td}/ns/default/dc/a/b/svc/web`,
      // The dots of the trust domain are literal.
      `spiffe://${td.replace(/\./g, 'x')}/ns/default/dc/dc1/svc/web`,
      `spiffe://evil.example/ns/default/dc/dc1/svc/web`,
    ]) {
      expect(re.test(other), other).toBe(false);
    }
  });

  it('a Consul identity without a datacenter is refused', () => {
    expect(() => spiffeId({ ...consul, datacenter: undefined }, 'web')).toThrow(/datacenter/);
  });
});
