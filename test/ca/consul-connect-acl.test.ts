// The Consul Connect CA backend on a real Consul with ACLs on (default deny), with the token
// docs/ca.md describes: `agent:read` and `service:write` on the services lucid-mesh serves.
// A service the token may not write gets no leaf (the error says 403); once the token's policy
// allows it, the leaf arrives by itself and is announced, without anyone asking again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsulConnectCa } from '../../src/ca/consul-connect.js';
import type { CaChange } from '../../src/ca/leaf-manager.js';
import { ConsulClient } from '../../src/sources/consul/client.js';
import { CONSUL_SETUP_TIMEOUT_MS, startConsul, type ConsulAgent } from '../support/consul.js';
import { waitFor } from '../support/wait.js';

const MANAGEMENT = 'b1a2c3d4-0000-4000-8000-00000000cc01';
const rules = (services: string[]) =>
  [`agent_prefix "" { policy = "read" }`]
    .concat(services.map((s) => `service "${s}" { policy = "write" }`))
    .join('\n');

describe('--ca consul-connect with Consul ACLs (default deny)', () => {
  let consul: ConsulAgent;
  let token: string;
  let ca: ConsulConnectCa | undefined;

  beforeAll(async () => {
    consul = await startConsul({
      hcl: [
        `acl { enabled = true\ndefault_policy = "deny"\ntokens { initial_management = "${MANAGEMENT}"\ndefault = "${MANAGEMENT}"\nagent = "${MANAGEMENT}" } }`,
      ],
    });
    await waitFor(
      async () =>
        (
          await consul.api('PUT', '/v1/acl/policy', {
            Name: 'lucid-connect',
            Rules: rules(['web']),
          })
        ).status === 200,
      { what: 'ACL policy', timeoutMs: 20_000 },
    );
    const res = await consul.api('PUT', '/v1/acl/token', {
      Policies: [{ Name: 'lucid-connect' }],
    });
    expect(res.status, res.body).toBe(200);
    token = (JSON.parse(res.body) as { SecretID: string }).SecretID;
  }, CONSUL_SETUP_TIMEOUT_MS);

  afterAll(async () => {
    ca?.stop();
    await consul?.stop();
  });

  it('serves the services its token may write; another one arrives once the policy allows it', async () => {
    const client = new ConsulClient({
      secure: false,
      host: '127.0.0.1',
      port: consul.httpPort,
      token,
    });
    ca = await ConsulConnectCa.start({ client, retryMs: 200 });
    expect(ca.identity).toMatchObject({
      format: 'consul',
      datacenter: 'dc1',
      namespace: 'default',
    });
    expect(ca.identity.trustDomain).toMatch(/^[0-9a-f-]{36}\.consul$/);
    expect(ca.trustBundlePem()).toContain('BEGIN CERTIFICATE');

    const web = await ca.current('web');
    expect(web.spiffeId).toBe(`spiffe://${ca.identity.trustDomain}/ns/default/dc/dc1/svc/web`);
    expect(web.notAfter.getTime()).toBeGreaterThan(Date.now());

    const changes: CaChange[] = [];
    ca.onChange((c) => changes.push(c));
    await expect(ca.current('api')).rejects.toThrow(/403|Permission denied|forbidden/i);
    expect(ca.peek('api')).toBeUndefined();

    const policy = JSON.parse(
      (await consul.api('GET', '/v1/acl/policy/name/lucid-connect')).body,
    ) as {
      ID: string;
    };
    const update = await consul.api('PUT', `/v1/acl/policy/${policy.ID}`, {
      Name: 'lucid-connect',
      Rules: rules(['web', 'api']),
    });
    expect(update.status, update.body).toBe(200);
    await waitFor(async () => changes.some((c) => c.service === 'api'), {
      what: "the api leaf announced after the policy's change",
      timeoutMs: 15_000,
    });
    expect(ca.peek('api')?.spiffeId).toBe(
      `spiffe://${ca.identity.trustDomain}/ns/default/dc/dc1/svc/api`,
    );
    expect(ca.expiries().leaves.map((l) => l.service)).toEqual(['api', 'web']);
  });
});
