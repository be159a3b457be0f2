// `lucid-mesh snapshot NODE`: the resources the control plane serves a node, as Envoy JSON or YAML.
import { Command, Option } from 'commander';
import { stringify } from 'yaml';
import type { SnapshotDump } from '../admin/snapshot-dump.js';
import { RESOURCE_KINDS } from '../protos/envoy.js';
import { adminConnection, getJson, runOperator, withOperatorOptions } from './admin-client.js';
import { choiceOption } from './options.js';

export function snapshotCommand(): Command {
  return withOperatorOptions(
    new Command('snapshot')
      .description('Print the resources served to NODE (private keys redacted).')
      .argument('<node>', 'Envoy node id'),
  )
    .addOption(
      new Option('--type <type>', `only one type: ${RESOURCE_KINDS.join(' | ')}`).argParser(
        choiceOption('--type', RESOURCE_KINDS),
      ),
    )
    .addOption(
      new Option(
        '--mode <mode>',
        'for a node that is not connected: preview it as bootstrapped with --mode sotw | delta ' +
          '(delta: outbound virtual hosts over VHDS); a connected node is shown as it is',
      )
        .default('sotw')
        .argParser(choiceOption('--mode', ['sotw', 'delta'] as const)),
    )
    .addOption(
      new Option('-o, --output <format>', 'json | yaml')
        .default('yaml')
        .argParser(choiceOption('--output', ['json', 'yaml'] as const)),
    )
    .action(
      async (
        node: string,
        flags: { type?: string; mode: 'sotw' | 'delta'; output: 'json' | 'yaml' },
        cmd: Command,
      ) =>
        runOperator('snapshot', async () => {
          const conn = adminConnection(cmd);
          const query = new URLSearchParams({
            node,
            ...(flags.type ? { type: flags.type } : {}),
            mode: flags.mode,
          });
          const dump = await getJson<SnapshotDump>(conn, `/v1/snapshot?${query}`);
          if (!dump.connected)
            process.stderr.write(
              `note: ${node} is not connected; showing what it would get with default settings ` +
                `(--mode ${flags.mode})\n`,
            );
          process.stdout.write(
            flags.output === 'json' ? `${JSON.stringify(dump, null, 2)}\n` : stringify(dump),
          );
        }),
    );
}
