// Where the installed package lives (package.json's directory), found by walking up from a
// module: the same answer from src/ (tsx, tests), dist/ (the CLI, the container) or any other
// compiled tree, so files shipped beside the code (gen/, sidecar-bootstrap/) are always found.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The directory holding package.json, found by walking up from `from` (a module URL). */
export function packageRoot(from: string = import.meta.url): string {
  let dir = dirname(fileURLToPath(from));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(from)}`);
    dir = parent;
  }
}
