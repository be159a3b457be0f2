// Idle RSS of `lucid-mesh serve` with no proxy connected (issue 16): the package's bin started as
// the README does (file catalog, secure defaults), measured SETTLE_S after /ready. Three catalogs
// (empty, the README's example, 1,000 services × 5 instances), ROUNDS rounds interleaved. Per
// sample: VmRSS, RssAnon and RssFile from /proc/PID/status, V8's heap spaces (used/committed)
// and external memory from /metrics (read after /proc, so the scrape's garbage is not counted).
// A separate pass per catalog lists the modules loaded (bench/diag/idle-modules.mjs: its loader
// hook runs on a thread that would inflate RSS). Attribution: fresh processes importing a growing
// prefix of the program (bare node, + the start-up holds, + the Envoy descriptor, …).
// `npm run bench -- --workload idle` (RESULTS.md), or alone: npx tsx bench/idle-rss.ts [rounds]
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { request } from 'node:http';
import { freePort } from './free-port.js';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { GeneratedCatalog } from './catalog.js';
import { REPO_ROOT } from './ipc.js';
import type {
  IdleAttributionStep,
  IdleCatalog,
  IdleModules,
  IdleRssResult,
  IdleRssSample,
} from './types.js';

const SETTLE_S = 10;
const STEP_SETTLE_MS = 3000;
const MiB = 1024 * 1024;

/** The package's bin (package.json), compiled by `tsc -p tsconfig.build.json` if src/ is newer. */
function cliBin(log: (line: string) => void): string {
  const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
    bin: Record<string, string>;
  };
  const bin = join(REPO_ROOT, pkg.bin['lucid-mesh']!);
  if (!existsSync(bin) || newest(join(REPO_ROOT, 'src')) > statSync(bin).mtimeMs) {
    log('idle: dist/ is older than src/: tsc -p tsconfig.build.json + scripts/bundle-cli.mjs');
    execFileSync(
      process.execPath,
      [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
      { cwd: REPO_ROOT, stdio: ['ignore', 'inherit', 'inherit'] },
    );
    // The bin as `npm run build` makes it: the CLI bundled over tsc's main.js.
    execFileSync(process.execPath, [join(REPO_ROOT, 'scripts', 'bundle-cli.mjs')], {
      cwd: REPO_ROOT,
      stdio: ['ignore', 'inherit', 'inherit'],
    });
  }
  return bin;
}

function newest(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let t = 0;
  for (const e of readdirSync(path)) t = Math.max(t, newest(join(path, e)));
  return t;
}

function get(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    })
      .on('error', reject)
      .end();
  });
}

interface ProcStatus {
  rssMiB: number;
  anonMiB: number;
  fileMiB: number;
}

export function procStatus(text: string): ProcStatus {
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1]);
  return {
    rssMiB: kb('VmRSS') / 1024,
    anonMiB: kb('RssAnon') / 1024,
    fileMiB: kb('RssFile') / 1024,
  };
}

/** prom-client's default metrics → heap spaces and external memory, in MiB. */
function heapFromMetrics(text: string): Pick<IdleRssSample, 'spaces' | 'externalMiB'> {
  const spaces = new Map<string, { usedMiB: number; committedMiB: number }>();
  let externalMiB = 0;
  for (const line of text.split('\n')) {
    const m = /^\w*nodejs_heap_space_size_(used|total)_bytes\{space="(\w+)"\} (\S+)/.exec(line);
    if (m) {
      const s = spaces.get(m[2]!) ?? { usedMiB: 0, committedMiB: 0 };
      s[m[1] === 'used' ? 'usedMiB' : 'committedMiB'] = Number(m[3]) / MiB;
      spaces.set(m[2]!, s);
    }
    const e = /^\w*nodejs_external_memory_bytes (\S+)/.exec(line);
    if (e) externalMiB = Number(e[1]) / MiB;
  }
  return {
    spaces: [...spaces]
      .filter(([, s]) => s.committedMiB > 0)
      .map(([space, s]) => ({ space, ...s })),
    externalMiB,
  };
}

interface Started {
  child: ChildProcess;
  port: number;
  readyMs: number;
  stderr: () => string;
}

async function startServe(
  bin: string,
  catalog: string,
  dir: string,
  extraNodeArgs: string[],
  env: NodeJS.ProcessEnv,
): Promise<Started> {
  const port = await freePort();
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    [
      ...extraNodeArgs,
      bin,
      'serve',
      '--catalog',
      catalog,
      '--xds-port',
      '0',
      '--admin-port',
      String(port),
      '--host',
      '127.0.0.1',
      '--data-dir',
      join(dir, 'state'),
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], env },
  );
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-4000)));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}: ${err}`);
    if (Date.now() > deadline) throw new Error(`serve not ready in 60 s: ${err}`);
    const r = await get(`http://127.0.0.1:${port}/ready`).catch(() => undefined);
    if (r?.status === 200) break;
    await sleep(50);
  }
  return { child, port, readyMs: Math.round(performance.now() - t0), stderr: () => err };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await done;
  clearTimeout(t);
}

/** The package a loaded file belongs to (`lucid-mesh` for the project's own). */
function packageOf(file: string): string {
  const path = file.startsWith('file:') ? fileURLToPath(file) : file;
  const rel = relative(REPO_ROOT, path);
  const nm = rel.lastIndexOf('node_modules/');
  if (nm < 0) return 'lucid-mesh';
  const parts = rel.slice(nm + 'node_modules/'.length).split('/');
  return parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!;
}

export function summariseModules(catalog: IdleCatalog, lines: string): IdleModules {
  const sizes = new Map<string, number>();
  for (const line of lines.split('\n')) {
    const [file, len] = line.split('\t');
    if (!file || !len) continue;
    const key = file.startsWith('file:') ? fileURLToPath(file) : file;
    sizes.set(key, Math.max(sizes.get(key) ?? 0, Number(len)));
  }
  const byPackage = new Map<string, { count: number; sourceKiB: number }>();
  for (const [file, len] of sizes) {
    const p = byPackage.get(packageOf(file)) ?? { count: 0, sourceKiB: 0 };
    p.count++;
    p.sourceKiB += len / 1024;
    byPackage.set(packageOf(file), p);
  }
  return {
    catalog,
    count: sizes.size,
    sourceKiB: [...sizes.values()].reduce((a, b) => a + b, 0) / 1024,
    packages: [...byPackage]
      .map(([name, p]) => ({ name, ...p }))
      .sort((a, b) => b.sourceKiB - a.sourceKiB),
  };
}

/** Cumulative import steps: each adds modules (relative to the bin's folder) to the previous. */
function attributionSteps(binDir: string): Array<{ label: string; modules: string[] }> {
  const rel = (p: string) => pathToFileURL(join(binDir, '..', p)).href;
  const program = readFileSync(join(binDir, 'program.js'), 'utf8');
  // Static (`from './x.js'`) or per-command dynamic (`import('./x.js')`) imports alike.
  const commands = [
    ...new Set(program.match(/(?<=(?:from |import\()')\.\/[\w-]+\.js(?=')/g) ?? []),
  ].map((m) => pathToFileURL(join(binDir, m)).href);
  return [
    { label: 'bare node', modules: [] },
    { label: '+ start-up holds (startup-heap.js)', modules: [rel('startup-heap.js')] },
    {
      label: '+ Envoy descriptor (protos/envoy.js, protobufjs)',
      modules: [rel('protos/envoy.js')],
    },
    { label: '+ catalog model (zod, yaml)', modules: [rel('catalog/model.js')] },
    { label: '+ translate', modules: [rel('translate/index.js')] },
    { label: '+ snapshot store', modules: [rel('snapshot/store.js')] },
    { label: '+ xDS server (@grpc/grpc-js)', modules: [rel('xds/server.js')] },
    { label: '+ admin server (prom-client, pino)', modules: [rel('admin/http-server.js')] },
    { label: '+ app.js (composition root)', modules: [rel('app.js')] },
    { label: '+ the serve command (what `serve` loads)', modules: [rel('cli/serve-command.js')] },
    { label: '+ every other CLI command (`--help` loads them)', modules: commands },
  ];
}

const STEP_SCRIPT = `
import { readFileSync } from 'node:fs';
import { getHeapStatistics } from 'node:v8';
for (const m of JSON.parse(process.env.LUCID_IDLE_STEP)) await import(m);
setTimeout(() => {
  const h = getHeapStatistics();
  process.stdout.write(JSON.stringify({ status: readFileSync('/proc/self/status', 'utf8'),
    used: h.used_heap_size, committed: h.total_heap_size }));
}, ${STEP_SETTLE_MS});
`;

function measureStep(label: string, modules: string[]): IdleAttributionStep {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', STEP_SCRIPT], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env: { ...process.env, LUCID_IDLE_STEP: JSON.stringify(modules) },
  });
  const r = JSON.parse(out) as { status: string; used: number; committed: number };
  return {
    label,
    ...procStatus(r.status),
    heapUsedMiB: r.used / MiB,
    heapCommittedMiB: r.committed / MiB,
  };
}

export interface IdleRssOptions {
  readonly rounds: number;
  readonly log: (line: string) => void;
}

export async function runIdleRss(opts: IdleRssOptions): Promise<IdleRssResult> {
  const { log } = opts;
  const bin = cliBin(log);
  const dir = mkdtempSync(join(tmpdir(), 'lucid-idle-'));
  const errors: string[] = [];
  const catalogs: Record<IdleCatalog, string> = {
    empty: join(dir, 'empty.yaml'),
    example: resolve(REPO_ROOT, 'examples', 'catalog.yaml'),
    '1000x5': join(dir, 'large.json'),
  };
  writeFileSync(catalogs.empty, 'services: []\n');
  new GeneratedCatalog({ services: 1000, instances: 5 }, catalogs['1000x5']).write();
  const env = { ...process.env };
  // What a user's environment may have set that changes the result is recorded with it.
  const knobs = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => k.startsWith('LUCID_STARTUP') || k === 'MALLOC_ARENA_MAX' || k === 'NODE_OPTIONS',
    ),
  ) as Record<string, string>;
  const samples: IdleRssSample[] = [];
  const modules: IdleModules[] = [];
  const running = new Set<ChildProcess>();
  try {
    for (let round = 1; round <= opts.rounds; round++) {
      for (const catalog of Object.keys(catalogs) as IdleCatalog[]) {
        const s = await startServe(bin, catalogs[catalog], dir, [], env);
        running.add(s.child);
        try {
          await sleep(SETTLE_S * 1000);
          const status = procStatus(readFileSync(`/proc/${s.child.pid}/status`, 'utf8'));
          const metrics = await get(`http://127.0.0.1:${s.port}/metrics`);
          const heap = heapFromMetrics(metrics.body);
          const sample: IdleRssSample = {
            catalog,
            round,
            readyMs: s.readyMs,
            ...status,
            ...heap,
            heapUsedMiB: heap.spaces.reduce((a, x) => a + x.usedMiB, 0),
            heapCommittedMiB: heap.spaces.reduce((a, x) => a + x.committedMiB, 0),
          };
          samples.push(sample);
          log(
            `idle ${catalog} round ${round}: RSS ${sample.rssMiB.toFixed(1)} MiB (anon ${sample.anonMiB.toFixed(1)}, file ${sample.fileMiB.toFixed(1)}), heap ${sample.heapUsedMiB.toFixed(1)}/${sample.heapCommittedMiB.toFixed(1)} MiB, ready in ${s.readyMs} ms`,
          );
        } catch (err) {
          errors.push(`${catalog} round ${round}: ${(err as Error).message} ${s.stderr()}`);
        } finally {
          await stop(s.child);
          running.delete(s.child);
        }
      }
    }
    for (const catalog of Object.keys(catalogs) as IdleCatalog[]) {
      const listFile = join(dir, `modules-${catalog}.tsv`);
      writeFileSync(listFile, '');
      const preload = pathToFileURL(join(REPO_ROOT, 'bench', 'diag', 'idle-modules.mjs')).href;
      const s = await startServe(bin, catalogs[catalog], dir, ['--import', preload], {
        ...env,
        LUCID_IDLE_MODULES_OUT: listFile,
      });
      running.add(s.child);
      try {
        await sleep(2000);
        modules.push(summariseModules(catalog, readFileSync(listFile, 'utf8')));
      } finally {
        await stop(s.child);
        running.delete(s.child);
      }
    }
    const attribution: IdleAttributionStep[] = [];
    let prefix: string[] = [];
    for (const step of attributionSteps(dirname(bin))) {
      prefix = [...prefix, ...step.modules];
      const m = measureStep(step.label, prefix);
      attribution.push(m);
      log(`idle attribution ${step.label}: RSS ${m.rssMiB.toFixed(1)} MiB`);
    }
    return {
      settleSeconds: SETTLE_S,
      rounds: opts.rounds,
      env: knobs,
      samples,
      modules,
      attribution,
      errors,
    };
  } finally {
    for (const c of running) c.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const rounds = Number(process.argv[2] ?? 2);
  const r = await runIdleRss({ rounds, log: (l) => process.stderr.write(`${l}\n`) });
  process.stdout.write(`${JSON.stringify(r, null, 1)}\n`);
}
