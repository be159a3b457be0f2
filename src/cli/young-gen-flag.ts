// `serve --young-gen-mib`: how large V8's young generation may grow once proxies are served
// (src/young-generation-cap.ts; docs/benchmarks.md, "10,000 proxies (W9)").
import { InvalidArgumentError, Option } from 'commander';
import { DEFAULT_YOUNG_GEN_MIB, parseYoungGenMib } from '../young-generation-cap.js';

export interface YoungGenFlags {
  /** Bytes of new space; 0 for `off` (V8's own growth). */
  youngGenMib: number;
}

export function youngGenOption(): Option {
  return new Option(
    '--young-gen-mib <mib>',
    `MiB V8's young generation may grow to while serving (2-1024, or off: V8's own 32); it keeps what it grew to, ~3 KB of RSS per proxy at 10,000`,
  )
    .env('LUCID_YOUNG_GEN_MIB')
    .default(DEFAULT_YOUNG_GEN_MIB * 2 ** 20, String(DEFAULT_YOUNG_GEN_MIB))
    .argParser((raw: string) => {
      try {
        return parseYoungGenMib(raw, '--young-gen-mib') ?? 0;
      } catch (err) {
        throw new InvalidArgumentError((err as Error).message);
      }
    });
}
