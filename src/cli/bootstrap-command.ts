// `lucid-mesh bootstrap`: prints (or atomically writes) the minimal Envoy bootstrap for a
// sidecar. Usage errors: one line `lucid-mesh bootstrap: <problem>` on stderr, exit code 2.
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  fsyncSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { withUsageErrors } from './usage.js';
import {
  BootstrapOptionError,
  DEFAULT_ADMIN_PORT,
  DEFAULT_MODE,
  DEFAULT_OUTBOUND_PORT,
  renderResolvedBootstrap,
  resolveBootstrapOptions,
} from '../bootstrap/render.js';
import { ConsulClient, ConsulRequestError } from '../sources/consul/client.js';
import {
  ConsulFlagError,
  consulConnectionCliOptions,
  consulConnectionFromFlags,
} from '../sources/consul/options.js';
import { lookupConsulProxy } from '../sources/consul/proxy-registration.js';

const PREFIX = 'lucid-mesh bootstrap';
export const EXIT_USAGE = 2;
export const EXIT_FAILURE = 1;

/** Where the command writes and how it exits; tests replace these to run it in-process. */
export interface BootstrapCommandIo {
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  /** Must not return (default process.exit). Called with 0 after --help. */
  exit?: (code: number) => never;
}

interface RawFlags {
  nodeId?: string;
  service?: string;
  xds?: string;
  mode?: string;
  adminPort?: string | number;
  outboundPort?: string | number;
  output?: string;
  token?: string;
  tokenFile?: string;
  xdsCa?: string;
  consulServiceId?: string;
  [consulFlag: string]: unknown;
}

/** Writes `content` to `file` via a temp file in the same directory + rename. */
export function writeFileAtomic(file: string, content: string, mode = 0o644): void {
  const target = resolve(file);
  const tmp = join(
    dirname(target),
    `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`,
  );
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx', mode);
    writeSync(fd, content);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, target);
  } catch (err) {
    if (fd !== undefined) closeSync(fd);
    rmSync(tmp, { force: true });
    throw err;
  }
}

export function bootstrapCommand(io: BootstrapCommandIo = {}): Command {
  const stdout = io.stdout ?? ((s: string) => void process.stdout.write(s));
  const stderr = io.stderr ?? ((s: string) => void process.stderr.write(s));
  const exit = io.exit ?? ((code: number): never => process.exit(code));
  const problem = (message: string, code: number): never => {
    stderr(`${PREFIX}: ${message}\n`);
    return exit(code);
  };

  const cmd = new Command('bootstrap')
    .description(
      'Print the minimal static Envoy bootstrap for a sidecar: node identity, a local admin ' +
        'endpoint and the ADS connection to the control plane. Listeners, routes and clusters ' +
        'then arrive over xDS. Check the result with `envoy --mode validate -c FILE`.',
    )
    .addOption(
      new Option(
        '--node-id <id>',
        'Envoy node id, unique per sidecar (required, unless --consul-service-id gives it)',
      ),
    )
    .addOption(
      new Option(
        '--service <name>',
        'service this sidecar belongs to, a DNS label; becomes node.cluster and ' +
          'node.metadata.service (required, unless --consul-service-id gives it)',
      ),
    )
    .addOption(
      new Option(
        '--xds <host:port>',
        'control plane ADS address; an IP literal gives a STATIC cluster, a hostname a ' +
          'STRICT_DNS one (IPv4 preferred); IPv6 literals as [addr]:port (required)',
      ),
    )
    .addOption(
      new Option(
        '--mode <mode>',
        'ADS flavour: sotw (state of the world, api_type GRPC) or delta (incremental, ' +
          'DELTA_GRPC)',
      ).default(DEFAULT_MODE),
    )
    .addOption(
      new Option('--admin-port <port>', 'Envoy admin port, bound on 127.0.0.1')
        .env('ENVOY_ADMIN_PORT')
        .default(DEFAULT_ADMIN_PORT),
    )
    .addOption(
      new Option(
        '--outbound-port <port>',
        'port of the outbound listener the control plane will send (node.metadata.outbound_port)',
      ).default(DEFAULT_OUTBOUND_PORT),
    )
    .addOption(
      new Option(
        '-o, --output <file>',
        'write the bootstrap to FILE atomically (temp file + rename) instead of stdout',
      ),
    )
    .addOption(
      new Option(
        '--token <token>',
        'proxy token from `lucid-mesh token issue`, sent as ADS metadata (needed unless the ' +
          'control plane runs with --auth none); the file is then written 0600',
      ).env('LUCID_TOKEN'),
    )
    .addOption(
      new Option('--token-file <file>', 'read the proxy token from FILE instead').env(
        'LUCID_TOKEN_FILE',
      ),
    )
    .addOption(
      new Option(
        '--xds-ca <file>',
        "PEM CA the control plane's TLS certificate chains to: ADS over TLS (serve --xds-tls-cert)",
      ),
    )
    .addOption(
      new Option(
        '--consul-service-id <id>',
        'take node id, service and ports from this Consul sidecar registration (Kind ' +
          'connect-proxy, e.g. web-1-sidecar-proxy; an app service id with a sidecar works too), ' +
          'read from the local Consul agent as `consul connect envoy` does; flags given ' +
          'explicitly win',
      ),
    );
  for (const option of consulConnectionCliOptions()) cmd.addOption(option);
  withUsageErrors(cmd, PREFIX, { stdout, stderr, exit })
    .addHelpText(
      'after',
      '\nExit codes: 0 ok, 2 invalid arguments, 1 the output file could not be written or the ' +
        'Consul lookup failed.\n' +
        '\nExamples:\n' +
        '  lucid-mesh bootstrap --node-id web-1 --service web --xds 127.0.0.1:18000\n' +
        '  lucid-mesh bootstrap --node-id web-1 --service web --xds control-plane:18000 \\\n' +
        '    --mode delta -o /etc/envoy/bootstrap.yaml\n' +
        '  lucid-mesh bootstrap --consul-service-id web-1-sidecar-proxy --xds 127.0.0.1:18000 \\\n' +
        '    --consul 127.0.0.1:8500',
    )
    .action(async (flags: RawFlags, command: Command) => {
      // Set on the command line or by env, not a commander default.
      const explicit = (key: string): boolean =>
        flags[key] !== undefined && command.getOptionValueSource(key) !== 'default';
      let input: RawFlags & { token?: string; xdsCaPem?: string } = flags;
      let from: string | undefined;
      if (flags.token !== undefined && flags.tokenFile !== undefined) {
        return problem('--token-file: give --token or --token-file, not both', EXIT_USAGE);
      }
      const readFlagFile = (flag: string, file: string): string | undefined => {
        try {
          return readFileSync(file, 'utf8');
        } catch (err) {
          problem(
            `${flag}: cannot read ${JSON.stringify(file)}: ${(err as Error).message}`,
            EXIT_USAGE,
          );
          return undefined;
        }
      };
      const token =
        flags.tokenFile !== undefined
          ? readFlagFile('--token-file', flags.tokenFile)?.trim()
          : flags.token;
      const xdsCaPem =
        flags.xdsCa !== undefined ? readFlagFile('--xds-ca', flags.xdsCa) : undefined;
      input = { ...flags, token, xdsCaPem };
      if (flags.consulServiceId !== undefined) {
        const looked = await fromConsul(flags, explicit);
        if ('usage' in looked) return problem(looked.usage, EXIT_USAGE);
        if ('failure' in looked) return problem(looked.failure, EXIT_FAILURE);
        input = { ...looked.input, token, xdsCaPem };
        from = looked.from;
      }
      let yaml: string;
      try {
        yaml = renderResolvedBootstrap(resolveBootstrapOptions(input));
      } catch (err) {
        if (err instanceof BootstrapOptionError) {
          const explicit = flags[flagKey(err.flag)] !== undefined;
          return problem(
            from && !explicit
              ? `${err.message} (from the Consul registration ${from})`
              : err.message,
            EXIT_USAGE,
          );
        }
        throw err;
      }
      if (flags.output === undefined) {
        stdout(yaml);
        return;
      }
      try {
        // A bootstrap with a token is a credential: readable by its owner only.
        writeFileAtomic(flags.output, yaml, token ? 0o600 : 0o644);
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        // "ENOENT: no such file or directory, open '<temp>'" -> "no such file or directory (ENOENT)"
        const reason = e.code
          ? `${e.message.replace(/^\w+: /, '').replace(/, \w+ '.*'$/, '')} (${e.code})`
          : String(err);
        return problem(`-o: cannot write ${JSON.stringify(flags.output)}: ${reason}`, EXIT_FAILURE);
      }
    });
  return cmd;
}

/** "--node-id" -> "nodeId" (commander's attribute name). */
function flagKey(flag: string): string {
  return flag.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
}

/**
 * Reads the sidecar registration from Consul and fills node id, service and ports; flags given
 * on the command line win.
 */
async function fromConsul(
  flags: RawFlags,
  explicit: (key: string) => boolean,
): Promise<{ input: RawFlags; from: string } | { usage: string } | { failure: string }> {
  let client: ConsulClient;
  try {
    client = new ConsulClient(consulConnectionFromFlags(flags), { maxConnections: 2 });
  } catch (err) {
    if (err instanceof ConsulFlagError) return { usage: err.message };
    throw err;
  }
  try {
    const proxy = await lookupConsulProxy(client, String(flags.consulServiceId));
    if ('problem' in proxy) return { failure: `--consul-service-id: ${proxy.problem}` };
    return {
      from: JSON.stringify(proxy.id),
      input: {
        ...flags,
        nodeId: explicit('nodeId') ? flags.nodeId : proxy.id,
        service: explicit('service') ? flags.service : proxy.service,
        adminPort: explicit('adminPort') ? flags.adminPort : (proxy.adminPort ?? flags.adminPort),
        outboundPort: explicit('outboundPort')
          ? flags.outboundPort
          : (proxy.outboundPort ?? flags.outboundPort),
      },
    };
  } catch (err) {
    if (err instanceof ConsulRequestError)
      return { failure: `--consul-service-id: ${err.message}` };
    throw err;
  } finally {
    client.destroy();
  }
}
