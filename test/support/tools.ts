// Paths of the real components tests run against, installed (pinned, cached outside the
// repo) by scripts/install-tools.sh. A cache hit costs one process start.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const installScript = fileURLToPath(new URL('../../scripts/install-tools.sh', import.meta.url));
const cache = new Map<string, string>();

export type Tool =
  | 'envoy'
  | 'consul'
  | 'etcd'
  | 'chromium'
  | 'promtool'
  | 'rabbitmq'
  | 'dig'
  | 'jaeger'
  | 'prometheus';

export function toolPath(tool: Tool): string {
  let path = cache.get(tool);
  if (!path) {
    path = execFileSync('bash', [installScript, tool], { encoding: 'utf8' }).trim();
    cache.set(tool, path);
  }
  return path;
}

export const envoyPath = (): string => toolPath('envoy');

/** Runs the CLI from source (no build needed), returning exit code and output. */
export const cliEntry = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
