// Go durations and integer nanoseconds → milliseconds, as Consul's config entries carry them.
import { describe, expect, it } from 'vitest';
import { DurationError, parseDuration, parseSignedDuration } from '../../src/traffic/duration.js';

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['1.5s', 1500],
    ['1.1s', 1100],
    ['2m', 120_000],
    ['1h30m', 5_400_000],
    ['1h0m0s', 3_600_000],
    ['0s', 0],
    ['0', 0],
    ['250us', 0.25],
    ['250µs', 0.25],
    ['250μs', 0.25],
    ['100ns', 0.0001],
    ['.5s', 500],
    ['+2s', 2000],
    ['15s', 15_000],
  ])('%s → %s ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it('reads integer nanoseconds (Go time.Duration JSON)', () => {
    expect(parseDuration(15_000_000_000)).toBe(15_000);
    expect(parseDuration(0)).toBe(0);
    expect(parseDuration(1_000_000)).toBe(1);
  });

  it('rejects a number under a millisecond: a duration written without its unit', () => {
    // "RequestTimeout: 5" meant 5 s, was 5 ns, and Envoy rounds that to no timeout at all.
    expect(() => parseDuration(5)).toThrow(
      'got 5: a number is nanoseconds (5 ns, under a millisecond); write the unit, e.g. "5s" or "5ms"',
    );
    expect(() => parseDuration(250_000)).toThrow(/under a millisecond/);
  });

  it.each([
    ['500', /a unit is required/],
    ['5 sec', /unknown unit " sec"/],
    ['1d', /unknown unit "d"/],
    ['1h30', /got "1h30"/],
    ['ms', /got "ms"/],
    ['1.2.3s', /got "1.2.3s"/],
    ['', /got ""/],
    ['-1s', /expected a duration ≥ 0, got "-1s"/],
    ['3000000h', /up to ~292 years/],
  ])('rejects %j', (text, message) => {
    expect(() => parseDuration(text)).toThrow(DurationError);
    expect(() => parseDuration(text)).toThrow(message);
  });

  it('rejects numbers that are not whole non-negative nanoseconds, and other types', () => {
    expect(() => parseDuration(1.5)).toThrow(/a number is nanoseconds: an integer/);
    expect(() => parseDuration(-1)).toThrow(/expected a duration ≥ 0, got -1/);
    expect(() => parseDuration(true)).toThrow(/got true/);
    expect(() => parseDuration(undefined)).toThrow(/got nothing/);
    expect(() => parseDuration({ s: 1 })).toThrow(/got \{"s":1\}/);
  });
});

describe('parseSignedDuration', () => {
  it.each([
    ['-1s', -1000],
    ['-500ms', -500],
    [' -2m', -120_000],
    ['-0s', 0],
    ['3s', 3000],
    [-1_000_000_000, -1000],
  ])('%j → %s ms', (value, ms) => {
    expect(parseSignedDuration(value)).toBe(ms);
  });

  it('rejects what parseDuration rejects, after the sign', () => {
    expect(() => parseSignedDuration('-5 sec')).toThrow(/unknown unit " sec"/);
    expect(() => parseSignedDuration('--1s')).toThrow(DurationError);
  });
});
