// `lucid-mesh serve`: runs the control plane until SIGINT/SIGTERM.
import { existsSync } from 'node:fs';
import { Command, Option } from 'commander';
import { startControlPlane } from '../app.js';
import { DEFAULT_DEBOUNCE_MS, DEFAULT_MAX_DEBOUNCE_MS } from '../snapshot/store.js';
import { FileSource } from '../sources/file-source.js';
import { LOG_LEVELS, createLogger, type LogLevel } from '../telemetry/logger.js';
import { choiceOption, durationMsOption, portOption } from './options.js';

interface ServeFlags {
  catalog?: string;
  xdsPort: number;
  adminPort: number;
  host: string;
  logLevel: LogLevel;
  debounceMs: number;
  maxDebounceMs: number;
}

export function serveCommand(): Command {
  return new Command('serve')
    .description(
      'Run the control plane: watch the catalog, serve ADS (SotW + delta) to Envoy sidecars.',
    )
    .addOption(
      new Option('--catalog <file>', 'catalog file (YAML or JSON), watched: edits apply live').env(
        'LUCID_CATALOG',
      ),
    )
    .addOption(
      new Option('--xds-port <port>', 'gRPC port for ADS (xDS)')
        .env('XDS_PORT')
        .default(8081)
        .argParser(portOption('--xds-port', true)),
    )
    .addOption(
      new Option('--admin-port <port>', 'HTTP port for /health, /ready, /metrics')
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
      new Option('--debounce-ms <ms>', 'quiet time after a catalog change before pushing')
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
      '\nFlags win over environment variables. Example:\n  lucid-mesh serve --catalog examples/catalog.yaml --xds-port 8081 --admin-port 8080\n',
    )
    .action(async (flags: ServeFlags, cmd: Command) => {
      if (!flags.catalog)
        cmd.error('lucid-mesh serve: --catalog: required (or set LUCID_CATALOG)', { exitCode: 2 });
      if (!existsSync(flags.catalog!)) {
        cmd.error(`lucid-mesh serve: --catalog: no such file ${JSON.stringify(flags.catalog)}`, {
          exitCode: 2,
        });
      }
      if (flags.maxDebounceMs < flags.debounceMs) {
        cmd.error(
          `lucid-mesh serve: --max-debounce-ms: must be at least --debounce-ms (${flags.debounceMs}), got ${flags.maxDebounceMs}`,
          { exitCode: 2 },
        );
      }
      const logger = createLogger(flags.logLevel);
      let running;
      try {
        running = await startControlPlane({
          source: new FileSource(flags.catalog!, logger),
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
