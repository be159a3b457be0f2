// `lucid-mesh serve`: runs the control plane until SIGINT/SIGTERM.
import { Command, InvalidArgumentError, Option } from 'commander';
import { startControlPlane, type RunningControlPlane } from '../app.js';
import { DEFAULT_DEBOUNCE_MS, DEFAULT_MAX_DEBOUNCE_MS } from '../snapshot/store.js';
import { DEFAULT_MAX_EVENT_CLIENTS } from '../telemetry/events.js';
import { DEFAULT_XDS_LIMITS } from '../xds/limits.js';
import { SOURCE_KINDS, sourceCliOptions, type SourceKind } from '../sources/from-flags.js';
import type { DiscoverySource } from '../sources/source.js';
import type { TrafficProvider } from '../traffic/provider.js';
import { LOG_LEVELS, createLogger, type LogLevel } from '../telemetry/logger.js';
import { choiceOption, durationMsOption, eitherOption, portOption } from './options.js';
import { allowSettingsChange, haCliOptions, type HaFlags } from './ha-flags.js';
import { xdsTransportOption, type XdsTransportFlags } from './xds-transport-flag.js';
import { dnsCliOptions, dnsServerFromFlags, type DnsFlags } from './dns-flags.js';
import { keepRunningWhenStdoutCloses } from './stdout-closed.js';
import {
  TracingFlagError,
  tracingCliOptions,
  tracingFromFlags,
  type TracingFlags,
} from './tracing-flags.js';
import {
  EventsFlagError,
  eventStreamFromFlags,
  eventsCliOptions,
  type EventsFlags,
} from './events-flags.js';
import { clearTextWarnings } from './clear-text-warnings.js';
import { ReplicaSettingsError, ReplicaSettingsMonitor } from '../ca/state/replica-settings.js';
import { registerReplicaSettingsMetric } from '../telemetry/state-metrics.js';
import { replicaSettingsFromFlags } from './replica-settings.js';
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

interface ServeFlags
  extends
    Record<string, unknown>,
    SecurityFlags,
    TrafficFlags,
    HaFlags,
    EventsFlags,
    DnsFlags,
    TracingFlags,
    XdsTransportFlags {
  source: SourceKind;
  xdsPort: number;
  adminPort: number;
  host: string;
  logLevel: LogLevel;
  debounceMs: number;
  maxDebounceMs: number;
  maxStreams: number;
  streamRate: number;
  streamBurst: number;
  maxRequestBytes: number;
  requestRate: number;
  requestBurst: number;
  maxEventClients: number;
}

/** An integer flag in [min, max]; errors name the flag and the value. */
function countOption(flag: string, min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || n < min || n > max) {
      throw new InvalidArgumentError(
        `${flag}: expected an integer ${min}-${max}, got ${JSON.stringify(value)}`,
      );
    }
    return n;
  };
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
  for (const option of haCliOptions()) command.addOption(option);
  for (const option of dnsCliOptions()) command.addOption(option);
  for (const option of eventsCliOptions()) command.addOption(option);
  eitherOption(command, '--events-amqp', '--events-amqp-file');
  for (const option of tracingCliOptions()) command.addOption(option);
  return command
    .addOption(
      new Option('--xds-port <port>', 'gRPC port for ADS (xDS)')
        .env('XDS_PORT')
        .default(8081)
        .argParser(portOption('--xds-port', true)),
    )
    .addOption(xdsTransportOption())
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
      new Option(
        '--debounce-ms <ms>',
        'a change after this long without a push goes out at once; changes that follow wait until the sources have been quiet this long',
      )
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
    .addOption(
      new Option(
        '--max-streams <n>',
        'xDS streams this replica serves at once; past it RESOURCE_EXHAUSTED (the sidecar tries another replica); a stream without a valid token is refused first and holds none; 0: no limit',
      )
        .env('LUCID_MAX_STREAMS')
        .default(DEFAULT_XDS_LIMITS.maxStreams)
        .argParser(countOption('--max-streams', 0, 1_000_000)),
    )
    .addOption(
      new Option(
        '--stream-rate <n>',
        'new xDS streams per second, sustained (a token bucket; over it a stream waits up to 1 s, then RESOURCE_EXHAUSTED); a stream without a valid token is refused first and takes no turn; 0: no limit',
      )
        .env('LUCID_STREAM_RATE')
        .default(DEFAULT_XDS_LIMITS.streamRate)
        .argParser(countOption('--stream-rate', 0, 1_000_000)),
    )
    .addOption(
      new Option(
        '--stream-burst <n>',
        'new xDS streams accepted at once before --stream-rate applies',
      )
        .env('LUCID_STREAM_BURST')
        .default(DEFAULT_XDS_LIMITS.streamBurst)
        .argParser(countOption('--stream-burst', 1, 1_000_000)),
    )
    .addOption(
      new Option(
        '--max-request-bytes <n>',
        'largest xDS request accepted; a larger one ends its stream with RESOURCE_EXHAUSTED',
      )
        .env('LUCID_MAX_REQUEST_BYTES')
        .default(DEFAULT_XDS_LIMITS.maxRequestBytes)
        .argParser(countOption('--max-request-bytes', 1024, 1024 * 1024 * 1024)),
    )
    .addOption(
      new Option(
        '--request-rate <n>',
        'xDS requests per second one stream may send, sustained; faster, it is read more slowly (counted); 0: no limit',
      )
        .env('LUCID_REQUEST_RATE')
        .default(DEFAULT_XDS_LIMITS.requestRate)
        .argParser(countOption('--request-rate', 0, 1_000_000)),
    )
    .addOption(
      new Option(
        '--request-burst <n>',
        'xDS requests one stream may send at once before --request-rate applies',
      )
        .env('LUCID_REQUEST_BURST')
        .default(DEFAULT_XDS_LIMITS.requestBurst)
        .argParser(countOption('--request-burst', 1, 1_000_000)),
    )
    .addOption(
      new Option(
        '--max-event-clients <n>',
        'GET /v1/events clients at once (lucid-mesh tail); more get 503',
      )
        .env('LUCID_MAX_EVENT_CLIENTS')
        .default(DEFAULT_MAX_EVENT_CLIENTS)
        .argParser(countOption('--max-event-clients', 1, 100_000)),
    )
    .addHelpText(
      'after',
      '\nFlags win over environment variables. Examples:\n' +
        '  lucid-mesh serve --catalog examples/catalog.yaml\n' +
        '  lucid-mesh serve --catalog examples/catalog.yaml --mtls off --auth none   # development\n' +
        '  lucid-mesh serve --catalog examples/catalog.yaml --policy examples/policy.yaml\n' +
        '  lucid-mesh serve --catalog examples/catalog.yaml --traffic examples/traffic.yaml\n' +
        '  lucid-mesh serve --source etcd --etcd http://127.0.0.1:2379\n' +
        '  lucid-mesh serve --catalog examples/catalog.yaml --tracing-otlp 127.0.0.1:4317 --tracing-sample 10\n',
    )
    .action(async (flags: ServeFlags, cmd: Command) => {
      // A control plane serves sidecars: a closed stdout (`serve | head`) does not stop it.
      keepRunningWhenStdoutCloses();
      const usage = (message: string): never =>
        cmd.error(`lucid-mesh serve: ${message}`, { exitCode: 2 });
      if (flags.maxDebounceMs < flags.debounceMs) {
        usage(
          `--max-debounce-ms: must be at least --debounce-ms (${flags.debounceMs}), got ${flags.maxDebounceMs}`,
        );
      }
      let allowChange: boolean;
      try {
        allowChange = allowSettingsChange(flags);
      } catch (err) {
        return usage((err as Error).message);
      }
      let tracing: ReturnType<typeof tracingFromFlags>;
      try {
        tracing = tracingFromFlags(flags);
      } catch (err) {
        if (err instanceof TracingFlagError) return usage(err.message);
        throw err;
      }
      const logger = createLogger(flags.logLevel);
      // Signals are handled from here on, also while the control plane starts (the CA opened
      // or created, the first catalog read): a supervisor that stops a starting serve gets
      // exit 0, not Node's default death by the signal. Start-up writes its files atomically
      // (the CA's temp file renamed into place; a lock whose holder is gone is stale), so
      // nothing is left half-written.
      let running: RunningControlPlane | undefined;
      let replicaSettings: ReplicaSettingsMonitor | undefined;
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) {
          logger.warn({ signal }, 'second signal: exiting without draining');
          process.exit(1);
        }
        stopping = true;
        if (running === undefined) {
          logger.info({ signal }, 'stopped while starting: nothing to drain');
          process.exit(0);
        }
        const drainMs = flags.drainSeconds * 1000;
        logger.info({ signal, drainSeconds: flags.drainSeconds }, 'draining, then shutting down');
        // Exit within --drain-seconds whatever hangs; the streams get all but the last second.
        setTimeout(() => process.exit(1), drainMs).unref();
        const started = running;
        replicaSettings?.stop();
        started
          .drain(Math.max(drainMs - 1000, 500))
          .then(() => started.stop())
          .then(
            () => process.exit(0),
            () => process.exit(1),
          );
      };
      process.on('SIGINT', () => stop('SIGINT'));
      process.on('SIGTERM', () => stop('SIGTERM'));
      let source: DiscoverySource;
      let traffic: TrafficProvider | undefined;
      try {
        ({ source, traffic } = sourcesFromFlags(flags.source, flags, logger));
      } catch (err) {
        return usage((err as Error).message);
      }
      // Checked before the CA opens: a usage error should not touch the data directory.
      let eventStream: ReturnType<typeof eventStreamFromFlags>;
      try {
        eventStream = eventStreamFromFlags(flags);
      } catch (err) {
        if (err instanceof EventsFlagError) return usage(err.message);
        throw err;
      }
      let serveSecurity: Awaited<ReturnType<typeof securityFromFlags>>;
      try {
        serveSecurity = await securityFromFlags(flags, logger);
      } catch (err) {
        if (err instanceof SecurityFlagError) return usage(err.message);
        // E.g. the shared CA state store cannot be reached: one line, exit 1.
        logger.fatal({ error: (err as Error).message }, 'failed to start');
        process.stderr.write(`lucid-mesh serve: ${(err as Error).message}\n`);
        process.exit(1);
      }
      const { security, xdsTls } = serveSecurity;
      for (const warning of clearTextWarnings({ ...flags, security, xdsTls })) logger.warn(warning);
      const datacenterGiven = cmd.getOptionValueSource('datacenter') !== 'default';
      // Replicas sharing a store serve the same mesh settings (docs/ha.md), as they share one
      // trust domain: checked once the store is open, before anything listens.
      const shared = security?.ca.shared;
      if (shared) {
        try {
          replicaSettings = await ReplicaSettingsMonitor.join(
            shared.store,
            replicaSettingsFromFlags(flags, datacenterGiven, tracing),
            { allowChange, logger },
          );
        } catch (err) {
          // Its leadership claim and live keys go with it, not after their TTL.
          await security.ca.close().catch(() => undefined);
          if (err instanceof ReplicaSettingsError) return usage(err.message);
          logger.fatal({ error: (err as Error).message }, 'failed to start');
          process.stderr.write(`lucid-mesh serve: ${(err as Error).message}\n`);
          process.exit(1);
        }
      }
      try {
        running = await startControlPlane({
          source,
          traffic,
          mesh: {
            ...meshSettingsFromFlags(flags, datacenterGiven),
            domainSuffix: flags.dnsDomain,
            ...(tracing ? { tracing } : {}),
          },
          security,
          xdsTls,
          xdsTransport: flags.xdsTransport,
          logger,
          host: flags.host,
          xdsPort: flags.xdsPort,
          adminPort: flags.adminPort,
          debounceMs: flags.debounceMs,
          maxDebounceMs: flags.maxDebounceMs,
          xdsLimits: {
            maxStreams: flags.maxStreams,
            streamRate: flags.streamRate,
            streamBurst: flags.streamBurst,
            maxRequestBytes: flags.maxRequestBytes,
            requestRate: flags.requestRate,
            requestBurst: flags.requestBurst,
            maxStreamAgeMs: flags.maxStreamAge,
          },
          maxEventClients: flags.maxEventClients,
          ...(flags.dnsPort !== undefined ? { dns: dnsServerFromFlags(flags) } : {}),
          eventStream,
          ...(tracing ? { controlPlaneTracing: tracing } : {}),
        });
        if (replicaSettings)
          registerReplicaSettingsMetric(running.metrics.registry, replicaSettings);
      } catch (err) {
        logger.fatal({ error: (err as Error).message }, 'failed to start');
        process.stderr.write(`lucid-mesh serve: ${(err as Error).message}\n`);
        process.exit(1);
      }
    });
}
