// scripts/fetch-envoy-protos.mjs: the newer Envoy .proto files (OTLP access logger) laid over
// the grpc-js-xds set. The descriptor `npm ci` built has them; a cached overlay is reused
// without a download; an unreachable registry or a crate that is not the pinned one fails the
// step with a message saying so (and leaves nothing half-written behind).
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
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

/** Runs the script without blocking this process (the tampered-crate test serves it). */
function fetchProtosAsync(env: Record<string, string>) {
  return new Promise<{ status: number | null; stderr: string }>((done) => {
    const child = spawn(process.execPath, [SCRIPT], { env: { ...process.env, ...env } });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('close', (status) => done({ status, stderr }));
  });
}

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

  it('a cached overlay is used as is: no download', async () => {
    const first = fetchProtos({});
    expect(first.status, first.stderr).toBe(0);
    const again = fetchProtos({ LUCID_CRATES_URL: `http://127.0.0.1:${await freePort()}` });
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toBe(first.stdout);
    expect(again.stderr).not.toContain('fetching');
  });

  it('an unreachable registry: a message saying so, and nothing left in the cache', async () => {
    const cache = join(work, 'offline');
    const res = fetchProtos({
      LUCID_PROTOS_CACHE: cache,
      LUCID_CRATES_URL: `http://127.0.0.1:${await freePort()}`,
    });
    expect(res.status).toBe(1);
    expect(res.stderr).toMatch(
      /could not fetch the crate envoy-types 0\.7\.7 from http:\/\/127\.0\.0\.1:\d+\/envoy-types\/envoy-types-0\.7\.7\.crate \(.*; is the registry reachable\?\)/,
    );
    expect(readdirSync(cache)).toEqual([]);
  });

  it('a crate that is not the pinned one: refused by its checksum, nothing cached', async () => {
    const cache = join(work, 'tampered');
    const server = createServer((_req, res) => res.end('not the crate'));
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    try {
      const { port } = server.address() as AddressInfo;
      const res = await fetchProtosAsync({
        LUCID_PROTOS_CACHE: cache,
        LUCID_CRATES_URL: `http://127.0.0.1:${port}`,
      });
      expect(res.status).toBe(1);
      expect(res.stderr).toContain('checksum mismatch for http://127.0.0.1:');
      expect(readdirSync(cache)).toEqual([]);
    } finally {
      server.close();
    }
  });
});
