// Runs a lucid-mesh command in-process, as the CLI would, capturing its output and exit code.
// Commands that take an `io` (stdout, stderr, exit) are built with this one.
import type { Command } from 'commander';

export interface CommandIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  exit: (code: number) => never;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

class ExitCalled extends Error {
  constructor(readonly code: number) {
    super(`exit(${code})`);
  }
}

export async function runCommand(
  make: (io: CommandIo) => Command,
  args: string[],
): Promise<CommandResult> {
  let stdout = '';
  let stderr = '';
  const cmd = make({
    stdout: (s) => void (stdout += s),
    stderr: (s) => void (stderr += s),
    exit: (code) => {
      throw new ExitCalled(code);
    },
  });
  try {
    await cmd.parseAsync(args, { from: 'user' });
    return { code: 0, stdout, stderr };
  } catch (err) {
    if (err instanceof ExitCalled) return { code: err.code, stdout, stderr };
    throw err;
  }
}
