// Runs once before the suite: makes sure the generated proto descriptor exists.
import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

export default function setup(): void {
  if (!existsSync(new URL('../../gen/envoy-protos.json', import.meta.url))) {
    execFileSync(process.execPath, ['scripts/gen-protos.mjs'], { stdio: 'inherit' });
  }
}
