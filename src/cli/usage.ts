// How a lucid-mesh command reports usage errors: one line `lucid-mesh <cmd>: <problem>` on its
// stderr and exit code 2 (help and version exit 0). Commands take their output and exit as
// parameters so tests can run them in-process.
import type { Command, CommanderError } from 'commander';

export const EXIT_USAGE_ERROR = 2;

export interface UsageIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  exit: (code: number) => never;
}

export function withUsageErrors(cmd: Command, prefix: string, io: UsageIo): Command {
  return cmd
    .showSuggestionAfterError(true)
    .allowExcessArguments(false)
    .configureOutput({
      writeOut: io.stdout,
      writeErr: io.stderr,
      // Commander's own errors ("error: unknown option '--x'") become our one-line format.
      outputError: (text, write) => write(`${prefix}: ${text.replace(/^error: /, '')}`),
    })
    .exitOverride((err: CommanderError) => {
      io.exit(err.exitCode === 0 ? 0 : EXIT_USAGE_ERROR);
      throw err; // not reached unless io.exit returns
    });
}
