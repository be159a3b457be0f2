// `lucid-mesh register` / `lucid-mesh deregister`: write or delete one instance in etcd, in the
// key layout the etcd source reads (docs/etcd.md), validated with the catalog's own schema
// before anything is written, so users need no hand-written etcdctl JSON.
//
// With --ttl the instance is attached to a lease that this process keeps alive for as long as
// it runs: a heartbeat a supervisor runs next to the app. SIGINT/SIGTERM revoke the lease (the
// instance disappears at once); if the process dies without that (SIGKILL, crash, host gone),
// etcd deletes the key when the TTL runs out. If the lease is lost while etcd is unreachable
// for longer than the TTL, the command registers again with a new lease once etcd is back.
//
// Exit codes: 0 ok; 2 invalid arguments (the message names the flag and the value);
// 1 etcd failed (unreachable, rejected the write, the id is taken by another service).
import { Command, InvalidArgumentError, Option } from 'commander';
import { withUsageErrors } from './usage.js';
import type { Etcd3, Lease } from 'etcd3';
import { HEALTH_STATES, PROTOCOLS, type Instance } from '../catalog/model.js';
import { MAX_TIMEOUT_MS, formatPath, instanceSchema, serviceSchema } from '../catalog/schema.js';
import { createEtcdClient, describeEtcdError } from '../sources/etcd/client.js';
import {
  decodeServiceSettings,
  encodeInstance,
  encodeServiceSettings,
  instanceKey,
  parseKey,
  serviceKey,
  serviceNameProblem,
  servicesPrefix,
  type ServiceSettings,
} from '../sources/etcd/layout.js';
import {
  EtcdFlagError,
  etcdCliOptions,
  etcdFlags,
  type EtcdFlags,
} from '../sources/etcd/options.js';
import { choiceOption, durationMsOption, portOption } from './options.js';
import { keepRunningWhenStdoutCloses } from './stdout-closed.js';
import { onStopSignal as onProcessStopSignal } from './stop-signals.js';

const EXIT_USAGE = 2;
const EXIT_FAILURE = 1;
/** etcd's own upper limit for a lease TTL. */
const MAX_TTL = 9_000_000_000;

/** Where the commands write and how they exit; tests replace these to run them in-process. */
export interface RegisterCommandIo {
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  /** Must not return (default process.exit). */
  exit?: (code: number) => never;
  /** Signals that end a --ttl heartbeat (default: SIGINT and SIGTERM on `process`). */
  onStopSignal?: (handler: (signal: string) => void) => void;
}

interface RegisterFlags {
  service: string;
  id: string;
  address: string;
  port: number;
  sidecarPort?: number;
  health: (typeof HEALTH_STATES)[number];
  tag: string[];
  meta: string[];
  protocol?: (typeof PROTOCOLS)[number];
  outboundPort?: number;
  localAppIdleTimeoutMs?: number;
  ttl?: number;
  [etcdFlag: string]: unknown;
}

interface DeregisterFlags {
  service: string;
  id: string;
  [etcdFlag: string]: unknown;
}

/** Thrown inside an action: printed as `<command>: <message>`, exit with `code`. */
class CommandProblem extends Error {
  override readonly name: string = 'CommandProblem';
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

const usage = (message: string) => new CommandProblem(message, EXIT_USAGE);
const failure = (message: string) => new CommandProblem(message, EXIT_FAILURE);

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function ttlOption(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1 || n > MAX_TTL) {
    throw new InvalidArgumentError(
      `--ttl: expected whole seconds 1-${MAX_TTL}, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

/** The flag each instance/service field comes from, for error messages. */
const FLAG_OF_FIELD: Record<string, string> = {
  id: '--id',
  address: '--address',
  port: '--port',
  sidecarPort: '--sidecar-port',
  health: '--health',
  tags: '--tag',
  meta: '--meta',
  name: '--service',
  protocol: '--protocol',
  outboundPort: '--outbound-port',
  localAppIdleTimeoutMs: '--local-app-idle-timeout-ms',
};

function flagProblem(path: readonly PropertyKey[], message: string): string {
  const field = String(path[0] ?? '');
  const flag = FLAG_OF_FIELD[field];
  if (!flag) return `${formatPath(path)}: ${message}`;
  return `${flag}: ${message}`;
}

function parseMeta(items: readonly string[]): Record<string, string> {
  const meta: Record<string, string> = {};
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw usage(`--meta: expected key=value, got ${JSON.stringify(item)}`);
    const key = item.slice(0, eq);
    if (key in meta) throw usage(`--meta: key ${JSON.stringify(key)} given twice`);
    meta[key] = item.slice(eq + 1);
  }
  return meta;
}

function checkEtcd(flags: Record<string, unknown>): EtcdFlags {
  try {
    return etcdFlags(flags);
  } catch (err) {
    if (err instanceof EtcdFlagError) throw usage(err.message);
    throw err;
  }
}

function checkService(service: string, id: string): void {
  const nameProblem = serviceNameProblem(service);
  if (nameProblem) throw usage(`--service: ${nameProblem}`);
  const idCheck = instanceSchema.shape.id.safeParse(id);
  if (!idCheck.success) throw usage(`--id: ${idCheck.error.issues[0]?.message ?? 'invalid'}`);
}

/** Validates every flag before etcd is contacted. */
function resolveRegistration(flags: RegisterFlags): {
  etcd: EtcdFlags;
  instance: Instance;
  settings?: ServiceSettings;
} {
  checkService(flags.service, flags.id);
  const etcd = checkEtcd(flags);
  const result = instanceSchema.safeParse({
    id: flags.id,
    address: flags.address,
    port: flags.port,
    ...(flags.sidecarPort !== undefined ? { sidecarPort: flags.sidecarPort } : {}),
    health: flags.health,
    tags: flags.tag,
    meta: parseMeta(flags.meta),
  });
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw usage(flagProblem(issue.path, issue.message));
  }
  let settings: ServiceSettings | undefined;
  if (
    flags.protocol !== undefined ||
    flags.outboundPort !== undefined ||
    flags.localAppIdleTimeoutMs !== undefined
  ) {
    const s = serviceSchema.safeParse({
      name: flags.service,
      protocol: flags.protocol ?? 'http',
      ...(flags.outboundPort !== undefined ? { outboundPort: flags.outboundPort } : {}),
      ...(flags.localAppIdleTimeoutMs !== undefined
        ? { localAppIdleTimeoutMs: flags.localAppIdleTimeoutMs }
        : {}),
      instances: [],
    });
    if (!s.success) {
      const issue = s.error.issues[0]!;
      throw usage(flagProblem(issue.path, issue.message));
    }
    const { protocol, outboundPort, localAppIdleTimeoutMs } = s.data;
    settings = {
      protocol,
      ...(outboundPort !== undefined ? { outboundPort } : {}),
      ...(localAppIdleTimeoutMs !== undefined ? { localAppIdleTimeoutMs } : {}),
    };
  }
  return { etcd, instance: result.data, ...(settings ? { settings } : {}) };
}

function etcdFailure(what: string, endpoints: readonly string[], err: unknown): CommandProblem {
  return failure(`${what}: etcd ${endpoints.join(',')}: ${describeEtcdError(err, endpoints)}`);
}

/** Where `id` is registered, in any service (a deregister given the wrong --service). */
async function registrationsOf(
  client: Etcd3,
  prefix: string,
  id: string,
): Promise<{ key: string; service: string }[]> {
  const keys = await client.getAll().prefix(servicesPrefix(prefix)).keys();
  return keys.flatMap((key) => {
    const parsed = parseKey(prefix, key);
    return parsed.kind === 'instance' && parsed.id === id ? [{ key, service: parsed.service }] : [];
  });
}

/** Refuses an id that another service already uses (the source would skip one of them). */
async function checkIdUnused(
  client: Etcd3,
  prefix: string,
  service: string,
  id: string,
): Promise<void> {
  const keys = await client.getAll().prefix(servicesPrefix(prefix)).keys();
  for (const key of keys) {
    const parsed = parseKey(prefix, key);
    if (parsed.kind === 'instance' && parsed.id === id && parsed.service !== service) {
      throw failure(
        `--id: instance id ${JSON.stringify(id)} is already registered in service ` +
          `"${parsed.service}" (${key}); ids are Envoy node ids and must be unique ` +
          `(deregister it there first)`,
      );
    }
  }
}

/**
 * Refuses a tcp outbound port that an older service's settings already claim: the source keeps
 * the older service and skips this one whole (state.ts), so its sidecars would get nothing.
 */
async function checkOutboundPortFree(
  client: Etcd3,
  prefix: string,
  service: string,
  port: number,
): Promise<void> {
  const { kvs } = await client.getAll().prefix(servicesPrefix(prefix)).exec();
  const ours = kvs.find((kv) => kv.key.toString() === serviceKey(prefix, service));
  const ourRevision = ours ? Number(ours.create_revision) : Infinity;
  for (const kv of kvs) {
    const key = kv.key.toString();
    const parsed = parseKey(prefix, key);
    if (parsed.kind !== 'service' || parsed.service === service) continue;
    const other = decodeServiceSettings(parsed.service, kv.value.toString());
    if (other.ok && other.value.outboundPort === port && Number(kv.create_revision) < ourRevision) {
      throw failure(
        `--outbound-port: ${port} is already the outbound port of tcp service ` +
          `"${parsed.service}" (${key}); serve would skip service "${service}" (choose another port)`,
      );
    }
  }
}

/** Writes the service settings if they differ from what is stored; returns a note for the user. */
async function writeSettings(
  client: Etcd3,
  prefix: string,
  service: string,
  settings: ServiceSettings,
): Promise<string | undefined> {
  const key = serviceKey(prefix, service);
  const value = encodeServiceSettings(settings);
  const current = await client.get(key).string();
  if (current === value) return undefined;
  if (settings.outboundPort !== undefined) {
    await checkOutboundPortFree(client, prefix, service, settings.outboundPort);
  }
  await client.put(key).value(value);
  return current === null
    ? `service ${service}: settings written to ${key}: ${value}`
    : `service ${service}: settings at ${key} changed from ${current} to ${value}`;
}

function makeCommand(name: string, io: RegisterCommandIo): Command {
  const stdout = io.stdout ?? ((s: string) => void process.stdout.write(s));
  const stderr = io.stderr ?? ((s: string) => void process.stderr.write(s));
  const exit = io.exit ?? ((code: number): never => process.exit(code));
  const prefix = `lucid-mesh ${name}`;
  const cmd = withUsageErrors(new Command(name), prefix, { stdout, stderr, exit });
  return cmd;
}

/** Runs an action body; a CommandProblem becomes one stderr line and its exit code. */
function runAction<A extends unknown[]>(
  name: string,
  io: RegisterCommandIo,
  body: (...args: A) => Promise<void>,
): (...args: A) => Promise<void> {
  const stderr = io.stderr ?? ((s: string) => void process.stderr.write(s));
  const exit = io.exit ?? ((code: number): never => process.exit(code));
  return async (...args: A) => {
    try {
      await body(...args);
    } catch (err) {
      if (err instanceof CommandProblem) {
        stderr(`lucid-mesh ${name}: ${err.message}\n`);
        exit(err.code);
        return;
      }
      throw err;
    }
  };
}

function addEtcdOptions(cmd: Command): Command {
  for (const option of etcdCliOptions()) cmd.addOption(option);
  return cmd;
}

export function registerCommand(io: RegisterCommandIo = {}): Command {
  const stdout = io.stdout ?? ((s: string) => void process.stdout.write(s));
  const stderr = io.stderr ?? ((s: string) => void process.stderr.write(s));
  const exit = io.exit ?? ((code: number): never => process.exit(code));
  const onStopSignal = io.onStopSignal ?? onProcessStopSignal;

  const cmd = makeCommand('register', io)
    .description(
      'Register a service instance in etcd (key <prefix>services/<service>/<id>, read by ' +
        '`lucid-mesh serve --source etcd`). Without --ttl: write it and exit. With --ttl: ' +
        'attach it to a lease and keep the lease alive until this process is stopped ' +
        '(SIGINT/SIGTERM remove the instance; if the process dies, etcd removes it after the TTL).',
    )
    .addOption(
      new Option('--service <name>', 'service name, a DNS label (required)').makeOptionMandatory(),
    )
    .addOption(
      new Option(
        '--id <id>',
        'instance id, unique across all services; also the Envoy node id of its sidecar (required)',
      ).makeOptionMandatory(),
    )
    .addOption(
      new Option(
        '--address <ip>',
        'IPv4 or IPv6 address of the instance (required)',
      ).makeOptionMandatory(),
    )
    .addOption(
      new Option('--port <port>', "the application's own port (required)")
        .argParser(portOption('--port'))
        .makeOptionMandatory(),
    )
    .addOption(
      new Option(
        '--sidecar-port <port>',
        "the sidecar's inbound port; peers connect there (omit for an instance without sidecar)",
      ).argParser(portOption('--sidecar-port')),
    )
    .addOption(
      new Option('--health <state>', `health: ${HEALTH_STATES.join(' | ')} (critical = no traffic)`)
        .default('passing')
        .argParser(choiceOption('--health', HEALTH_STATES)),
    )
    .addOption(new Option('--tag <tag>', 'a tag; repeat for more').argParser(collect).default([]))
    .addOption(
      new Option('--meta <key=value>', 'a metadata entry; repeat for more')
        .argParser(collect)
        .default([]),
    )
    .addOption(
      new Option(
        '--protocol <protocol>',
        `also write the service's settings (<prefix>services/<service>): ${PROTOCOLS.join(' | ')}; ` +
          'shared by all instances of the service, not removed with the instance',
      ).argParser(choiceOption('--protocol', PROTOCOLS)),
    )
    .addOption(
      new Option(
        '--outbound-port <port>',
        'tcp services only (with --protocol tcp): the local port every sidecar listens on for it',
      ).argParser(portOption('--outbound-port')),
    )
    .addOption(
      new Option(
        '--local-app-idle-timeout-ms <ms>',
        "also write the service's settings (with --protocol, default http): how long its " +
          "sidecars keep an idle connection to the app; below the app's keep-alive timeout " +
          '(default 4000; 0: never closed; docs/local-app.md)',
      ).argParser(durationMsOption('--local-app-idle-timeout-ms', MAX_TIMEOUT_MS)),
    )
    .addOption(
      new Option(
        '--ttl <seconds>',
        'attach the instance to a lease of this TTL and keep it alive while the command runs',
      ).argParser(ttlOption),
    );
  addEtcdOptions(cmd).addHelpText(
    'after',
    '\nExit codes: 0 ok (with --ttl: stopped by SIGINT/SIGTERM), 2 invalid arguments, 1 etcd failed.\n' +
      '\nExamples:\n' +
      '  lucid-mesh register --service web --id web-1 --address 10.0.0.5 --port 8080 --sidecar-port 15006\n' +
      '  lucid-mesh register --service api --id api-1 --address 10.0.0.6 --port 9090 \\\n' +
      '    --protocol grpc --tag v2 --meta zone=a --ttl 10 --etcd http://etcd:2379\n',
  );

  cmd.action(
    runAction('register', io, async (flags: RegisterFlags) => {
      const { etcd, instance, settings } = resolveRegistration(flags);
      // A heartbeat's job is the lease, not its output: a closed stdout does not end it.
      if (flags.ttl !== undefined) keepRunningWhenStdoutCloses();
      const { endpoints } = etcd.connection;
      const key = instanceKey(etcd.prefix, flags.service, instance.id);
      const value = encodeInstance(instance);
      const client = createEtcdClient(etcd.connection);
      const what = `${instance.id} (service ${flags.service})`;

      try {
        await checkIdUnused(client, etcd.prefix, flags.service, instance.id);
        if (settings) {
          const note = await writeSettings(client, etcd.prefix, flags.service, settings);
          if (note) stdout(`${note}\n`);
        }
      } catch (err) {
        client.close();
        if (err instanceof CommandProblem) throw err;
        throw etcdFailure(`cannot register ${what}`, endpoints, err);
      }

      if (flags.ttl === undefined) {
        try {
          await client.put(key).value(value);
        } catch (err) {
          throw etcdFailure(`cannot register ${what}`, endpoints, err);
        } finally {
          client.close();
        }
        stdout(`registered ${what} at ${key}\n`);
        return;
      }

      const heartbeat = new Heartbeat(client, key, value, flags.ttl, (line) =>
        stderr(`lucid-mesh register: ${line}\n`),
      );
      try {
        await heartbeat.start();
      } catch (err) {
        heartbeat.close();
        throw etcdFailure(`cannot register ${what}`, endpoints, err);
      }
      stdout(
        `registered ${what} at ${key} with a ${flags.ttl}s lease; keeping it alive until stopped\n`,
      );
      await new Promise<void>((resolve) => {
        onStopSignal((signal) => {
          void heartbeat.stop().then((revoked) => {
            stdout(
              revoked
                ? `${signal}: lease revoked, ${what} deregistered\n`
                : `${signal}: could not revoke the lease; ${what} disappears within ${flags.ttl}s\n`,
            );
            resolve();
          });
        });
      });
      exit(0);
    }),
  );
  return cmd;
}

/**
 * Keeps one key alive on a lease: grant + put, etcd3's keepalive (every TTL/3), and on a lost
 * lease (etcd unreachable for longer than the TTL, or the lease gone) a new grant + put, retried
 * with backoff until it works or the heartbeat is stopped.
 */
class Heartbeat {
  private lease: Lease | undefined;
  private stopped = false;
  private retrying = false;

  constructor(
    private readonly client: Etcd3,
    private readonly key: string,
    private readonly value: string,
    private readonly ttl: number,
    private readonly note: (line: string) => void,
  ) {}

  /** The first registration; rejects if it fails. */
  async start(): Promise<void> {
    await this.register();
  }

  private async register(): Promise<void> {
    const lease = this.client.lease(this.ttl, { autoKeepAlive: true });
    this.lease = lease;
    // A lease that never carried the key (its grant or put failed) is the caller's failure to
    // handle, not a loss to recover from.
    let live = false;
    lease.on('lost', (err) => {
      if (!live || this.stopped || this.lease !== lease) return;
      this.note(`lease lost (${this.lossReason(err)}); registering again`);
      void this.reregister();
    });
    try {
      await lease.put(this.key).value(this.value);
      live = true;
    } catch (err) {
      if (this.lease === lease) this.lease = undefined;
      lease.release();
      throw err;
    }
  }

  /**
   * Why the lease is gone. etcd3 reports both cases as EtcdLeaseInvalidError, whose message wraps
   * its own sentence in 'Lease … is expired or revoked' ('Lease We lost connection to etcd and
   * our lease has expired. is expired or revoked').
   */
  private lossReason(err: unknown): string {
    const message = err instanceof Error ? err.message : String(err);
    if (message.includes('lost connection to etcd')) {
      return `no answer from etcd for longer than the ${this.ttl}s TTL`;
    }
    if (/^Lease \S+ is expired or revoked$/.test(message)) {
      return 'etcd says it expired or was revoked';
    }
    return describeEtcdError(err);
  }

  private async reregister(): Promise<void> {
    if (this.retrying) return;
    this.retrying = true;
    let delay = 500;
    try {
      while (!this.stopped) {
        try {
          await this.register();
          this.note(`registered again at ${this.key}`);
          return;
        } catch (err) {
          this.note(`registering again failed (${describeEtcdError(err)}); retrying`);
          await new Promise((r) => setTimeout(r, delay));
          delay = Math.min(delay * 2, 5_000);
        }
      }
    } finally {
      this.retrying = false;
    }
  }

  /** Revokes the lease (the key goes with it). Resolves true if etcd confirmed the revoke. */
  async stop(): Promise<boolean> {
    this.stopped = true;
    const lease = this.lease;
    this.lease = undefined;
    let revoked = false;
    if (lease) {
      try {
        await lease.revoke();
        revoked = true;
      } catch {
        revoked = false;
      }
    }
    this.client.close();
    return revoked;
  }

  close(): void {
    this.stopped = true;
    this.lease?.release();
    this.client.close();
  }
}

export function deregisterCommand(io: RegisterCommandIo = {}): Command {
  const stdout = io.stdout ?? ((s: string) => void process.stdout.write(s));
  const cmd = makeCommand('deregister', io)
    .description(
      'Remove a service instance from etcd (deletes <prefix>services/<service>/<id>). An ' +
        'instance registered with --ttl is better removed by stopping its `register` process, ' +
        'which otherwise keeps its lease alive.',
    )
    .addOption(new Option('--service <name>', 'service name (required)').makeOptionMandatory())
    .addOption(new Option('--id <id>', 'instance id (required)').makeOptionMandatory());
  addEtcdOptions(cmd).addHelpText(
    'after',
    '\nExit codes: 0 ok (also when the instance was not registered), 2 invalid arguments, 1 etcd failed.\n' +
      '\nExample:\n  lucid-mesh deregister --service web --id web-1 --etcd http://etcd:2379\n',
  );
  cmd.action(
    runAction('deregister', io, async (flags: DeregisterFlags) => {
      checkService(flags.service, flags.id);
      const etcd = checkEtcd(flags);
      const key = instanceKey(etcd.prefix, flags.service, flags.id);
      const client = createEtcdClient(etcd.connection);
      let deleted: number;
      let elsewhere: { key: string; service: string }[] = [];
      try {
        const res = await client.delete().key(key);
        deleted = Number(res.deleted);
        if (deleted === 0) elsewhere = await registrationsOf(client, etcd.prefix, flags.id);
      } catch (err) {
        throw etcdFailure(
          `cannot deregister ${flags.id} (service ${flags.service})`,
          etcd.connection.endpoints,
          err,
        );
      } finally {
        client.close();
      }
      stdout(
        deleted > 0
          ? `deregistered ${flags.id} (service ${flags.service}): deleted ${key}\n`
          : `${flags.id} (service ${flags.service}) was not registered (no key ${key})` +
              (elsewhere[0]
                ? `; it is registered in service ${elsewhere[0].service} (${elsewhere[0].key}): ` +
                  `deregister it with --service ${elsewhere[0].service}`
                : '') +
              '\n',
      );
    }),
  );
  return cmd;
}
