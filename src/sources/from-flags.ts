// Which discovery source `lucid-mesh serve` runs, chosen by --source (env DISCOVERY_BACKEND,
// as in the seeds), with each source's own flags.
import { existsSync } from 'node:fs';
import { Option } from 'commander';
import type { Logger } from '../telemetry/logger.js';
import { consulSourceFromFlags } from './consul/consul-source.js';
import { consulCliOptions } from './consul/options.js';
import { etcdCliOptions, etcdSourceFromFlags } from './etcd/options.js';
import { FileSource } from './file-source.js';
import type { DiscoverySource } from './source.js';

export const SOURCE_KINDS = ['file', 'consul', 'etcd'] as const;
export type SourceKind = (typeof SOURCE_KINDS)[number];

/** A flag problem; the message names the flag and the value. */
export class SourceFlagError extends Error {}

export function sourceCliOptions(): Option[] {
  return [
    new Option(
      '--catalog <file>',
      '(file source) catalog file, YAML or JSON; watched, edits apply live',
    ).env('LUCID_CATALOG'),
    ...consulCliOptions(),
    ...etcdCliOptions(),
  ];
}

export function sourceFromFlags(
  kind: SourceKind,
  flags: Record<string, unknown>,
  logger: Logger,
): DiscoverySource {
  switch (kind) {
    case 'file': {
      const catalog = flags.catalog as string | undefined;
      if (!catalog)
        throw new SourceFlagError('--catalog: required with --source file (or set LUCID_CATALOG)');
      if (!existsSync(catalog))
        throw new SourceFlagError(`--catalog: no such file ${JSON.stringify(catalog)}`);
      return new FileSource(catalog, logger);
    }
    case 'consul':
      return consulSourceFromFlags(flags, logger);
    case 'etcd':
      return etcdSourceFromFlags(flags, logger);
  }
}
