// One pino logger for the process. JSON lines on stderr; level from --log-level / LOG_LEVEL.
import { pino, destination, stdSerializers, type Logger, type SerializedError } from 'pino';

export type { Logger };

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function createLogger(level: LogLevel = 'info'): Logger {
  // Asynchronous: lines logged in one busy stretch (a thousand streams opening) leave in one
  // write instead of one blocking write each (measured: ~0.1 ms per line, synchronously).
  // pino flushes what is pending when the process exits. Its sonic-boom is 5.x (package.json
  // overrides): 4.x retried that flush forever once stderr's reader had gone (EPIPE), so a
  // SIGTERM never ended the process (test/cli/serve-log-reader-gone.test.ts).
  return pino(
    { level, base: { app: 'lucid-mesh' }, serializers: { err: errorWithItsName } },
    destination({ dest: 2, sync: false }),
  );
}

/**
 * pino's error serializer, with `type` the error's name rather than its class's: the shipped
 * CLI is minified (scripts/bundle-cli.mjs), where a class is called `o`; every error class of
 * ours names itself (test/runtime/error-names.test.ts).
 */
export function errorWithItsName(err: unknown): SerializedError | unknown {
  const serialized = stdSerializers.err(err as Error) as SerializedError | unknown;
  if (err instanceof Error && typeof serialized === 'object' && serialized !== null) {
    (serialized as { type: string }).type = err.name;
  }
  return serialized;
}

/** A logger that drops everything (tests that do not assert on logs). */
export const silentLogger: Logger = pino({ level: 'silent' });
