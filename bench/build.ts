// The benchmark's processes (the control plane under test and the load workers) run compiled
// JavaScript, as `lucid-mesh serve` and the container do (dist/), not TypeScript through tsx:
// tsx's transform keeps function names by wrapping every closure it creates, which adds work to
// exactly the per-stream paths being measured. src/ and bench/ are compiled by tsc into
// bench/out/js/ (gitignored) whenever a source file is newer than the last build.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
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
    if (entry.name === 'out') continue; // bench/out: results and this build
    newest = Math.max(newest, newestMtime(join(path, entry.name)));
  }
  return newest;
}

/** Compiles src/ and bench/ when anything changed since the last build; returns whether it did. */
export function ensureBuilt(log: (line: string) => void): boolean {
  const newest = Math.max(...SOURCES.map(newestMtime));
  if (existsSync(STAMP) && statSync(STAMP).mtimeMs >= newest) return false;
  log('compiling src/ and bench/ (tsc -p tsconfig.bench.json → bench/out/js)');
  execFileSync(
    process.execPath,
    [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.bench.json'],
    { cwd: REPO_ROOT, stdio: ['ignore', 'inherit', 'inherit'] },
  );
  writeFileSync(STAMP, `${new Date().toISOString()}\n`);
  return true;
}
