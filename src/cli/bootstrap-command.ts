// `lucid-mesh bootstrap`: prints (or atomically writes) the minimal Envoy bootstrap for a
// sidecar. Usage errors: one line `lucid-mesh bootstrap: <problem>` on stderr, exit code 2.
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import {
  BootstrapOptionError,
  DEFAULT_ADMIN_PORT,
  DEFAULT_MODE,
  DEFAULT_OUTBOUND_PORT,
  renderResolvedBootstrap,
  resolveBootstrapOptions,
} from '../bootstrap/render.js';

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
}

/** Writes `content` to `file` via a temp file in the same directory + rename. */
export function writeFileAtomic(file: string, content: string): void {
  const target = resolve(file);
  const tmp = join(
    dirname(target),
    `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`,
  );
  let fd: number | undefined;
  try {
    fd = openSync(tmp, 'wx', 0o644);
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
    .addOption(new Option('--node-id <id>', 'Envoy node id, unique per sidecar (required)'))
    .addOption(
      new Option(
        '--service <name>',
        'service this sidecar belongs to, a DNS label; becomes node.cluster and ' +
          'node.metadata.service (required)',
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
      new Option('--admin-port <port>', 'Envoy admin port, bound on 127.0.0.1').default(
        DEFAULT_ADMIN_PORT,
      ),
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
    .addHelpText(
      'after',
      '\nExit codes: 0 ok, 2 invalid arguments, 1 the output file could not be written.\n' +
        '\nExamples:\n' +
        '  lucid-mesh bootstrap --node-id web-1 --service web --xds 127.0.0.1:18000\n' +
        '  lucid-mesh bootstrap --node-id web-1 --service web --xds control-plane:18000 \\\n' +
        '    --mode delta -o /etc/envoy/bootstrap.yaml',
    )
    .showSuggestionAfterError(true)
    .allowExcessArguments(false)
    .configureOutput({
      writeOut: stdout,
      writeErr: stderr,
      // Commander's own errors ("error: unknown option '--x'") become our one-line format.
      outputError: (text, write) => write(`${PREFIX}: ${text.replace(/^error: /, '')}`),
    })
    .exitOverride((err: CommanderError) => {
      // --help / --version exit 0; every parse error is a usage error.
      exit(err.exitCode === 0 ? 0 : EXIT_USAGE);
      throw err; // not reached unless io.exit returns
    })
    .action((flags: RawFlags) => {
      let yaml: string;
      try {
        yaml = renderResolvedBootstrap(resolveBootstrapOptions(flags));
      } catch (err) {
        if (err instanceof BootstrapOptionError) return problem(err.message, EXIT_USAGE);
        throw err;
      }
      if (flags.output === undefined) {
        stdout(yaml);
        return;
      }
      try {
        writeFileAtomic(flags.output, yaml);
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
