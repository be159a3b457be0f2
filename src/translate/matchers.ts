// Request matchers routes and RBAC permissions share: Consul's header and method matches as
// Envoy's HeaderMatcher. One home, so a route and an intention match a request alike.
import type { HeaderMatcher, StringMatcher } from '../protos/envoy-types.js';
import type { HeaderMatch } from '../traffic/types.js';
import { defined } from './envoy.js';

/** Consul's Exact / Prefix / Suffix / Regex (exactly one set) as a StringMatcher. */
export function stringMatcher(m: {
  Exact?: string;
  Prefix?: string;
  Suffix?: string;
  Regex?: string;
}): StringMatcher {
  if (m.Exact !== undefined) return { exact: m.Exact };
  if (m.Prefix !== undefined) return { prefix: m.Prefix };
  if (m.Suffix !== undefined) return { suffix: m.Suffix };
  return { safeRegex: { regex: m.Regex ?? '' } };
}

export function headerMatcher(h: HeaderMatch): HeaderMatcher {
  return defined({
    name: h.Name,
    presentMatch: h.Present ? true : undefined,
    stringMatch: h.Present ? undefined : stringMatcher(h),
    invertMatch: h.Invert ? true : undefined,
  });
}

/** Consul matches methods as one regex on :method (RE2 matches the whole value). */
export function methodMatcher(methods: readonly string[]): HeaderMatcher {
  return { name: ':method', stringMatch: { safeRegex: { regex: methods.join('|') } } };
}
