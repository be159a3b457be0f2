// Defaults and parsing: data directory, durations.
import { join } from 'node:path';
import { homedir } from 'node:os';
import { describe, expect, it } from 'vitest';
import { defaultDataDir, formatDuration, parseDuration } from '../../src/ca/settings.js';

describe('settings', () => {
  it('data dir: LUCID_DATA_DIR, then XDG_STATE_HOME, then ~/.local/state (never the cwd)', () => {
    expect(defaultDataDir({ LUCID_DATA_DIR: '/var/lib/lucid', XDG_STATE_HOME: '/x' })).toBe(
      '/var/lib/lucid',
    );
    expect(defaultDataDir({ XDG_STATE_HOME: '/x' })).toBe('/x/lucid-mesh');
    expect(defaultDataDir({})).toBe(join(homedir(), '.local', 'state', 'lucid-mesh'));
  });

  it('durations: one number, one unit', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('15m')).toBe(900_000);
    expect(parseDuration('24h')).toBe(86_400_000);
    expect(parseDuration('1.5h')).toBe(5_400_000);
    expect(parseDuration('7d')).toBe(604_800_000);
    for (const bad of ['', '24', 'h', '1h30m', '-1h', '0s', '5 weeks']) {
      expect(parseDuration(bad)).toBeUndefined();
    }
  });

  it('formats remaining time compactly', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(45_000)).toBe('45s');
    expect(formatDuration(250_000)).toBe('4m 10s');
    expect(formatDuration(86_399_000)).toBe('23h 59m');
    expect(formatDuration(86_400_000)).toBe('1d');
    expect(formatDuration(-90_000)).toBe('1m 30s');
  });
});
