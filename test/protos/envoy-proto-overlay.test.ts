// scripts/fetch-envoy-protos.mjs: the newer Envoy .proto files (OTLP access logger) laid over
// the grpc-js-xds set. The descriptor `npm ci` built has them; a cached overlay is reused
// without cargo; without cargo, or without the registry, the step fails with a message saying
// what is missing (and leaves nothing half-written behind).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { TYPE_URLS, decodeMessage, encodeMessage } from '../../src/protos/envoy.js';
import { freePort } from '../support/ports.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SCRIPT = join(ROOT, 'scripts', 'fetch-envoy-protos.mjs');
const OTLP_LOG = 'envoy.extensions.access_loggers.open_telemetry.v3.OpenTelemetryAccessLogConfig';
const work = mkdtempSync(join(tmpdir(), 'lucid-proto-overlay-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

function fetchProtos(env: Record<string, string>) {
  const res = spawnSync(process.execPath, [SCRIPT], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: res.status, stdout: res.stdout.trim(), stderr: res.stderr };
}

describe('the Envoy proto overlay', () => {
  it('the descriptor has the newer OpenTelemetryAccessLogConfig (grpc_service, log_name)', () => {
    const listener = {
      name: 'l',
      address: { socketAddress: { address: '127.0.0.1', portValue: 1 } },
      filterChains: [
        {
          filters: [
            {
              name: 'envoy.filters.network.http_connection_manager',
              typedConfig: {
                '@type':
                  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                statPrefix: 'l',
                accessLog: [
                  {
                    name: 'envoy.access_loggers.open_telemetry',
                    typedConfig: {
                      '@type': `type.googleapis.com/${OTLP_LOG}`,
                      grpcService: { envoyGrpc: { clusterName: 'c' } },
                      logName: 'n',
                      attributes: { values: [{ key: 'k', value: { stringValue: '%PROTOCOL%' } }] },
                    },
                  },
                ],
              },
            },
          ],
        },
      ],
    };
    const back = JSON.stringify(
      decodeMessage(TYPE_URLS.listeners, encodeMessage(TYPE_URLS.listeners, listener, 'l')),
    );
    expect(back).toContain('"grpcService":{"envoyGrpc":{"clusterName":"c"}}');
    expect(back).toContain('"logName":"n"');
    expect(back).toContain('"key":"k","value":{"stringValue":"%PROTOCOL%"}');
  });

  it('a cached overlay is used as is: no cargo needed', () => {
    const first = fetchProtos({});
    expect(first.status, first.stderr).toBe(0);
    const again = fetchProtos({ PATH: '/nonexistent' });
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toBe(first.stdout);
    expect(again.stderr).not.toContain('fetching');
  });

  it('an empty cache without cargo: a message naming cargo and the crate', () => {
    const cache = join(work, 'no-cargo');
    const res = fetchProtos({ LUCID_PROTOS_CACHE: cache, PATH: '/nonexistent' });
    expect(res.status).toBe(1);
    expect(res.stderr).toContain(
      "cargo is not installed: it fetches the crate envoy-types 0.7.7 (Envoy's .proto files) from crates.io",
    );
  });

  it('an unreachable registry: a message saying so, and nothing left in the cache', async () => {
    const cache = join(work, 'offline');
    const res = fetchProtos({
      LUCID_PROTOS_CACHE: cache,
      // A fresh cargo home (nothing cached) and a proxy on a closed loopback port.
      CARGO_HOME: join(work, 'cargo-home'),
      RUSTUP_HOME: process.env.RUSTUP_HOME ?? join(process.env.HOME ?? '/root', '.rustup'),
      CARGO_HTTP_PROXY: `http://127.0.0.1:${await freePort()}`,
      CARGO_NET_RETRY: '0',
    });
    expect(res.status).toBe(1);
    expect(res.stderr).toMatch(
      /could not fetch the crate envoy-types 0\.7\.7 from crates\.io \(cargo fetch .* exited \d+; is the registry reachable\?\)/,
    );
    expect(readdirSync(cache)).toEqual([]);
  });
});
