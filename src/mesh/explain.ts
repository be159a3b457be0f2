// What happens to one request from service `from` to service `to`, read from the mesh model
// (pure): which route of `to`'s outbound virtual host matches, where it sends the request (with
// weights, timeouts, retries, rewrite, fault, mirror), and whether `to`'s RBAC lets it in.
// `lucid-mesh route explain` and GET /v1/route/explain print it.
//
// Matching follows Envoy's route matcher, as the translator configures it (translate/routes.ts):
// - path: `prefix` is tested against the whole `:path` (query string included), `path` (exact)
//   and `safe_regex` against the path without the query string; regexes match the whole value;
// - methods: one regex on `:method` (`GET|POST`, whole value);
// - headers: names case-insensitive, repeated values joined with ","; a missing header matches
//   only an inverted Present (Envoy's HeaderUtility::matchHeaders); otherwise the result of
//   Exact/Prefix/Suffix/Regex/Present is inverted by Invert;
// - query parameters: the first value of the name (percent-decoded); a missing one never
//   matches; Present matches any value.
// Routes are tried in order; the first whose conditions all hold decides.
//
// Authorization is evaluated as translate/rbac.ts compiles it: the policy file's partition
// (AllowedSources) and the intentions (exact sources before `*`, the first matching source
// decides; its L7 permissions in order, the first match decides; else the default), deny wins.
// Envoy's RBAC tests L7 paths against the path without the query string. The filters are only
// installed with mTLS (callers are known by their certificates).
import type { Protocol } from '../catalog/model.js';
import type { AllowedSources } from '../policy/evaluate.js';
import type {
  Fault,
  HashPolicy,
  HeaderEdits,
  HeaderMatch,
  IntentionPermission,
  Limits,
  QueryParamMatch,
} from '../traffic/types.js';
import { re2FullMatch } from '../traffic/re2.js';
import { meshService } from './build.js';
import { proxyScope } from './scope.js';
import type {
  Backend,
  LoadBalancing,
  Mesh,
  OutlierDetection,
  RetryPolicy,
  Route,
  RouteMatch,
} from './types.js';

/** A request to explain. */
export interface RouteQuestion {
  /** The calling service (whose sidecar routes the request). */
  readonly from: string;
  /** The called service: the virtual host the request is for. */
  readonly to: string;
  /** The request's `:path`, optionally with a query string (`/admin?debug=1`). */
  readonly path: string;
  /** Default GET; upper-cased. */
  readonly method?: string;
  /** Request headers; names are case-insensitive, a list is joined with "," (as Envoy does). */
  readonly headers?: Readonly<Record<string, string | readonly string[]>>;
  /** More query parameters, appended to the path's query string. */
  readonly query?: Readonly<Record<string, string>>;
}

/** The question cannot be answered: `invalid` input, or a `to` the mesh does not have. */
export class ExplainError extends Error {
  constructor(
    readonly reason: 'invalid' | 'unknown-service',
    message: string,
  ) {
    super(message);
    this.name = 'ExplainError';
  }
}

export interface ExplainedDestination {
  readonly backend: string;
  readonly service: string;
  readonly subset?: string;
  /** Share of requests, in percent (two decimals, as Consul's weights). */
  readonly weightPercent: number;
  /** Instances that receive traffic in this backend. */
  readonly endpoints: number;
  readonly connectTimeoutMs: number;
  readonly loadBalancing: LoadBalancing;
  readonly limits?: Limits;
  readonly outlierDetection?: OutlierDetection;
  /** Header edits of this split (splitter RequestHeaders / ResponseHeaders). */
  readonly requestHeaders?: HeaderEdits;
  readonly responseHeaders?: HeaderEdits;
  /** The settings are the caller's own (its service-defaults UpstreamConfig). */
  readonly callerOverride: boolean;
}

export interface SkippedRoute {
  readonly index: number;
  readonly match: string;
  /** The first condition that does not hold. */
  readonly reason: string;
}

export interface MatchedRoute {
  /** Position in the virtual host's routes (0-based). */
  readonly index: number;
  /** How many routes the virtual host has. */
  readonly count: number;
  readonly match: RouteMatch;
  /** The match as one line, e.g. `PathPrefix /admin, Methods GET`. */
  readonly description: string;
  readonly timeout: {
    /** 0 = no timeout. */
    readonly ms: number;
    /** `route`: set by an entry (router RequestTimeout, resolver RequestTimeout); else Envoy's default. */
    readonly from: 'route' | 'default';
  };
  readonly idleTimeoutMs?: number;
  readonly retry?: RetryPolicy;
  readonly prefixRewrite?: string;
  /** The `:path` the upstream receives after prefixRewrite. */
  readonly rewrittenPath?: string;
  readonly requestHeaders?: HeaderEdits;
  readonly responseHeaders?: HeaderEdits;
  readonly fault?: Fault;
  readonly mirror?: {
    readonly backend: string;
    readonly service: string;
    readonly subset?: string;
    readonly percent: number;
  };
  readonly hashPolicies: readonly HashPolicy[];
}

export type Decision = 'allow' | 'deny';

export interface PolicyAnswer {
  readonly decision: Decision;
  readonly reason: string;
}

export interface IntentionsAnswer {
  readonly decision: Decision;
  /** `rule`: the source's L4 Action; `permission`: an L7 permission; `default`: nothing decided. */
  readonly by: 'rule' | 'permission' | 'default';
  /** The source of the intention that matched the caller ("web" or "*"). */
  readonly source?: string;
  /** Index into that source's Permissions. */
  readonly permission?: number;
  readonly reason: string;
}

export interface AuthorizationAnswer {
  /** Both parts must allow (deny wins); with neither, every caller is allowed. */
  readonly decision: Decision;
  /** false: the sidecars install no RBAC filter (no mTLS), so the decision is not applied. */
  readonly enforced: boolean;
  readonly policy?: PolicyAnswer;
  readonly intentions?: IntentionsAnswer;
  readonly reason: string;
}

export interface RouteExplanation {
  readonly from: string;
  readonly to: string;
  /** The request as matched: method, full `:path`, headers with lower-case names. */
  readonly request: {
    readonly method: string;
    readonly path: string;
    readonly headers: Readonly<Record<string, string>>;
  };
  readonly protocol: Protocol;
  /** Where the protocol came from ("catalog", "service-defaults/api", ...). */
  readonly protocolFrom: string;
  /** Routes tried before the one that matched (or all of them), with why each did not. */
  readonly skipped: readonly SkippedRoute[];
  /** Absent: tcp (no HTTP routing), or no route matched (Envoy answers 404). */
  readonly route?: MatchedRoute;
  /** Where the request (or tcp connection) goes; empty when no route matched. */
  readonly destinations: readonly ExplainedDestination[];
  readonly authorization: AuthorizationAnswer;
  /**
   * The caller's scope (docs/scoping.md), absent when its sidecar gets every service: whether
   * `to` is in it. Outside it, the caller's sidecar has no route or listener for `to` at all.
   */
  readonly scope?: { readonly from: 'declared' | 'policy'; readonly reachable: boolean };
  /** Facts worth knowing (no endpoints, unknown caller, not enforced, ...). */
  readonly notes: readonly string[];
}

/** Envoy's route timeout when none is configured. */
export const ENVOY_DEFAULT_TIMEOUT_MS = 15_000;

interface Request {
  readonly method: string;
  /** The whole `:path`. */
  readonly fullPath: string;
  /** `:path` without the query string. */
  readonly path: string;
  readonly headers: ReadonlyMap<string, string>;
  /** First value of each parameter. */
  readonly query: ReadonlyMap<string, string>;
}

interface Test {
  readonly ok: boolean;
  /** Why it failed (or, inverted, why it held). */
  readonly reason: string;
}

/** Full-match test, as RE2 in Envoy's safe_regex. */
function fullMatch(pattern: string, value: string, flags = ''): boolean {
  // RE2, as Envoy: the same syntax ((?i), no lookarounds) and whole-value matching.
  return re2FullMatch(pattern, value, flags.includes('i'));
}

const q = (s: string) => JSON.stringify(s);

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

function parseQuery(queryString: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of queryString.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = decode(eq < 0 ? part : part.slice(0, eq));
    const value = eq < 0 ? '' : decode(part.slice(eq + 1));
    if (!out.has(key)) out.set(key, value);
  }
  return out;
}

function toRequest(question: RouteQuestion): Request {
  const raw = question.path;
  if (typeof raw !== 'string' || !raw.startsWith('/')) {
    throw new ExplainError(
      'invalid',
      `path: expected a path starting with "/", got ${q(String(raw))}`,
    );
  }
  const noFragment = raw.split('#', 1)[0]!;
  const at = noFragment.indexOf('?');
  const path = at < 0 ? noFragment : noFragment.slice(0, at);
  const queryParts = [at < 0 ? '' : noFragment.slice(at + 1)];
  for (const [k, v] of Object.entries(question.query ?? {})) {
    queryParts.push(`${encodeURIComponent(k)}=${encodeURIComponent(v)}`);
  }
  const queryString = queryParts.filter((p) => p !== '').join('&');
  const headers = new Map<string, string>();
  for (const [name, value] of Object.entries(question.headers ?? {})) {
    const key = name.toLowerCase();
    const values = typeof value === 'string' ? [value] : [...value];
    const before = headers.get(key);
    headers.set(key, [...(before !== undefined ? [before] : []), ...values].join(','));
  }
  return {
    method: (question.method ?? 'GET').toUpperCase(),
    fullPath: queryString === '' ? path : `${path}?${queryString}`,
    path,
    headers,
    query: parseQuery(queryString),
  };
}

// ---- matching ---------------------------------------------------------------------------------

function headerCondition(h: HeaderMatch): string {
  const not = h.Invert ? 'not ' : '';
  if (h.Present) return `Header ${h.Name} ${not}Present`;
  if (h.Exact !== undefined) return `Header ${h.Name} ${not}Exact ${q(h.Exact)}`;
  if (h.Prefix !== undefined) return `Header ${h.Name} ${not}Prefix ${q(h.Prefix)}`;
  if (h.Suffix !== undefined) return `Header ${h.Name} ${not}Suffix ${q(h.Suffix)}`;
  return `Header ${h.Name} ${not}Regex ${q(h.Regex ?? '')}`;
}

function queryCondition(p: QueryParamMatch): string {
  if (p.Present) return `QueryParam ${p.Name} Present`;
  if (p.Exact !== undefined) return `QueryParam ${p.Name} Exact ${q(p.Exact)}`;
  return `QueryParam ${p.Name} Regex ${q(p.Regex ?? '')}`;
}

/** A route match as one line in Consul's terms; `(any request)` for the catch-all. */
export function describeMatch(m: RouteMatch): string {
  const parts: string[] = [];
  if (m.path) {
    const kind = { exact: 'PathExact', prefix: 'PathPrefix', regex: 'PathRegex' }[m.path.kind];
    parts.push(`${kind} ${m.path.value}${m.path.caseInsensitive ? ' (any case)' : ''}`);
  }
  if (m.methods.length > 0) parts.push(`Methods ${m.methods.join('|')}`);
  parts.push(...m.headers.map(headerCondition), ...m.queryParams.map(queryCondition));
  return parts.length === 0 ? '(any request)' : parts.join(', ');
}

/** Envoy's header matcher (HeaderUtility::matchHeaders) for one request header. */
function testHeader(h: HeaderMatch, value: string | undefined): Test {
  const name = h.Name.toLowerCase();
  if (value === undefined) {
    // A missing header fails every matcher; inverted, only Present turns that into a match.
    const ok = h.Invert && h.Present === true;
    return { ok, reason: `header ${name} is absent` };
  }
  let hit: boolean;
  if (h.Present) hit = true;
  else if (h.Exact !== undefined) hit = value === h.Exact;
  else if (h.Prefix !== undefined) hit = value.startsWith(h.Prefix);
  else if (h.Suffix !== undefined) hit = value.endsWith(h.Suffix);
  else hit = fullMatch(h.Regex ?? '', value);
  const condition = headerCondition({ ...h, Invert: false }).replace(/^Header \S+ /, '');
  return {
    ok: hit !== h.Invert,
    reason: h.Invert
      ? `header ${name} ${q(value)} matches ${condition} (the match is inverted)`
      : `header ${name} ${q(value)} does not match ${condition}`,
  };
}

function testQuery(p: QueryParamMatch, value: string | undefined): Test {
  if (value === undefined) return { ok: false, reason: `query parameter ${p.Name} is absent` };
  if (p.Present) return { ok: true, reason: '' };
  const ok = p.Exact !== undefined ? value === p.Exact : fullMatch(p.Regex ?? '', value);
  const condition = queryCondition(p).replace(/^QueryParam \S+ /, '');
  return { ok, reason: `query parameter ${p.Name} ${q(value)} does not match ${condition}` };
}

function testRoute(m: RouteMatch, r: Request): Test {
  const p = m.path;
  const fold = (s: string) => (p?.caseInsensitive ? s.toLowerCase() : s);
  if (p?.kind === 'prefix' && !fold(r.fullPath).startsWith(fold(p.value))) {
    return { ok: false, reason: `path ${r.fullPath} does not start with ${p.value}` };
  }
  if (p?.kind === 'exact' && fold(r.path) !== fold(p.value)) {
    return { ok: false, reason: `path ${r.path} is not ${p.value}` };
  }
  if (p?.kind === 'regex' && !fullMatch(p.value, r.path, p.caseInsensitive ? 'i' : '')) {
    return { ok: false, reason: `path ${r.path} does not match regex ${p.value}` };
  }
  if (m.methods.length > 0 && !fullMatch(m.methods.join('|'), r.method)) {
    return { ok: false, reason: `method ${r.method} is not ${m.methods.join(' or ')}` };
  }
  for (const h of m.headers) {
    const t = testHeader(h, r.headers.get(h.Name.toLowerCase()));
    if (!t.ok) return t;
  }
  for (const param of m.queryParams) {
    const t = testQuery(param, r.query.get(param.Name));
    if (!t.ok) return t;
  }
  return { ok: true, reason: '' };
}

/** An intention's L7 permission, as Envoy RBAC matches it (paths without the query string). */
function testPermission(p: IntentionPermission, r: Request): boolean {
  const h = p.HTTP;
  if (h.PathExact !== undefined && r.path !== h.PathExact) return false;
  if (h.PathPrefix !== undefined && !r.path.startsWith(h.PathPrefix)) return false;
  if (h.PathRegex !== undefined && !fullMatch(h.PathRegex, r.path)) return false;
  if (h.Methods.length > 0 && !fullMatch(h.Methods.join('|'), r.method)) return false;
  return h.Header.every((m) => testHeader(m, r.headers.get(m.Name.toLowerCase())).ok);
}

/** An L7 permission as one line, e.g. `deny PathPrefix /admin, Methods GET`. */
export function describePermission(p: IntentionPermission): string {
  const h = p.HTTP;
  return `${p.Action} ${describeMatch({
    ...(h.PathExact !== undefined ? { path: { kind: 'exact', value: h.PathExact } } : {}),
    ...(h.PathPrefix !== undefined ? { path: { kind: 'prefix', value: h.PathPrefix } } : {}),
    ...(h.PathRegex !== undefined ? { path: { kind: 'regex', value: h.PathRegex } } : {}),
    methods: h.Methods,
    headers: h.Header,
    queryParams: [],
  })}`;
}

// ---- authorization ----------------------------------------------------------------------------

function policyAnswer(p: AllowedSources, from: string): PolicyAnswer {
  if (p.allowed.includes(from)) {
    return {
      decision: 'allow',
      reason: `the policy allows ${from} to call ${p.destination} (other callers are denied)`,
    };
  }
  if (p.denied.includes(from)) {
    return {
      decision: 'deny',
      reason: `the policy denies ${from} calling ${p.destination} (other callers are allowed)`,
    };
  }
  return {
    decision: p.others,
    reason: `the policy ${p.others === 'allow' ? 'allows' : 'denies'} every caller of ${p.destination} it does not single out, ${from} included`,
  };
}

function intentionsAnswer(
  intentions: NonNullable<Mesh['services'][number]['authorization']['intentions']>,
  from: string,
  to: string,
  r: Request,
  l7: boolean,
): IntentionsAnswer {
  const byDefault = (why: string): IntentionsAnswer => ({
    decision: intentions.default,
    by: 'default',
    reason: `${why}: the intentions default (${intentions.default})`,
  });
  const named = intentions.rules.some((rule) => rule.source === from);
  // Exact sources come first (mesh/authorization.ts); `*` stands for every caller not named.
  const rule = intentions.rules.find((x) => (x.source === '*' ? !named : x.source === from));
  if (!rule) return byDefault(`no intention of ${to} names ${from} and there is no "*" source`);
  const who = rule.source === '*' ? `the "*" intention of ${to}` : `the intention ${from} → ${to}`;
  if (rule.action !== undefined) {
    return {
      decision: rule.action,
      by: 'rule',
      source: rule.source,
      reason: `${who}: ${rule.action}`,
    };
  }
  const permissions = rule.permissions ?? [];
  if (!l7) {
    return {
      ...byDefault(`${who} has L7 permissions, which a tcp service cannot apply`),
      source: rule.source,
    };
  }
  const index = permissions.findIndex((p) => testPermission(p, r));
  if (index < 0) {
    return {
      ...byDefault(
        `${who}: none of its ${permissions.length} permission(s) matches ${r.method} ${r.path}`,
      ),
      source: rule.source,
    };
  }
  const p = permissions[index]!;
  return {
    decision: p.Action,
    by: 'permission',
    source: rule.source,
    permission: index,
    reason: `${who}: Permissions[${index}] (${describePermission(p)}) matches: ${p.Action}`,
  };
}

function authorize(
  mesh: Mesh,
  to: Mesh['services'][number],
  from: string,
  r: Request,
): AuthorizationAnswer {
  const auth = to.authorization;
  const policy = auth.policy ? policyAnswer(auth.policy, from) : undefined;
  const intentions = auth.intentions
    ? intentionsAnswer(auth.intentions, from, to.name, r, to.protocol !== 'tcp')
    : undefined;
  const parts = [policy, intentions].filter((a) => a !== undefined);
  const denied = parts.find((a) => a.decision === 'deny');
  const decision: Decision = denied ? 'deny' : 'allow';
  let reason: string;
  if (parts.length === 0)
    reason = `no policy and no intentions apply to ${to.name}: every caller is allowed`;
  else if (denied) reason = `${denied.reason}${parts.length > 1 ? ' (deny wins)' : ''}`;
  else reason = parts.map((a) => a.reason).join('; ');
  return {
    decision,
    enforced: mesh.settings.mtls !== undefined,
    ...(policy ? { policy } : {}),
    ...(intentions ? { intentions } : {}),
    reason,
  };
}

// ---- destinations -----------------------------------------------------------------------------

const backendIndexes = new WeakMap<Mesh, Map<string, Backend>>();

function backendByName(mesh: Mesh, name: string): Backend | undefined {
  let index = backendIndexes.get(mesh);
  if (!index) {
    index = new Map(mesh.services.flatMap((s) => s.backends.map((b) => [b.name, b] as const)));
    backendIndexes.set(mesh, index);
  }
  return index.get(name);
}

/** service~subset → { service, subset } (see mesh/names.ts). */
function splitName(name: string): { service: string; subset?: string } {
  const at = name.indexOf('~');
  return at < 0 ? { service: name } : { service: name.slice(0, at), subset: name.slice(at + 1) };
}

function endpointCount(b: Backend): number {
  return b.localities.reduce((n, l) => n + l.endpoints.length, 0);
}

function explainDestination(
  mesh: Mesh,
  callerOverrides: readonly Backend[],
  name: string,
  weight: number,
  edits: { requestHeaders?: HeaderEdits; responseHeaders?: HeaderEdits },
): ExplainedDestination {
  const shared = backendByName(mesh, name);
  const own = callerOverrides.find((b) => b.name === name);
  const b = own ?? shared;
  return {
    backend: name,
    ...splitName(name),
    weightPercent: Math.round(weight) / 100,
    endpoints: shared ? endpointCount(shared) : 0,
    connectTimeoutMs: b?.connectTimeoutMs ?? mesh.settings.connectTimeoutMs,
    loadBalancing: b?.loadBalancing ?? { policy: 'round_robin' },
    ...(b?.limits ? { limits: b.limits } : {}),
    ...(b?.outlierDetection ? { outlierDetection: b.outlierDetection } : {}),
    ...(edits.requestHeaders ? { requestHeaders: edits.requestHeaders } : {}),
    ...(edits.responseHeaders ? { responseHeaders: edits.responseHeaders } : {}),
    callerOverride: own !== undefined,
  };
}

function rewrite(route: Route, r: Request): string | undefined {
  if (route.prefixRewrite === undefined) return undefined;
  const p = route.match.path;
  // Envoy swaps the matched prefix (or the whole path of an exact match) for the rewrite.
  if (p === undefined) return route.prefixRewrite + r.fullPath.slice(1);
  if (p.kind === 'prefix') return route.prefixRewrite + r.fullPath.slice(p.value.length);
  if (p.kind === 'exact') return route.prefixRewrite + r.fullPath.slice(r.path.length);
  return undefined;
}

function matchedRoute(
  route: Route,
  index: number,
  count: number,
  protocol: Protocol,
  r: Request,
): MatchedRoute {
  const rewritten = rewrite(route, r);
  return {
    index,
    count,
    match: route.match,
    description: describeMatch(route.match),
    timeout:
      route.timeoutMs !== undefined
        ? { ms: route.timeoutMs, from: 'route' }
        : { ms: protocol === 'grpc' ? 0 : ENVOY_DEFAULT_TIMEOUT_MS, from: 'default' },
    ...(route.idleTimeoutMs !== undefined ? { idleTimeoutMs: route.idleTimeoutMs } : {}),
    ...(route.retry ? { retry: route.retry } : {}),
    ...(route.prefixRewrite !== undefined ? { prefixRewrite: route.prefixRewrite } : {}),
    ...(rewritten !== undefined ? { rewrittenPath: rewritten } : {}),
    ...(route.requestHeaders ? { requestHeaders: route.requestHeaders } : {}),
    ...(route.responseHeaders ? { responseHeaders: route.responseHeaders } : {}),
    ...(route.fault ? { fault: route.fault } : {}),
    ...(route.mirror
      ? {
          mirror: {
            backend: route.mirror.backend,
            ...splitName(route.mirror.backend),
            percent: route.mirror.percent,
          },
        }
      : {}),
    hashPolicies: route.hashPolicies,
  };
}

/** What `question.from`'s sidecar does with the request, and whether `question.to` lets it in. */
export function explainRoute(mesh: Mesh, question: RouteQuestion): RouteExplanation {
  const { from, to } = question;
  for (const [flag, value] of [
    ['from', from],
    ['to', to],
  ] as const) {
    if (typeof value !== 'string' || value === '') {
      throw new ExplainError(
        'invalid',
        `${flag}: expected a service name, got ${q(String(value ?? ''))}`,
      );
    }
  }
  const service = meshService(mesh, to);
  if (!service) {
    throw new ExplainError('unknown-service', `to: service ${q(to)} is not in the mesh`);
  }
  const r = toRequest(question);
  const caller = meshService(mesh, from);
  const overrides = caller?.upstreamOverrides ?? [];
  const notes: string[] = [];
  if (!caller) {
    notes.push(
      `${from} is not in the catalog: its sidecar gets the shared routes, and no upstream settings of its own`,
    );
  }

  const scope = callerScope(mesh, from, to, service.protocol);
  if (scope.note) notes.push(scope.note);

  const skipped: SkippedRoute[] = [];
  let route: MatchedRoute | undefined;
  let destinations: ExplainedDestination[] = [];
  if (service.protocol === 'tcp') {
    const main = service.backends[0];
    if (main) destinations = [explainDestination(mesh, overrides, main.name, 10_000, {})];
    notes.push(
      service.outboundPort !== undefined
        ? `${to} is tcp (from ${service.protocolFrom}): no HTTP routing; connections to the local port ${service.outboundPort} go to ${main?.name ?? to}`
        : `${to} is tcp (from ${service.protocolFrom}) and has no outbound port: sidecars get no local listener for it`,
    );
  } else {
    const routes = service.routes;
    for (let i = 0; i < routes.length; i++) {
      const candidate = routes[i]!;
      const t = testRoute(candidate.match, r);
      if (!t.ok) {
        skipped.push({ index: i, match: describeMatch(candidate.match), reason: t.reason });
        continue;
      }
      route = matchedRoute(candidate, i, routes.length, service.protocol, r);
      destinations = candidate.destinations.map((d) =>
        explainDestination(mesh, overrides, d.backend, d.weight, d),
      );
      break;
    }
    if (!route) notes.push(`no route of ${to} matches: Envoy answers 404`);
  }
  for (const d of destinations) {
    if (d.endpoints === 0) {
      notes.push(`${d.backend} has no endpoints that receive traffic: requests sent there get 503`);
    }
  }

  for (const p of mesh.problems) {
    if (p.name === to) notes.push(`config problem: ${p.kind}/${p.name}: ${p.message}`);
  }
  const authorization = authorize(mesh, service, from, r);
  if (!authorization.enforced && (authorization.policy || authorization.intentions)) {
    notes.push(
      'mTLS is off: sidecars cannot identify callers, so no RBAC filter applies this decision',
    );
  }
  if (authorization.enforced && !service.instances.some((i) => i.sidecarPort !== undefined)) {
    notes.push(`no instance of ${to} has a sidecar: nothing enforces the authorization decision`);
  }
  return {
    from,
    to,
    request: { method: r.method, path: r.fullPath, headers: Object.fromEntries(r.headers) },
    protocol: service.protocol,
    protocolFrom: service.protocolFrom,
    skipped,
    ...(route ? { route } : {}),
    destinations,
    authorization,
    ...(scope.answer ? { scope: scope.answer } : {}),
    notes,
  };
}

/** Names listed in a note at most; a policy scope may hold hundreds. */
const SCOPE_NAMES_SHOWN = 10;

/** Whether `to` is in `from`'s scope, and a note when it is not (the sidecar's 404). */
function callerScope(
  mesh: Mesh,
  from: string,
  to: string,
  protocol: Protocol,
): { answer?: RouteExplanation['scope']; note?: string } {
  const scope = proxyScope(mesh, from);
  if (scope.from === 'all' || scope.services === undefined) return {};
  const reachable = scope.services.includes(to);
  const answer = { from: scope.from, reachable };
  if (reachable) return { answer };
  const names = scope.services.slice(0, SCOPE_NAMES_SHOWN).join(', ');
  const more = scope.services.length - SCOPE_NAMES_SHOWN;
  const held =
    scope.services.length === 0 ? 'no service' : `${names}${more > 0 ? ` and ${more} more` : ''}`;
  const why =
    scope.from === 'declared'
      ? `its declared upstreams and what they route to: ${held}`
      : `what the policy and intentions let it call: ${held}`;
  const effect =
    protocol === 'tcp'
      ? `${from}'s sidecar has no listener for ${to}`
      : `${from}'s sidecar has no route for ${to} and answers 404`;
  return { answer, note: `${to} is outside the scope of ${from} (${why}): ${effect}` };
}
