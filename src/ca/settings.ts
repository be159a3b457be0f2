// Defaults and environment overrides for the CA, and the duration syntax the CLI accepts.
import { homedir } from 'node:os';
import { join } from 'node:path';

const DAY_MS = 86_400_000;

/** Short-lived leaves: a stolen key is useful for a day at most, and rotation gets exercised daily. */
export const DEFAULT_LEAF_TTL_MS = DAY_MS;
export const DEFAULT_TOKEN_TTL_MS = DAY_MS;

/** A bad environment variable or flag value; the message names it and the value. */
export class CaSettingsError extends Error {
  override readonly name = 'CaSettingsError';
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * Where CA state lives when `--data-dir` is not given: `$LUCID_DATA_DIR`, else
 * `$XDG_STATE_HOME/lucid-mesh`, else `~/.local/state/lucid-mesh`. Not the working directory:
 * `ca rotate` from another shell must find the same store as the running server.
 */
export function defaultDataDir(env: Env = process.env): string {
  if (env.LUCID_DATA_DIR) return env.LUCID_DATA_DIR;
  if (env.XDG_STATE_HOME) return join(env.XDG_STATE_HOME, 'lucid-mesh');
  return join(homedir(), '.local', 'state', 'lucid-mesh');
}

/** Leaf TTL from `CERT_VALIDITY_DAYS` (fractions allowed: 0.5 = 12 h); default 24 h. */
export function leafTtlFromEnv(env: Env = process.env): number {
  const raw = env.CERT_VALIDITY_DAYS;
  if (raw === undefined || raw.trim() === '') return DEFAULT_LEAF_TTL_MS;
  const days = Number(raw);
  if (!/^\d+(\.\d+)?$/.test(raw.trim()) || !(days > 0) || days > 3650) {
    throw new CaSettingsError(
      `CERT_VALIDITY_DAYS: expected a number of days, more than 0 and at most 3650, got ${JSON.stringify(raw)}`,
    );
  }
  return Math.round(days * DAY_MS);
}

/** `AUTO_ROTATE_CERTS`: renew leaves before they expire. Default true. */
export function autoRotateFromEnv(env: Env = process.env): boolean {
  const raw = env.AUTO_ROTATE_CERTS;
  if (raw === undefined || raw.trim() === '') return true;
  const value = raw.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(value)) return true;
  if (['false', '0', 'no', 'off'].includes(value)) return false;
  throw new CaSettingsError(
    `AUTO_ROTATE_CERTS: expected true or false, got ${JSON.stringify(raw)}`,
  );
}

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: DAY_MS };

/** Parses `500ms`, `30s`, `15m`, `24h`, `7d` (one number, one unit) into milliseconds. */
export function parseDuration(text: string): number | undefined {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
  if (!match) return undefined;
  const ms = Math.round(Number(match[1]) * UNITS[match[2]!]!);
  return ms > 0 ? ms : undefined;
}

/** Compact rendering for `ca show`: the largest unit, plus the next one if not zero ("23h 59m", "1d"). */
export function formatDuration(ms: number): string {
  const seconds = Math.abs(Math.round(ms / 1000));
  const units = [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const;
  const i = units.findIndex(([, size]) => seconds >= size);
  if (i < 0) return '0s';
  const [unit, size] = units[i]!;
  const major = `${Math.floor(seconds / size)}${unit}`;
  const next = units[i + 1];
  if (!next) return major;
  const minor = Math.floor((seconds % size) / next[1]);
  return minor > 0 ? `${major} ${minor}${next[0]}` : major;
}
