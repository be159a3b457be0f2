// What every lucid-mesh command does when the reader of its output goes (`lucid-mesh status |
// head -1`, `tail | grep -m1 NACK`, a log shipper that restarts). Writing to a pipe nobody reads
// fails with EPIPE; Node ignores SIGPIPE and emits the failure as an 'error' on process.stdout,
// which, unhandled, ended the command with exit 1 and a stack trace. The rule, for every command
// from here (program.ts installs it before any command runs):
//
// - stdout's reader gone (EPIPE): the command ends at once, quietly, with exit 0: the reader took
//   what it wanted. Not 141 (a SIGPIPE death as `seq | head` gives): that fails `set -o pipefail`
//   scripts that meant to stop reading early.
// - a command whose job is not its output (serve, register --ttl) keeps running instead: what it
//   would print is dropped (keepRunningWhenStdoutCloses).
// - any other write failure on stdout (ENOSPC, EIO): output was lost, so one line on stderr and
//   exit 1.
// - stderr's reader gone, or any other stderr failure: diagnostics are dropped, the command goes on.
//
// A command that waits without printing notices the closed pipe at its next line: Node has no
// way to poll a write-only pipe for its reader.

export const EXIT_OUTPUT_FAILED = 1;

type Exit = (code: number) => void;

let keepRunning = false;
let installed = false;

/**
 * Installs the rule on process.stdout and process.stderr (once; later calls do nothing).
 * `name` starts the line that reports a failed write (`lucid-mesh status`).
 */
export function installOutputClosedRule(
  name: string,
  exit: Exit = (code) => process.exit(code),
): void {
  if (installed) return;
  installed = true;
  let stdoutGone = false;
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    // After the first failure the stream is destroyed and every later write fails too.
    if (stdoutGone) return;
    stdoutGone = true;
    if (isReaderGone(err)) {
      if (!keepRunning) exit(0);
      return;
    }
    writeStderr(`${name}: cannot write to stdout (${err.code ?? err.message})\n`);
    exit(EXIT_OUTPUT_FAILED);
  });
  process.stderr.on('error', () => undefined);
}

/** For commands whose job is not their output: a closed stdout no longer ends them. */
export function keepRunningWhenStdoutCloses(): void {
  keepRunning = true;
}

/**
 * Exits with `code` once everything written to stdout has gone into the pipe. process.exit
 * alone drops what a slow reader (`tail --count 1 --json | jq`) has not taken yet, past the
 * pipe's 64 KiB: half a JSON line.
 */
export function exitOnceWritten(code: number): void {
  if (process.stdout.writableLength === 0) process.exit(code);
  // Writes go out in order: this callback runs after the last of them (or on a failure).
  process.stdout.write('', () => process.exit(code));
}

function isReaderGone(err: NodeJS.ErrnoException): boolean {
  return err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED';
}

function writeStderr(text: string): void {
  try {
    process.stderr.write(text);
  } catch {
    // stderr gone too: nothing left to tell
  }
}
