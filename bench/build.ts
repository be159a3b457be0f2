// The benchmark's processes (the control plane under test and the load workers) run compiled
// JavaScript, as `lucid-mesh serve` and the container do (dist/), not TypeScript through tsx:
// tsx's transform keeps function names by wrapping every closure it creates, which adds work to
// exactly the per-stream paths being measured. src/ and bench/ are compiled by tsc into
// bench/out/js/ (gitignored) whenever a source file is newer than the last build.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './ipc.js';

export const BUILD_DIR = join(REPO_ROOT, 'bench', 'out', 'js');
const STAMP = join(BUILD_DIR, '.built');
const SOURCES = ['src', 'bench', 'tsconfig.json', 'tsconfig.bench.json'].map((p) =>
  join(REPO_ROOT, p),
);

function newestMtime(path: string): number {
  const stat = statSync(path);
  if (!stat.isDirectory()) return stat.mtimeMs;
  let newest = 0;
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    // bench/out: results and this build; RESULTS.md: what a run writes, not what it runs
    if (entry.name === 'out' || entry.name === 'RESULTS.md') continue;
    newest = Math.max(newest, newestMtime(join(path, entry.name)));
  }
  return newest;
}

/** Compiles src/ and bench/ when anything changed since the last build; returns whether it did. */
export function ensureBuilt(log: (line: string) => void): boolean {
  const newest = Math.max(...SOURCES.map(newestMtime));
  const fresh = () => existsSync(STAMP) && statSync(STAMP).mtimeMs >= newest;
  if (fresh()) return false;
  // Test files that run the bench may start at once (vitest runs two at a time): one compiles,
  // the others wait for it and then find the build fresh, instead of two tsc runs writing the
  // same files while a third process reads them.
  return withBuildLock(() => {
    if (fresh()) return false;
    log('compiling src/ and bench/ (tsc -p tsconfig.bench.json → bench/out/js)');
    execFileSync(
      process.execPath,
      [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.bench.json'],
      { cwd: REPO_ROOT, stdio: ['ignore', 'inherit', 'inherit'] },
    );
    writeFileSync(STAMP, `${new Date().toISOString()}\n`);
    return true;
  });
}

const LOCK = join(REPO_ROOT, 'bench', 'out', '.build-lock');
/** Longer than any build takes: a lock this old was left by a process that died mid-build. */
const STALE_LOCK_MS = 5 * 60_000;

function withBuildLock<T>(fn: () => T): T {
  mkdirSync(join(REPO_ROOT, 'bench', 'out'), { recursive: true });
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      mkdirSync(LOCK); // atomic: exactly one process creates it
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const held = statSync(LOCK, { throwIfNoEntry: false });
      if (!held) continue; // released between the two calls
      if (Date.now() - held.mtimeMs > STALE_LOCK_MS) rmSync(LOCK, { recursive: true, force: true });
      else Atomics.wait(sleeper, 0, 0, 200);
    }
  }
  try {
    return fn();
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}
