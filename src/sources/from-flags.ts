// Which discovery source `lucid-mesh serve` runs, chosen by --source (env DISCOVERY_BACKEND,
// as in the seeds), with each source's own flags.
import { existsSync, statSync } from 'node:fs';
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
export class SourceFlagError extends Error {
  override readonly name: string = 'SourceFlagError';
}

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
      const folder = directoryProblem('--catalog', catalog);
      if (folder) throw new SourceFlagError(folder);
      return new FileSource(catalog, logger);
    }
    case 'consul':
      return consulSourceFromFlags(flags, logger);
    case 'etcd':
      return etcdSourceFromFlags(flags, logger);
  }
}

/**
 * A watched file flag naming a directory (a mounted ConfigMap's folder rather than the file in
 * it): the file would never load and serve would wait, not ready, for ever. The one-line usage
 * error instead; undefined when `path` is not a directory (absent files are judged elsewhere).
 */
export function directoryProblem(flag: string, path: string): string | undefined {
  let isDirectory = false;
  try {
    isDirectory = statSync(path).isDirectory();
  } catch {
    return undefined;
  }
  return isDirectory
    ? `${flag}: expected a file, got the directory ${JSON.stringify(path)}`
    : undefined;
}
