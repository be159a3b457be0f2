// `serve` loads a backend's client only when a flag asks for that backend (issue 16: idle RSS):
// a default serve never loads etcd3, consul, amqplib or @grpc/grpc-js, and `--source etcd` /
// `--source consul` / `--xds-transport grpc-js` still load theirs and come ready (from a real
// etcd and a real Consul). The loaded modules are
// listed by bench/diag/idle-modules.mjs (the bench's own probe), preloaded through NODE_OPTIONS.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { plainServeArgs, repoRoot, spawnCli, type CliProcess } from '../support/cli-process.js';
import { startConsul, type ConsulAgent } from '../support/consul.js';
import { startEtcd, type EtcdHandle } from '../support/etcd.js';
import { httpGet } from '../support/http-app.js';
import { freePorts } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

const CLIENTS = ['etcd3', 'consul', 'amqplib', '@grpc/grpc-js'] as const;
const probe = join(repoRoot, 'bench', 'diag', 'idle-modules.mjs');

/** Starts serve with the module probe; resolves once /ready says 200, with the packages loaded. */
async function serveAndList(
  args: (ports: { admin: number; xds: number }) => string[],
  stops: CliProcess[],
  dataDir?: string,
): Promise<Set<string>> {
  const [admin, xds] = (await freePorts(2)) as [number, number];
  const dir = mkdtempSync(join(tmpdir(), 'lucid-lazy-'));
  const list = join(dir, 'modules.tsv');
  writeFileSync(list, '');
  const serve = spawnCli(args({ admin, xds }), {
    LUCID_DATA_DIR: dataDir ?? join(dir, 'state'),
    LUCID_IDLE_MODULES_OUT: list,
    NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import=${probe}`.trim(),
  });
  stops.push(serve);
  await waitFor(
    async () => {
      const r = await httpGet(`http://127.0.0.1:${admin}/ready`).catch(() => undefined);
      return r?.status === 200;
    },
    { what: 'serve /ready', timeoutMs: 60_000, details: serve.stderr },
  );
  const packages = new Set<string>();
  for (const line of readFileSync(list, 'utf8').split('\n')) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(line.split('\t')[0] ?? '');
    if (m) packages.add(m[1]!);
  }
  expect(packages.has('protobufjs'), 'the probe sees the modules serve loads').toBe(true);
  return packages;
}

describe('serve loads a backend client only when asked for', () => {
  const stops: CliProcess[] = [];
  let etcd: EtcdHandle | undefined;
  let consul: ConsulAgent | undefined;
  beforeAll(async () => {
    [etcd, consul] = await Promise.all([startEtcd('lazy-etcd'), startConsul()]);
  }, 15 * 60_000);
  afterAll(async () => {
    await Promise.all(stops.map((s) => s.stop()));
    await etcd?.remove();
    await consul?.remove();
  });

  it('a file-catalog serve loads none of etcd3, consul, amqplib, @grpc/grpc-js', async () => {
    const packages = await serveAndList((p) => plainServeArgs('examples/catalog.yaml', p), stops);
    for (const client of CLIENTS) expect(packages.has(client), client).toBe(false);
  });

  it('with the secure defaults, the x509 library loads when the CA makes its root, not when it reopens it; jose at the first token', async () => {
    const state = mkdtempSync(join(tmpdir(), 'lucid-lazy-ca-'));
    const secure = (p: { admin: number; xds: number }) => [
      ...['serve', '--catalog', 'examples/catalog.yaml', '--host', '127.0.0.1'],
      ...['--admin-port', String(p.admin), '--xds-port', String(p.xds)],
    ];
    const first = await serveAndList(secure, stops, state);
    expect(first.has('@peculiar/x509'), 'the first start makes the root with it').toBe(true);
    await Promise.all(stops.splice(0).map((s) => s.stop()));
    const again = await serveAndList(secure, stops, state);
    expect(again.has('@peculiar/x509'), 'reopened: loaded at the first certificate only').toBe(
      false,
    );
    expect(again.has('jose'), 'no token minted or checked yet').toBe(false);
  });

  it('--source etcd loads etcd3 and comes ready from a real etcd', async () => {
    const packages = await serveAndList(
      (p) => [
        ...plainServeArgs('examples/catalog.yaml', p).filter(
          (a, i, all) => a !== '--catalog' && all[i - 1] !== '--catalog',
        ),
        ...['--source', 'etcd', '--etcd', etcd!.endpoint],
      ],
      stops,
    );
    expect(packages.has('etcd3')).toBe(true);
    expect(packages.has('amqplib')).toBe(false);
  });

  it('--source consul loads consul and comes ready from a real Consul', async () => {
    const packages = await serveAndList(
      (p) => [
        ...plainServeArgs('examples/catalog.yaml', p).filter(
          (a, i, all) => a !== '--catalog' && all[i - 1] !== '--catalog',
        ),
        ...['--source', 'consul', '--consul', consul!.address],
      ],
      stops,
    );
    expect(packages.has('consul')).toBe(true);
    expect(packages.has('etcd3')).toBe(false);
  });

  it('--xds-transport grpc-js loads @grpc/grpc-js and serves ADS with it', async () => {
    let xdsPort = 0;
    const packages = await serveAndList((p) => {
      xdsPort = p.xds;
      return [...plainServeArgs('examples/catalog.yaml', p), '--xds-transport', 'grpc-js'];
    }, stops);
    expect(packages.has('@grpc/grpc-js')).toBe(true);
    // The xDS port answers HTTP/2 once the deferred transport has bound it.
    const session = http2.connect(`http://127.0.0.1:${xdsPort}`);
    try {
      const status = await new Promise<string | undefined>((resolve, reject) => {
        const req = session.request({
          ':method': 'POST',
          ':path': '/envoy.service.discovery.v3.AggregatedDiscoveryService/NoSuchMethod',
          'content-type': 'application/grpc',
        });
        req.on('response', (h) => resolve(h['grpc-status'] as string | undefined));
        req.on('error', reject);
        req.end();
      });
      expect(status).toBe('12'); // UNIMPLEMENTED, from grpc-js
    } finally {
      session.close();
    }
  });
});
