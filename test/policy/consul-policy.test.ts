// The policy in a Consul KV key, against a real Consul agent: loaded, followed live, a bad or
// deleted value keeps the last good policy.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsulPolicy } from '../../src/policy/consul-policy.js';
import { decide } from '../../src/policy/evaluate.js';
import { ConsulClient } from '../../src/sources/consul/client.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { CONSUL_SETUP_TIMEOUT_MS, startConsul, type ConsulAgent } from '../support/consul.js';
import { waitFor } from '../support/wait.js';

const KEY = 'lucid-mesh/policy';
const walletOnlyFrom = (callers: string[]) => ({
  planes: { wallet: { services: ['wallet'], isolation: 'isolated' } },
  defaults: { action: 'allow' },
  rules: [{ from: callers, to: ['plane:wallet'], action: 'allow' }],
});

describe('policy in Consul KV', () => {
  let consul: ConsulAgent;
  let policy: ConsulPolicy;

  beforeAll(async () => {
    consul = await startConsul();
  }, CONSUL_SETUP_TIMEOUT_MS);
  afterAll(async () => {
    await policy?.stop();
    await consul?.stop();
  });

  it('loads the key, follows edits, and keeps the last good one on a bad or deleted value', async () => {
    expect((await consul.api('PUT', `/v1/kv/${KEY}`, walletOnlyFrom(['world']))).status).toBe(200);
    const client = new ConsulClient({ host: '127.0.0.1', port: consul.httpPort, secure: false });
    policy = new ConsulPolicy(client, KEY, silentLogger, { waitMs: 5_000 });
    const changes: unknown[] = [];
    policy.onChange((p) => changes.push(p));
    await policy.start();
    expect(decide(policy.current()!, 'world', 'wallet')).toBe('allow');
    expect(decide(policy.current()!, 'hello', 'wallet')).toBe('deny');

    await consul.api('PUT', `/v1/kv/${KEY}`, walletOnlyFrom(['world', 'hello']));
    await waitFor(() => decide(policy.current()!, 'hello', 'wallet') === 'allow', {
      what: 'the edit applied',
    });
    expect(changes).toHaveLength(2);

    await consul.api('PUT', `/v1/kv/${KEY}`, { defaults: { action: 'maybe' } });
    await waitFor(() => policy.lastError(), { what: 'the bad value reported' });
    expect(policy.lastError()!.message).toContain('defaults.action');
    expect(decide(policy.current()!, 'hello', 'wallet')).toBe('allow');

    await consul.api('DELETE', `/v1/kv/${KEY}`);
    await waitFor(() => policy.lastError()?.message.includes('no such key'), {
      what: 'the deletion reported',
    });
    expect(decide(policy.current()!, 'hello', 'wallet')).toBe('allow');
    expect(changes).toHaveLength(2);
  });
});
