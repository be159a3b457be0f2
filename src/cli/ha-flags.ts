// `serve` flags for running several replicas: how a replica leaves (--drain-seconds), how
// long one xDS stream may stay on it (--max-stream-age), and whether it may start with other
// mesh settings than the running replicas (--allow-settings-change). See docs/ha.md.
import { InvalidArgumentError, Option } from 'commander';
import { parseDuration } from '../ca/settings.js';
import { DEFAULT_XDS_LIMITS } from '../xds/limits.js';
import { booleanFlagOrEnv } from './options.js';

export const DEFAULT_DRAIN_SECONDS = 10;

export interface HaFlags {
  drainSeconds: number;
  maxStreamAge: number;
  /** The flag only: its environment variable is read by allowSettingsChange(). */
  allowSettingsChange?: boolean;
}

/** "30m", "90s", "1h"; "0" turns it off. Milliseconds. */
function streamAgeOption(value: string): number {
  if (value.trim() === '0') return 0;
  const ms = parseDuration(value);
  if (ms === undefined || ms < 10_000 || ms > 7 * 86_400_000) {
    throw new InvalidArgumentError(
      `--max-stream-age: expected 0 (never) or a duration from 10s to 7d like 30m or 2h, got ${JSON.stringify(value)}`,
    );
  }
  return ms;
}

function drainSecondsOption(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n < 1 || n > 3600) {
    throw new InvalidArgumentError(
      `--drain-seconds: expected whole seconds 1-3600, got ${JSON.stringify(value)}`,
    );
  }
  return n;
}

const minutes = (ms: number): string => `${ms / 60_000}m`;

export function haCliOptions(): Option[] {
  return [
    new Option(
      '--drain-seconds <s>',
      'on SIGTERM/SIGINT: /ready turns 503, new xDS streams are refused and open ones are ' +
        'closed so their sidecars reconnect to another replica; the process exits once they ' +
        'are gone, at the latest after this many seconds (a second signal exits at once)',
    )
      .env('LUCID_DRAIN_SECONDS')
      .default(DEFAULT_DRAIN_SECONDS)
      .argParser(drainSecondsOption),
    new Option(
      '--max-stream-age <duration>',
      'close an xDS stream gracefully after this long (±10 % jitter) so sidecars spread over ' +
        'the replicas after a rollout; the sidecar reconnects and is sent nothing it already ' +
        'has; 0: never',
    )
      .env('LUCID_MAX_STREAM_AGE')
      .default(DEFAULT_XDS_LIMITS.maxStreamAgeMs, minutes(DEFAULT_XDS_LIMITS.maxStreamAgeMs))
      .argParser(streamAgeOption),
    new Option(
      '--allow-settings-change',
      'with --state consul|etcd: start even though the mesh settings (docs/ha.md) differ from ' +
        "the running replicas' (a deliberate, rolling change; the replicas that start with the " +
        'same new settings afterwards need no override); without it such a replica exits 2 ' +
        'naming each setting and both values (env: LUCID_ALLOW_SETTINGS_CHANGE=true)',
    ),
  ];
}

const ALLOW_ENV = 'LUCID_ALLOW_SETTINGS_CHANGE';

/**
 * --allow-settings-change, or its environment variable (booleanFlagOrEnv).
 * @throws InvalidArgumentError naming the variable for a value that is not a boolean
 */
export function allowSettingsChange(flags: HaFlags, env: NodeJS.ProcessEnv = process.env): boolean {
  return booleanFlagOrEnv(flags.allowSettingsChange, ALLOW_ENV, env);
}
