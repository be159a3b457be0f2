// Durations as Consul's config entries carry them: Go duration strings ("500ms", "1.5s", "2m",
// "1h30m", "250us", "0") or Go's time.Duration JSON, integer nanoseconds (what
// `consul config read` prints for e.g. PassiveHealthCheck.Interval). Result: milliseconds,
// fractional below 1 ms ("250us" → 0.25). Negative durations are errors: nothing in a config
// entry means "less than no time".
import type { Millis } from './types.js';

const UNIT_NS: Readonly<Record<string, number>> = {
  ns: 1,
  us: 1e3,
  µs: 1e3, // U+00B5 micro sign, as Go accepts
  μs: 1e3, // U+03BC Greek mu, as Go accepts
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Go's limit: time.Duration is an int64 of nanoseconds (about 292 years). */
const MAX_NS = 2 ** 63 - 1; // ≈ 9.22e18 (2 ** 63 as a double: close enough for a range check)

const COMPONENT = /(\d*)(?:\.(\d*))?([^\d.]+)/y;

const EXPECTED =
  'expected a duration such as "500ms", "1.5s", "2m" or "1h30m" (or integer nanoseconds)';

export class DurationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DurationError';
  }
}

/** Go's time.ParseDuration (without the sign) or integer nanoseconds → milliseconds. */
export function parseDuration(value: unknown): Millis {
  if (typeof value === 'number') return fromNanoseconds(value);
  if (typeof value !== 'string') throw new DurationError(`${EXPECTED}, got ${describe(value)}`);
  const text = value.trim();
  if (text === '0' || text === '+0' || text === '-0') return 0;
  if (text.startsWith('-')) {
    throw new DurationError(`expected a duration ≥ 0, got ${JSON.stringify(value)}`);
  }
  const body = text.startsWith('+') ? text.slice(1) : text;
  if (/^\d+(\.\d*)?$/.test(body)) {
    throw new DurationError(
      `${EXPECTED}, got ${JSON.stringify(value)} (a unit is required: ns, us, ms, s, m, h)`,
    );
  }
  let ns = 0;
  COMPONENT.lastIndex = 0;
  while (COMPONENT.lastIndex < body.length) {
    const at = COMPONENT.lastIndex;
    const m = COMPONENT.exec(body);
    const [, whole = '', fraction = '', unit = ''] = m ?? [];
    const perUnit = UNIT_NS[unit];
    if (!m || m.index !== at || (whole === '' && fraction === '') || perUnit === undefined) {
      const why = m && perUnit === undefined ? ` (unknown unit ${JSON.stringify(unit)})` : '';
      throw new DurationError(`${EXPECTED}, got ${JSON.stringify(value)}${why}`);
    }
    // Whole and fractional parts apart, so "1.1s" is exactly 1100 ms.
    ns += Number(whole || '0') * perUnit;
    if (fraction !== '') ns += Math.round(Number(`0.${fraction}`) * perUnit);
  }
  if (body === '') throw new DurationError(`${EXPECTED}, got ${JSON.stringify(value)}`);
  if (ns > MAX_NS)
    throw new DurationError(
      `expected a duration up to ~292 years (Go's limit), got ${JSON.stringify(value)}`,
    );
  return ns / 1e6;
}

/**
 * As parseDuration, and a negative duration ("-1s", or negative nanoseconds) too: where Consul
 * gives one a meaning (a route's RequestTimeout and IdleTimeout: none at all).
 */
export function parseSignedDuration(value: unknown): Millis {
  if (typeof value === 'number' && value < 0) return -fromNanoseconds(-value);
  if (typeof value === 'string' && /^\s*-/.test(value)) {
    const ms = parseDuration(value.trim().slice(1));
    return ms === 0 ? 0 : -ms;
  }
  return parseDuration(value);
}

function fromNanoseconds(ns: number): Millis {
  if (!Number.isInteger(ns)) {
    throw new DurationError(`${EXPECTED}, got ${ns} (a number is nanoseconds: an integer)`);
  }
  if (ns < 0) throw new DurationError(`expected a duration ≥ 0, got ${ns}`);
  // A bare number is Go's nanoseconds; under a millisecond it is nearly always a duration
  // written without its unit ("RequestTimeout: 5" meaning 5 s), which Envoy would round to
  // nothing.
  if (ns > 0 && ns < 1e6) {
    throw new DurationError(
      `${EXPECTED}, got ${ns}: a number is nanoseconds (${ns} ns, under a millisecond); write the unit, e.g. "${ns}s" or "${ns}ms"`,
    );
  }
  if (ns > MAX_NS)
    throw new DurationError(`expected a duration up to ~292 years (Go's limit), got ${ns}`);
  return ns / 1e6;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
