// Config scoping on a real Envoy (docs/scoping.md): one sidecar's RSS and /config_dump size
// when its scope holds 1,000 services against 10. The control plane runs in this process on a
// catalog of 1,000 services × 2 instances; `wide` declares no upstreams (gets everything),
// `narrow` declares 10. Each sidecar is started alone, measured once it holds its clusters
// and a few seconds have passed, then stopped; the two alternate for ROUNDS rounds.
// `npm run bench -- --workload scope-envoy` (RESULTS.md), or alone: npx tsx bench/scope-envoy.ts [rounds]
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { freePort } from './free-port.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { startControlPlane } from '../src/app.js';
import { renderBootstrap } from '../src/bootstrap/render.js';
import { FileSource } from '../src/sources/file-source.js';
import { silentLogger } from '../src/telemetry/logger.js';
import { REPO_ROOT } from './ipc.js';
import type { ScopeEnvoyResult, ScopeEnvoySample } from './types.js';

const SERVICES = 1000;
const DECLARED = 10;
const SETTLE_MS = 3000;

function envoyBin(): string {
  return execFileSync('bash', [join(REPO_ROOT, 'scripts', 'install-tools.sh'), 'envoy'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  })
    .trim()
    .split('\n')
    .pop()!;
}

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    request(url, { timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

const name = (i: number) => `svc-${String(i).padStart(4, '0')}`;
const catalog = {
  services: [
    ...Array.from({ length: SERVICES }, (_, i) => ({
      name: name(i),
      instances: [1, 2].map((n) => ({
        id: `${name(i)}-${n}`,
        address: `10.${n}.${Math.floor(i / 250)}.${(i % 250) + 1}`,
        port: 8080,
        sidecarPort: 15006,
      })),
    })),
    { name: 'wide', instances: [] },
    {
      name: 'narrow',
      instances: [],
      upstreams: Array.from({ length: DECLARED }, (_, i) => name(i)),
    },
  ],
};

export async function runScopeEnvoy(opts: {
  readonly rounds: number;
  readonly log: (line: string) => void;
}): Promise<ScopeEnvoyResult> {
  const dir = mkdtempSync(join(tmpdir(), 'lucid-scope-bench-'));
  const catalogPath = join(dir, 'catalog.yaml');
  writeFileSync(catalogPath, stringify(catalog));
  const cp = await startControlPlane({
    source: new FileSource(catalogPath, silentLogger),
    logger: silentLogger,
    mesh: { scope: 'declared' },
    host: '127.0.0.1',
    xdsPort: 0,
    adminPort: 0,
  });
  const bin = envoyBin();
  const samples: ScopeEnvoySample[] = [];
  const errors: string[] = [];

  async function measure(scope: 'wide' | 'narrow', round: number): Promise<ScopeEnvoySample> {
    const adminPort = await freePort();
    const bootstrap = join(dir, `${scope}.yaml`);
    writeFileSync(
      bootstrap,
      renderBootstrap({
        nodeId: `${scope}-1`,
        service: scope,
        xds: `127.0.0.1:${cp.xdsPort}`,
        mode: 'delta',
        adminPort,
        outboundPort: await freePort(),
      }),
    );
    const started = Date.now();
    const child = spawn(
      bin,
      ['-c', bootstrap, '--concurrency', '1', '--disable-hot-restart', '-l', 'error'],
      { stdio: 'ignore' },
    );
    try {
      const want = scope === 'wide' ? SERVICES : DECLARED;
      let clusters = 0;
      let readyMs = 0;
      for (let i = 0; i < 600 && clusters < want; i++) {
        await sleep(100);
        const stats = await get(
          `http://127.0.0.1:${adminPort}/stats?filter=^cluster_manager.active_clusters$`,
        ).catch(() => '');
        clusters = Number(/active_clusters: (\d+)/.exec(stats)?.[1] ?? 0);
        readyMs = Date.now() - started;
      }
      if (clusters < want)
        errors.push(`${scope} round ${round}: ${clusters} clusters, want ${want}`);
      await sleep(SETTLE_MS);
      const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1];
      const dump = await get(`http://127.0.0.1:${adminPort}/config_dump?include_eds`);
      return {
        scope,
        round,
        clusters,
        rssMiB: Number(rss) / 1024,
        configDumpKiB: Buffer.byteLength(dump) / 1024,
        readyMs,
      };
    } finally {
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
    }
  }

  try {
    for (let round = 1; round <= opts.rounds; round++) {
      // Interleaved, the order alternating, so drift on a shared machine hits both alike.
      const order = round % 2 === 1 ? (['wide', 'narrow'] as const) : (['narrow', 'wide'] as const);
      for (const scope of order) {
        const s = await measure(scope, round);
        samples.push(s);
        opts.log(
          `scope-envoy ${s.scope.padEnd(6)} clusters ${String(s.clusters).padStart(4)}  RSS ${s.rssMiB.toFixed(1)} MiB  config_dump ${s.configDumpKiB.toFixed(0)} KiB  ready ${s.readyMs} ms`,
        );
      }
    }
  } finally {
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return { services: SERVICES, instances: 2, declared: DECLARED, samples, errors };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const result = await runScopeEnvoy({ rounds: Number(process.argv[2] ?? 2), log: console.log });
  if (result.errors.length > 0) console.error(result.errors.join('\n'));
}
