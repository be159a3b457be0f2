// `lucid-mesh mesh [--service S] [--json]`: the mesh model of a running control plane (GET
// /v1/mesh), so a user sees what the control plane understood before reading Envoy JSON: per
// service its protocol and where it came from, its backends (endpoints and settings), its routes
// (`match → destination (weight%)` with timeout and retries) and who may call it; then the
// configuration problems and the input lucid-mesh does not implement.
// Also the text helpers `route explain` and `status` share.
import { Command } from 'commander';
import type { ConfigErrors, MeshDump } from '../admin/mesh-endpoints.js';
import { describeMatch, describePermission } from '../mesh/explain.js';
import type { Backend, MeshService, Route } from '../mesh/types.js';
import { problemLabel, type ConfigProblem } from '../traffic/provider.js';
import type { Fault, Unsupported } from '../traffic/types.js';
import { describeUnsupported } from '../traffic/traffic-file.js';
import { AdminFlagError, adminConnection, getJson, withOperatorOptions } from './admin-client.js';
import { EXIT_USAGE_ERROR, withUsageErrors } from './usage.js';

/** Where a command writes and how it exits; tests replace these to run it in-process. */
export interface CommandIo {
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
  /** Must not return (default process.exit). */
  exit?: (code: number) => never;
}

export function resolveIo(io: CommandIo): Required<CommandIo> {
  return {
    stdout: io.stdout ?? ((s: string) => void process.stdout.write(s)),
    stderr: io.stderr ?? ((s: string) => void process.stderr.write(s)),
    exit: io.exit ?? ((code: number): never => process.exit(code)),
  };
}

/** Input that cannot be used (a file, a flag): its lines go to stderr as they are, exit 2. */
export class InvalidInput extends Error {
  override readonly name: string = 'InvalidInput';
  constructor(readonly lines: readonly string[]) {
    super(lines.join('\n'));
  }
}

/**
 * Runs an operator command body: InvalidInput → its lines and exit 2; any other failure (the
 * control plane unreachable or answering an error) → `lucid-mesh <command>: <message>`, exit 1.
 */
export async function runCommandBody(
  io: Required<CommandIo>,
  command: string,
  body: () => Promise<void> | void,
): Promise<void> {
  try {
    await body();
  } catch (err) {
    if (err instanceof InvalidInput) {
      io.stderr(`${err.lines.join('\n')}\n`);
      io.exit(EXIT_USAGE_ERROR);
    }
    if (err instanceof AdminFlagError) {
      io.stderr(`lucid-mesh ${command}: ${err.message}\n`);
      io.exit(EXIT_USAGE_ERROR);
    }
    io.stderr(`lucid-mesh ${command}: ${(err as Error).message}\n`);
    io.exit(1);
  }
}

// ---- text -------------------------------------------------------------------------------------

/** 500ms, 2s, 1.5s, 2m; 0 → "0s". */
export function formatMs(ms: number): string {
  if (ms < 1000) return ms === 0 ? '0s' : `${ms}ms`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  return `${ms / 1000}s`;
}

/** Weight out of 10000 → `90%`, `10.5%`. */
export function formatPercent(percent: number): string {
  return `${Number(percent.toFixed(2))}%`;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

function settings(values: Readonly<Record<string, number | undefined>>, durations: string[] = []) {
  return Object.entries(values)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${durations.includes(k) ? formatMs(v!) : v}`)
    .join(' ');
}

/** Connect timeout, LB policy, limits, outlier detection of a backend, one line. */
export function backendSettings(b: {
  connectTimeoutMs: number;
  loadBalancing: Backend['loadBalancing'];
  limits?: Backend['limits'];
  outlierDetection?: Backend['outlierDetection'];
}): string {
  const { policy, ...lb } = b.loadBalancing;
  const parts = [`connect ${formatMs(b.connectTimeoutMs)}`, policy];
  const lbText = settings(lb);
  if (lbText) parts[1] = `${policy} (${lbText})`;
  if (b.limits) parts.push(`limits ${settings({ ...b.limits })}`);
  if (b.outlierDetection) {
    parts.push(
      `outlier ${settings({ ...b.outlierDetection }, ['intervalMs', 'baseEjectionTimeMs'])}`,
    );
  }
  return parts.join(', ');
}

function backendLine(b: Backend): string {
  const endpoints = b.localities.reduce((n, l) => n + l.endpoints.length, 0);
  return `${b.name}  ${plural(endpoints, 'endpoint')}, ${backendSettings(b)}`;
}

export function describeRetry(r: NonNullable<Route['retry']>): string {
  const parts = [
    `retries ${r.numRetries ?? 1} on ${r.retryOn.join(',')}`,
    ...(r.retriableStatusCodes.length > 0 ? [`codes ${r.retriableStatusCodes.join(',')}`] : []),
    ...(r.backoff
      ? [
          `backoff ${formatMs(r.backoff.baseIntervalMs)}${r.backoff.maxIntervalMs !== undefined ? `..${formatMs(r.backoff.maxIntervalMs)}` : ''}`,
        ]
      : []),
    ...(r.otherHosts ? ['other hosts'] : []),
  ];
  return parts.join(' ');
}

export function describeFault(f: Fault): string {
  return [
    ...(f.Delay
      ? [`delay ${formatMs(f.Delay.Duration)} for ${formatPercent(f.Delay.Percent)}`]
      : []),
    ...(f.Abort ? [`abort ${f.Abort.HttpStatus} for ${formatPercent(f.Abort.Percent)}`] : []),
  ].join(', ');
}

/** `match → dest (weight%), …  timeout …, retries …` */
export function routeLine(route: Route): string {
  const dests = route.destinations
    .map((d) => `${d.backend} (${formatPercent(d.weight / 100)})`)
    .join(', ');
  const extras = [
    ...(route.timeoutMs !== undefined
      ? [`timeout ${route.timeoutMs === 0 ? 'none' : formatMs(route.timeoutMs)}`]
      : []),
    ...(route.idleTimeoutMs !== undefined ? [`idle ${formatMs(route.idleTimeoutMs)}`] : []),
    ...(route.retry ? [describeRetry(route.retry)] : []),
    ...(route.prefixRewrite !== undefined ? [`rewrite ${route.prefixRewrite}`] : []),
    ...(route.fault ? [`fault ${describeFault(route.fault)}`] : []),
    ...(route.mirror
      ? [`mirror ${route.mirror.backend} ${formatPercent(route.mirror.percent)}`]
      : []),
  ];
  return `${describeMatch(route.match)} → ${dests}${extras.length > 0 ? `  ${extras.join(', ')}` : ''}`;
}

function authorizationLines(s: MeshService): string[] {
  const lines: string[] = [];
  const p = s.authorization.policy;
  if (p) {
    const except =
      p.others === 'deny'
        ? p.allowed.length > 0
          ? `, allowed: ${p.allowed.join(', ')}`
          : ''
        : p.denied.length > 0
          ? `, denied: ${p.denied.join(', ')}`
          : '';
    lines.push(`policy: others ${p.others}${except}`);
  }
  const i = s.authorization.intentions;
  if (i) {
    const rules = i.rules.map((r) =>
      r.action !== undefined
        ? `${r.source} ${r.action}`
        : `${r.source} [${(r.permissions ?? []).map(describePermission).join('; ')}]`,
    );
    lines.push(`intentions: ${[...rules, `default ${i.default}`].join('; ')}`);
  }
  return lines.length > 0 ? lines : ['every caller allowed (no policy, no intentions)'];
}

/** Declared upstreams (docs/scoping.md), with their local bind addresses. */
function upstreamsLine(upstreams: NonNullable<MeshService['upstreams']>): string {
  if (upstreams.length === 0) return 'upstreams (declared): none (its sidecars get no service)';
  const names = upstreams.map((u) =>
    u.localBindPort !== undefined
      ? `${u.name} @${u.localBindAddress ?? '127.0.0.1'}:${u.localBindPort}`
      : u.name,
  );
  return `upstreams (declared): ${names.join(', ')}`;
}

export function renderService(s: MeshService): string {
  const out: string[] = [];
  const port = s.outboundPort !== undefined ? `, outbound port ${s.outboundPort}` : '';
  out.push(`${s.name}  ${s.protocol} (from ${s.protocolFrom})${port}`);
  // Where each instance runs, when the mesh has more than one place (dc/region/zone).
  const places = new Set(s.instances.map((i) => JSON.stringify(i.locality)));
  const where = (i: (typeof s.instances)[number]): string =>
    places.size > 1 || i.locality.region !== undefined || i.locality.zone !== undefined
      ? ` @${[i.locality.datacenter, i.locality.region, i.locality.zone].filter((p) => p !== undefined).join('/')}`
      : '';
  const health = s.instances.map((i) => `${i.id} ${i.health}${where(i)}`);
  out.push(`  instances: ${health.length > 0 ? health.join(', ') : 'none'}`);
  if (s.gatewayMode !== undefined) {
    out.push(`  mesh gateway mode: ${s.gatewayMode} (service-defaults, for its sidecars' calls)`);
  }
  out.push('  backends:');
  for (const b of s.backends) out.push(`    ${backendLine(b)}`);
  if (s.routes.length > 0) {
    out.push('  routes:');
    s.routes.forEach((r, i) => out.push(`    [${i}] ${routeLine(r)}`));
  }
  if (s.upstreams !== undefined) out.push(`  ${upstreamsLine(s.upstreams)}`);
  if (s.upstreamOverrides.length > 0) {
    out.push(`  upstream settings of ${s.name}'s own proxies:`);
    for (const b of s.upstreamOverrides) out.push(`    ${b.name}  ${backendSettings(b)}`);
  }
  out.push('  callers:');
  for (const line of authorizationLines(s)) out.push(`    ${line}`);
  return `${out.join('\n')}\n`;
}

export function describeProblem(p: ConfigProblem): string {
  return `${problemLabel(p)}: ${p.message}`;
}

/** The "Config problems" and "Unsupported" sections (status, mesh). */
export function renderConfigErrors(
  errors: { problems: readonly ConfigProblem[]; unsupported: readonly Unsupported[] },
  title = 'Config problems',
): string {
  let out =
    errors.problems.length === 0
      ? `${title}: none\n`
      : `${title} (${errors.problems.length}):\n${errors.problems.map((p) => `  ${describeProblem(p)}\n`).join('')}`;
  if (errors.unsupported.length > 0) {
    out += `Unsupported (${errors.unsupported.length}, not applied):\n${errors.unsupported
      .map((u) => `  ${describeUnsupported(u)}\n`)
      .join('')}`;
  }
  return out;
}

/**
 * The mesh gateways and the mode sidecars use by default: what decides how other datacenters
 * are reached, which the services' sections alone do not show.
 */
export function renderGateways(dump: Pick<MeshDump, 'gateways' | 'gatewayMode'>): string {
  const gateways = dump.gateways ?? [];
  const mode = dump.gatewayMode ?? 'none';
  if (gateways.length === 0 && mode === 'none') return '';
  const lines = gateways.map((g) => {
    const wan =
      g.wanAddress !== g.address || g.wanPort !== g.port
        ? `  wan ${g.wanAddress}:${g.wanPort}`
        : '';
    return `  ${g.id}  ${g.datacenter}  ${g.address}:${g.port}${wan}  ${g.healthy ? 'healthy' : 'critical'}\n`;
  });
  const title = `Mesh gateways (mode ${mode}, proxy-defaults)`;
  return gateways.length === 0 ? `${title}: none\n` : `${title}:\n${lines.join('')}`;
}

export function renderMesh(dump: MeshDump): string {
  const parts = dump.services.map(renderService);
  if (parts.length === 0) parts.push('no services\n');
  return `${parts.join('\n')}\n${renderGateways(dump)}${renderConfigErrors(dump, 'Problems')}`;
}

export function meshCommand(io: CommandIo = {}): Command {
  const out = resolveIo(io);
  return withUsageErrors(
    withOperatorOptions(
      new Command('mesh').description(
        'Show the mesh model of a running control plane: per service its protocol, backends, routes and callers; then the mesh gateways and gateway mode, configuration problems and unsupported input.',
      ),
    )
      .option('--service <name>', 'only this service (and the problems naming it)')
      .option('--json', 'print the raw JSON of GET /v1/mesh', false)
      .action(async (flags: { service?: string; json: boolean }, cmd: Command) =>
        runCommandBody(out, 'mesh', async () => {
          const query = flags.service ? `?${new URLSearchParams({ service: flags.service })}` : '';
          const dump = await getJson<MeshDump>(adminConnection(cmd), `/v1/mesh${query}`);
          out.stdout(flags.json ? `${JSON.stringify(dump, null, 2)}\n` : renderMesh(dump));
        }),
      ),
    'lucid-mesh mesh',
    out,
  );
}

export type { ConfigErrors };
