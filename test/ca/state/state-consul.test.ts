// `--state consul`: the shared CA state in a real Consul agent's KV (one agent for the file).
import { afterAll, beforeAll, describe } from 'vitest';
import { ConsulKv } from '../../../src/ca/state/consul-kv.js';
import { CONSUL_SETUP_TIMEOUT_MS, startConsul, type ConsulAgent } from '../../support/consul.js';
import { sharedStoreSuite } from './shared-store-suite.js';

let consul: ConsulAgent;
let writer: ConsulKv;

beforeAll(async () => {
  consul = await startConsul();
  writer = new ConsulKv({ secure: false, host: '127.0.0.1', port: consul.httpPort }, 'raw/');
}, CONSUL_SETUP_TIMEOUT_MS);

afterAll(async () => {
  await writer?.close();
  await consul?.stop();
});

describe('shared CA state in Consul KV', () => {
  sharedStoreSuite(() => ({
    kind: 'consul',
    connectionFlags: () => ['--consul', consul.address],
    connectionValues: () => ({ consul: consul.address }),
    raw: async (prefix) => {
      // Straight from Consul's HTTP API: the values as anyone with KV read access sees them.
      const res = await consul.api('GET', `/v1/kv/${prefix}?recurse`);
      if (res.status === 404) return new Map();
      const entries = JSON.parse(res.body) as Array<{ Key: string; Value: string | null }>;
      return new Map(
        entries.map((e) => [e.Key, Buffer.from(e.Value ?? '', 'base64').toString('utf8')]),
      );
    },
    writeRaw: (key, value) => writer.put(key, value),
    endLiveness: async (key) => {
      const res = await consul.api('GET', `/v1/kv/${key}`);
      const [entry] = JSON.parse(res.body) as Array<{ Session?: string }>;
      if (!entry?.Session) throw new Error(`${key} is not held by a session`);
      await consul.api('PUT', `/v1/session/destroy/${entry.Session}`);
    },
    stopStore: () => consul.stop(),
  }));
});
