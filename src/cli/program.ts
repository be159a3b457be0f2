// The lucid-mesh CLI: its commands, run on process.argv (loaded by main.ts).
// Usage errors exit 2, runtime failures 1.
import { Command, CommanderError } from 'commander';
import { bootstrapCommand } from './bootstrap-command.js';
import { caCommand, tokenCommand } from './ca-command.js';
import { configCommand } from './config-command.js';
import { eventsCommand } from './events-command.js';
import { meshCommand } from './mesh-command.js';
import { policyCommand } from './policy-command.js';
import { deregisterCommand, registerCommand } from './register-command.js';
import { routeCommand } from './route-command.js';
import { serveCommand } from './serve-command.js';
import { snapshotCommand } from './snapshot-command.js';
import { statusCommand } from './status-command.js';
import { tailCommand } from './tail-command.js';

const EXIT_USAGE = 2;

const program = new Command('lucid-mesh')
  .description('An Envoy xDS control plane for sidecar meshes.')
  .showHelpAfterError('(run with --help for usage)');

program.addCommand(serveCommand());
program.addCommand(bootstrapCommand());
program.addCommand(statusCommand());
program.addCommand(snapshotCommand());
program.addCommand(tailCommand());
program.addCommand(eventsCommand());
program.addCommand(meshCommand());
program.addCommand(routeCommand());
program.addCommand(policyCommand());
program.addCommand(configCommand());
program.addCommand(registerCommand());
program.addCommand(deregisterCommand());
program.addCommand(caCommand());
program.addCommand(tokenCommand());
for (const command of [program, ...program.commands]) command.exitOverride();

try {
  await program.parseAsync();
} catch (err) {
  if (!(err instanceof CommanderError)) throw err;
  // Commander has already printed the message; help and version are not errors.
  const benign = ['commander.helpDisplayed', 'commander.version'].includes(err.code);
  process.exit(benign ? 0 : err.exitCode === 0 ? 0 : EXIT_USAGE);
}
