// Envoy runs every regex of a route or RBAC rule with RE2 (safe_regex: google_re2).
// JavaScript's RegExp accepts what RE2 refuses (lookarounds, backreferences, repeats over
// 1000: Envoy NACKs the whole route configuration, every service's routes stop updating) and
// refuses what RE2 accepts ((?i), (?P<name>)). So regexes are checked with RE2's own rules
// (re2js, a port of RE2), loaded on first use: a mesh without regexes never loads it.
import { createRequire } from 'node:module';

interface Re2js {
  RE2JS: {
    CASE_INSENSITIVE: number;
    compile(pattern: string, flags?: number): { matches(input: string): boolean };
  };
}

let loaded: Re2js['RE2JS'] | undefined;
const re2 = (): Re2js['RE2JS'] =>
  (loaded ??= (createRequire(import.meta.url)('re2js') as Re2js).RE2JS);

/** Why RE2 (Envoy's engine) refuses `pattern`, or undefined when it compiles. */
export function re2Problem(pattern: string): string | undefined {
  try {
    re2().compile(pattern);
    return undefined;
  } catch (err) {
    return (err as Error).message.replace(/^error parsing regexp: /, '');
  }
}

/** Whether `pattern` matches all of `value`, as Envoy's safe_regex does (route explain). */
export function re2FullMatch(pattern: string, value: string, caseInsensitive = false): boolean {
  const key = `${caseInsensitive ? 'i' : ''}/${pattern}`;
  let compiled = cache.get(key);
  if (!compiled) {
    const r = re2();
    compiled = r.compile(pattern, caseInsensitive ? r.CASE_INSENSITIVE : 0);
    if (cache.size > 1000) cache.clear();
    cache.set(key, compiled);
  }
  return compiled.matches(value);
}

const cache = new Map<string, { matches(input: string): boolean }>();
