// The lucid-mesh CLI: its commands, run on process.argv (loaded by main.ts).
// Usage errors exit 2, runtime failures 1.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { packageRoot } from '../package-root.js';
import { installOutputClosedRule } from './stdout-closed.js';

// Each command's module is imported only when that command runs (or when the whole list is
// needed: no command, --help, help, an unknown name). A `serve` then never loads what only the
// other commands use (RabbitMQ's client for `events`, Consul registration, the route explainer,
// …): fewer modules parsed and kept in memory (bench --workload idle, issue 16).
const COMMANDS: Record<string, () => Promise<Command>> = {
  serve: async () => (await import('./serve-command.js')).serveCommand(),
  bootstrap: async () => (await import('./bootstrap-command.js')).bootstrapCommand(),
  status: async () => (await import('./status-command.js')).statusCommand(),
  snapshot: async () => (await import('./snapshot-command.js')).snapshotCommand(),
  tail: async () => (await import('./tail-command.js')).tailCommand(),
  events: async () => (await import('./events-command.js')).eventsCommand(),
  mesh: async () => (await import('./mesh-command.js')).meshCommand(),
  route: async () => (await import('./route-command.js')).routeCommand(),
  policy: async () => (await import('./policy-command.js')).policyCommand(),
  config: async () => (await import('./config-command.js')).configCommand(),
  register: async () => (await import('./register-command.js')).registerCommand(),
  deregister: async () => (await import('./register-command.js')).deregisterCommand(),
  ca: async () => (await import('./ca-command.js')).caCommand(),
  token: async () => (await import('./ca-command.js')).tokenCommand(),
};

const EXIT_USAGE = 2;

// The installed package's version: what an operator quotes in a bug report.
const { version } = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as {
  version: string;
};

const program = new Command('lucid-mesh')
  .description('An Envoy xDS control plane for sidecar meshes.')
  .version(version, '-V, --version', 'print the lucid-mesh version')
  .showHelpAfterError('(run with --help for usage)')
  .addHelpText(
    'after',
    '\nExit codes: 0 done (also when the reader of stdout went early: `lucid-mesh status | head -1`;\n' +
      'tail, events, register --ttl stopped by SIGINT/SIGTERM), 1 failed, 2 bad flag or value.\n' +
      'serve drains on SIGINT/SIGTERM: 0 within --drain-seconds, 1 past it or on a second signal.\n',
  );

const named = process.argv[2];
// Before anything prints: a reader that goes early ends a command quietly (stdout-closed.ts).
installOutputClosedRule(
  named !== undefined && Object.hasOwn(COMMANDS, named) ? `lucid-mesh ${named}` : 'lucid-mesh',
);
const wanted =
  named !== undefined && Object.hasOwn(COMMANDS, named) ? [named] : Object.keys(COMMANDS);
for (const name of wanted) program.addCommand(await COMMANDS[name]!());
for (const command of [program, ...program.commands]) command.exitOverride();

try {
  await program.parseAsync();
} catch (err) {
  if (!(err instanceof CommanderError)) throw err;
  // Commander has already printed the message; help and version are not errors.
  const benign = ['commander.helpDisplayed', 'commander.version'].includes(err.code);
  process.exit(benign ? 0 : err.exitCode === 0 ? 0 : EXIT_USAGE);
}
