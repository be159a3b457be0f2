// `lucid-mesh serve`: runs the control plane until SIGINT/SIGTERM.
import { Command, Option } from 'commander';
import { startControlPlane, type RunningControlPlane } from '../app.js';
import { DEFAULT_DEBOUNCE_MS, DEFAULT_MAX_DEBOUNCE_MS } from '../snapshot/store.js';
import { SOURCE_KINDS, sourceCliOptions, type SourceKind } from '../sources/from-flags.js';
import type { DiscoverySource } from '../sources/source.js';
import type { TrafficProvider } from '../traffic/provider.js';
import { LOG_LEVELS, createLogger, type LogLevel } from '../telemetry/logger.js';
import { choiceOption, durationMsOption, portOption } from './options.js';
import {
  SecurityFlagError,
  securityCliOptions,
  securityFromFlags,
  type SecurityFlags,
} from './security-flags.js';
import {
  meshSettingsFromFlags,
  sourcesFromFlags,
  trafficCliOptions,
  type TrafficFlags,
} from './traffic-flags.js';

interface ServeFlags extends Record<string, unknown>, SecurityFlags, TrafficFlags {
  source: SourceKind;
  xdsPort: number;
  adminPort: number;
  host: string;
  logLevel: LogLevel;
  debounceMs: number;
  maxDebounceMs: number;
}

export function serveCommand(): Command {
  const command = new Command('serve')
    .description(
      'Run the control plane: watch the discovery source, serve ADS (SotW + delta) to Envoy sidecars.',
    )
    .addOption(
      new Option('--source <kind>', `discovery source: ${SOURCE_KINDS.join(' | ')}`)
        .env('DISCOVERY_BACKEND')
        .default('file')
        .argParser(choiceOption('--source', SOURCE_KINDS)),
    );
  for (const option of sourceCliOptions()) command.addOption(option);
  for (const option of trafficCliOptions()) command.addOption(option);
  for (const option of securityCliOptions()) command.addOption(option);
  return command
    .addOption(
      new Option('--xds-port <port>', 'gRPC port for ADS (xDS)')
        .env('XDS_PORT')
        .default(8081)
        .argParser(portOption('--xds-port', true)),
    )
    .addOption(
      new Option('--admin-port <port>', 'HTTP port for /health, /ready, /metrics, /v1/*')
        .env('ADMIN_PORT')
        .default(8080)
        .argParser(portOption('--admin-port', true)),
    )
    .addOption(
      new Option('--host <address>', 'address both servers bind to')
        .env('LUCID_HOST')
        .default('0.0.0.0'),
    )
    .addOption(
      new Option('--log-level <level>', 'log level')
        .env('LOG_LEVEL')
        .default('info')
        .argParser(choiceOption('--log-level', LOG_LEVELS)),
    )
    .addOption(
      new Option('--debounce-ms <ms>', 'quiet time after a source change before pushing')
        .env('LUCID_DEBOUNCE_MS')
        .default(DEFAULT_DEBOUNCE_MS)
        .argParser(durationMsOption('--debounce-ms', 60_000)),
    )
    .addOption(
      new Option('--max-debounce-ms <ms>', 'longest a change may wait while changes keep coming')
        .env('LUCID_MAX_DEBOUNCE_MS')
        .default(DEFAULT_MAX_DEBOUNCE_MS)
        .argParser(durationMsOption('--max-debounce-ms', 600_000)),
    )
    .addHelpText(
      'after',
      '\nFlags win over environment variables. Examples:\n' +
        '  lucid-mesh serve --catalog examples/catalog.yaml\n' +
        '  lucid-mesh serve --catalog examples/catalog.yaml --mtls off --auth none   # development\n' +
        '  lucid-mesh serve --catalog examples/catalog.yaml --policy examples/policy.yaml\n' +
        '  lucid-mesh serve --catalog examples/catalog.yaml --traffic examples/traffic.yaml\n' +
        '  lucid-mesh serve --source etcd --etcd http://127.0.0.1:2379\n',
    )
    .action(async (flags: ServeFlags, cmd: Command) => {
      const usage = (message: string): never =>
        cmd.error(`lucid-mesh serve: ${message}`, { exitCode: 2 });
      if (flags.maxDebounceMs < flags.debounceMs) {
        usage(
          `--max-debounce-ms: must be at least --debounce-ms (${flags.debounceMs}), got ${flags.maxDebounceMs}`,
        );
      }
      const logger = createLogger(flags.logLevel);
      let source: DiscoverySource;
      let traffic: TrafficProvider | undefined;
      try {
        ({ source, traffic } = sourcesFromFlags(flags.source, flags, logger));
      } catch (err) {
        return usage((err as Error).message);
      }
      let serveSecurity: Awaited<ReturnType<typeof securityFromFlags>>;
      try {
        serveSecurity = await securityFromFlags(flags, logger);
      } catch (err) {
        if (err instanceof SecurityFlagError) return usage(err.message);
        throw err;
      }
      const { security, xdsCredentials } = serveSecurity;
      let running: RunningControlPlane;
      try {
        running = await startControlPlane({
          source,
          traffic,
          mesh: meshSettingsFromFlags(flags, cmd.getOptionValueSource('datacenter') !== 'default'),
          security,
          xdsCredentials,
          logger,
          host: flags.host,
          xdsPort: flags.xdsPort,
          adminPort: flags.adminPort,
          debounceMs: flags.debounceMs,
          maxDebounceMs: flags.maxDebounceMs,
        });
      } catch (err) {
        logger.fatal({ error: (err as Error).message }, 'failed to start');
        process.stderr.write(`lucid-mesh serve: ${(err as Error).message}\n`);
        process.exit(1);
      }
      const stop = (signal: string) => {
        logger.info({ signal }, 'shutting down');
        running.stop().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      };
      process.once('SIGINT', () => stop('SIGINT'));
      process.once('SIGTERM', () => stop('SIGTERM'));
    });
}
