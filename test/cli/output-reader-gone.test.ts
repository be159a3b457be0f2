// Every lucid-mesh command when the reader of its output goes (`lucid-mesh status | head -1`,
// `tail | grep -m1 NACK`) or a supervisor stops it, on the real processes against one real
// `serve` (and one real etcd for `register --ttl`). The rule (src/cli/stdout-closed.ts,
// src/cli/stop-signals.ts, README "Exit codes"): a closed stdout ends a command at once with
// exit 0 and no stack trace (a full disk: one line, exit 1); serve and register --ttl keep
// running; SIGINT/SIGTERM end the commands that follow (tail, events, register --ttl) with 0;
// `tail --count` exits once its output is written; a serve whose shutdown hangs ends by
// --drain-seconds, or at once on a second signal. Before, every command died on EPIPE with exit
// 1 and a stack trace, a register heartbeat died with it, and `tail --count 1 --json | jq` got
// half a line.
import { spawn } from 'node:child_process';
import {
  closeSync,
  copyFileSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import {
  plainServeArgs,
  repoRoot,
  runCli,
  spawnCli,
  type CliProcess,
} from '../support/cli-process.js';
import { killWithTestProcess } from '../support/reaper.js';
import { cliEntry } from '../support/tools.js';
import { startEtcd, type EtcdHandle } from '../support/etcd.js';
import { freePortBase, freePorts } from '../support/ports.js';
import { waitFor } from '../support/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'lucid-reader-gone-'));
const catalog = join(dir, 'catalog.yaml');
copyFileSync('examples/catalog.yaml', catalog);
const env = { LUCID_DATA_DIR: join(dir, 'data'), NO_COLOR: '1' };
const started: CliProcess[] = [];
let server = '';
let etcd: EtcdHandle | undefined;

/** `lucid-mesh ARGS` whose stdout's reader goes at once (`| true`) or after the first chunk. */
async function readerGoes(
  args: string[],
  when: 'at once' | 'after the first chunk',
): Promise<{ code: number | null | 'still running'; stderr: string }> {
  const p = spawnCli(args, env);
  started.push(p);
  if (when === 'at once') p.child.stdout!.destroy();
  else p.child.stdout!.once('data', () => p.child.stdout!.destroy());
  const code = await Promise.race([p.exited, sleep(20_000).then(() => 'still running' as const)]);
  return { code, stderr: p.stderr() };
}

/** Moves hello-1 between passing and critical: a snapshot change, so `tail` prints events. */
let flips = 0;
function changeCatalog(): void {
  const text = readFileSync(catalog, 'utf8');
  const [from, to] = flips++ % 2 === 0 ? ['passing', 'critical'] : ['critical', 'passing'];
  writeFileSync(catalog, text.replace(new RegExp(`^(\\s+health: )${from}$`, 'm'), `$1${to}`));
}

beforeAll(async () => {
  const [admin, xds] = await freePorts(2);
  server = `http://127.0.0.1:${admin}`;
  const serve = spawnCli(
    [...plainServeArgs(catalog, { admin: admin!, xds: xds! }), '--admin-auth', 'none'],
    env,
  );
  started.push(serve);
  const [rotated] = await Promise.all([
    runCli(['ca', 'rotate'], env), // a CA for `ca show`
    waitFor(() => serve.stderr().includes('control plane started'), {
      what: 'serve started',
      timeoutMs: 30_000,
      details: serve.output,
    }),
  ]);
  expect(rotated.code, rotated.stderr).toBe(0);
  etcd = await startEtcd('reader-gone');
}, 60_000);

afterAll(async () => {
  await Promise.all(started.map((p) => p.stop(2000)));
  await etcd?.remove();
  rmSync(dir, { recursive: true, force: true });
});

describe('stdout closed early', () => {
  it('every one-shot command ends at once with exit 0 and no stack trace', async () => {
    const commands: [string[], 'at once' | 'after the first chunk'][] = [
      [['status', '--server', server], 'after the first chunk'],
      [['snapshot', 'hello-1', '--server', server], 'after the first chunk'],
      [['mesh', '--server', server], 'at once'],
      [
        ['route', 'explain', '--from', 'hello', '--to', 'world', '--path', '/', '--server', server],
        'at once',
      ],
      [['config', 'check', 'examples/traffic.yaml'], 'at once'],
      [['policy', 'check', 'examples/policy.yaml'], 'at once'],
      [
        ['bootstrap', '--node-id', 'hello-1', '--service', 'hello', '--xds', '127.0.0.1:1'],
        'at once',
      ],
      [['token', 'issue', '--service', 'hello'], 'at once'],
      [['token', 'list'], 'at once'],
      [['ca', 'show'], 'at once'],
    ];
    const ends: Record<string, { code: number | null | 'still running'; stackTrace: boolean }> = {};
    // Two at a time: the machine has two cores.
    for (let i = 0; i < commands.length; i += 2) {
      await Promise.all(
        commands.slice(i, i + 2).map(async ([args, when]) => {
          const r = await readerGoes(args, when);
          ends[args.slice(0, 2).join(' ')] = {
            code: r.code,
            stackTrace: /\n\s+at /.test(r.stderr) || r.stderr.includes('EPIPE'),
          };
        }),
      );
    }
    const clean = { code: 0, stackTrace: false };
    expect(ends).toEqual(
      Object.fromEntries(commands.map(([args]) => [args.slice(0, 2).join(' '), clean])),
    );
  }, 120_000);

  it('`tail | head -1`: tail ends with 0 at its next event', async () => {
    const p = spawnCli(['tail', '--server', server], env);
    started.push(p);
    let firstLine = '';
    p.child.stdout!.once('data', (c: Buffer) => {
      firstLine = c.toString().split('\n')[0]!;
      p.child.stdout!.destroy(); // head -1 has its line and goes
    });
    // Changes until tail has printed one and noticed, at a later one, that its reader is gone.
    const code = await waitFor(
      async () => {
        if (p.child.exitCode !== null || p.child.signalCode !== null) return p.exited;
        changeCatalog();
        return false;
      },
      { what: 'tail to end', timeoutMs: 20_000, intervalMs: 1000, details: p.output },
    );
    expect(firstLine).not.toBe('');
    expect({ code: await code, stderr: p.stderr() }).toEqual({ code: 0, stderr: '' });
  }, 30_000);

  it('register --ttl keeps its lease alive after its stdout reader goes; SIGTERM revokes it', async () => {
    const key = '/reader-gone/services/web/web-1';
    const p = spawnCli(
      [
        ...['register', '--service', 'web', '--id', 'web-1', '--address', '127.0.0.1'],
        ...['--port', '8080', '--ttl', '2', '--etcd', etcd!.endpoint],
        ...['--etcd-prefix', '/reader-gone/'],
      ],
      env,
    );
    started.push(p);
    p.child.stdout!.destroy(); // its "registered … keeping it alive" line has no reader
    await waitFor(async () => (await etcd!.client.get(key).string()) !== null, {
      what: `${key} in etcd`,
      details: p.output,
    });
    await sleep(3000); // past the 2 s TTL: only a live heartbeat keeps the key
    expect(p.child.exitCode, p.stderr()).toBe(null);
    expect(await etcd!.client.get(key).string()).not.toBe(null);
    p.child.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    expect(await etcd!.client.get(key).string()).toBe(null);
  }, 30_000);

  // The reader goes before the demo's first line, so that its first write fails. A reader that
  // goes after the demo wrote everything (all of it fits in the pipe) is noticed at the demo's
  // next line, which never comes: Node cannot poll a write-only pipe (src/cli/stdout-closed.ts).
  // Destroying after the first chunk made this test depend on how fast the runner read.
  it('`npm run demo | true`: the demo stops cleanly, its Envoys with it', async () => {
    const base = await freePortBase([0, 1, 2, 100, 101, 102, 10, 11, 12, 13, 14, 15]);
    const [xds, admin, app1, app2, side1, side2] = [10, 11, 12, 13, 14, 15].map((o) => base + o);
    const demoCatalog = join(dir, 'demo-catalog.yaml');
    writeFileSync(
      demoCatalog,
      `services:
  - name: hello
    instances: [{ id: hello-1, address: 127.0.0.1, port: ${app1}, sidecarPort: ${side1} }]
  - name: world
    instances: [{ id: world-1, address: 127.0.0.1, port: ${app2}, sidecarPort: ${side2} }]
`,
    );
    const demo = spawn(
      process.execPath,
      [
        ...['--import', 'tsx', 'src/demo/main.ts', '--catalog', demoCatalog],
        ...['--xds-port', String(xds), '--admin-port', String(admin)],
        ...['--envoy-port-base', String(base)],
      ],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    killWithTestProcess(demo, 'demo');
    demo.stdout.destroy();
    let stderr = '';
    demo.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise((resolve) => demo.once('exit', resolve));
    const code = await Promise.race([exited, sleep(60_000).then(() => 'still running')]);
    if (code === 'still running') {
      // Stopped as a user would (SIGTERM stops its Envoys too): a SIGKILL by the test's exit
      // hook would leave them running.
      demo.kill('SIGTERM');
      await Promise.race([exited, sleep(10_000)]);
    }
    expect({ code, stackTrace: /\n\s+at /.test(stderr) }, stderr).toEqual({
      code: 0,
      stackTrace: false,
    });
    // Its sidecars went with it: their admin ports answer no more.
    const envoyAdmin = await fetch(`http://127.0.0.1:${base}/ready`).catch(() => 'gone');
    expect(envoyAdmin).toBe('gone');
  }, 90_000);
});

describe('stdout that cannot be written', () => {
  it('a full disk (/dev/full): one line naming why, exit 1, no stack trace', async () => {
    const full = openSync('/dev/full', 'w');
    const p = spawn(
      process.execPath,
      ['--import', 'tsx', cliEntry, 'config', 'check', 'examples/traffic.yaml'],
      { cwd: repoRoot, stdio: ['ignore', full, 'pipe'] },
    );
    closeSync(full);
    killWithTestProcess(p, 'config check');
    let stderr = '';
    p.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise((resolve) => p.once('exit', resolve));
    expect({ code, stderr }).toEqual({
      code: 1,
      stderr: 'lucid-mesh config: cannot write to stdout (ENOSPC)\n',
    });
  });
});

describe('a slow reader', () => {
  it('`tail --count 2 --json | jq`: the last event arrives whole, not cut at the pipe buffer', async () => {
    const p = spawnCli(['tail', '--server', server, '--count', '2', '--json'], env);
    started.push(p);
    await waitFor(
      () => {
        if (p.stdout() !== '') return true;
        changeCatalog();
        return false;
      },
      { what: 'the first event', timeoutMs: 20_000, intervalMs: 1000, details: p.output },
    );
    p.child.stdout!.pause(); // the reader is busy: the pipe (64 KiB) fills
    const many = Array.from({ length: 1500 }, (_, i) => ({
      name: `bulk${i}`,
      instances: [{ id: `bulk${i}-1`, address: '127.0.0.1', port: 20000 + i }],
    }));
    const doc = readFileSync(catalog, 'utf8');
    const bigger = parse(doc) as { services: unknown[] };
    writeFileSync(catalog, stringify({ ...bigger, services: [...bigger.services, ...many] }));
    await sleep(2000); // tail has printed and met its count meanwhile
    p.child.stdout!.resume();
    const code = await Promise.race([p.exited, sleep(10_000).then(() => 'still running')]);
    writeFileSync(catalog, doc);
    const lines = p.stdout().trim().split('\n');
    expect(code).toBe(0);
    expect(lines).toHaveLength(2);
    expect(lines[1]!.length).toBeGreaterThan(100_000);
    expect(() => JSON.parse(lines[1]!)).not.toThrow();
  }, 40_000);
});

describe('stopped by a signal', () => {
  it('tail ends with 0 on SIGTERM and on SIGINT, as events and register --ttl do', async () => {
    const tails = [
      spawnCli(['tail', '--server', server], env),
      spawnCli(['tail', '--server', server], env),
    ];
    started.push(...tails);
    // Both following: each has printed an event.
    await waitFor(
      () => {
        if (tails.every((t) => t.stdout() !== '')) return true;
        changeCatalog();
        return false;
      },
      { what: 'both tails following', timeoutMs: 20_000, intervalMs: 1000 },
    );
    tails[0]!.child.kill('SIGTERM');
    tails[1]!.child.kill('SIGINT');
    const codes = await Promise.race([
      Promise.all(tails.map((t) => t.exited)),
      sleep(5000).then(() => 'still running'),
    ]);
    expect(codes).toEqual([0, 0]);
  }, 30_000);
});

describe('serve stopped while its shutdown hangs (a tracing collector that never answers)', () => {
  it('exits by --drain-seconds, and at once on a second signal', async () => {
    const hole = createServer((socket) => socket.resume()); // takes the spans, never answers
    await new Promise<void>((resolve) => hole.listen(0, '127.0.0.1', resolve));
    const collector = `127.0.0.1:${(hole.address() as AddressInfo).port}`;
    const serveStuck = async (drainSeconds: number) => {
      const [admin, xds] = await freePorts(2);
      const p = spawnCli(
        [
          ...plainServeArgs(catalog, { admin: admin!, xds: xds! }),
          ...['--drain-seconds', String(drainSeconds), '--tracing-otlp', collector],
        ],
        env,
      );
      started.push(p);
      await waitFor(() => p.stderr().includes('control plane started'), {
        what: 'serve started',
        timeoutMs: 30_000,
        details: p.output,
      });
      return p;
    };
    try {
      const [bounded, twice] = await Promise.all([serveStuck(1), serveStuck(30)]);
      // Codes, not times: unbounded, each would end 0 once tracing gives up (2 s).
      const ended = (p: CliProcess) =>
        Promise.race([p.exited, sleep(10_000).then(() => 'still running')]);
      bounded.child.kill('SIGTERM');
      twice.child.kill('SIGTERM');
      await sleep(300);
      twice.child.kill('SIGTERM'); // the operator presses Ctrl-C again
      expect({ bounded: await ended(bounded), twice: await ended(twice) }).toEqual({
        bounded: 1, // --drain-seconds 1 passed before the shutdown finished
        twice: 1,
      });
      expect(twice.stderr()).toContain('second signal: exiting without draining');
    } finally {
      hole.close();
    }
  }, 60_000);
});
