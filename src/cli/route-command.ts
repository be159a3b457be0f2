// `lucid-mesh route explain --from web --to api --path /admin [--method GET] [--header k=v]...`:
// which route of `api` the request from `web`'s sidecar matches, where it goes (backends and
// weights, timeout, retries, rewrite, fault, mirror), and whether `api`'s RBAC allows it.
// Against a running control plane (GET /v1/route/explain, --server), or offline from files
// (--catalog [--traffic] [--policy]: the mesh is built here as the control plane would).
// Exit codes: 0 explained (whatever the decision), 1 control plane unreachable or refusing,
// 2 invalid files or arguments.
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { DocumentError, parseCatalogText } from '../catalog/load-document.js';
import { buildMesh } from '../mesh/build.js';
import { explainRoute, ExplainError, type RouteExplanation } from '../mesh/explain.js';
import { DEFAULT_MESH_SETTINGS, SCOPE_MODES, type Mesh, type ScopeMode } from '../mesh/types.js';
import { DEFAULT_NAMESPACE, DEFAULT_TRUST_DOMAIN, parsePolicyText } from '../policy/schema.js';
import { parseTrafficText } from '../traffic/traffic-file.js';
import { EMPTY_TRAFFIC, type HeaderEdits } from '../traffic/types.js';
import { AdminHttpError, adminConnection, getJson, withOperatorOptions } from './admin-client.js';
import {
  InvalidInput,
  backendSettings,
  describeFault,
  describeRetry,
  formatMs,
  formatPercent,
  resolveIo,
  runCommandBody,
  type CommandIo,
} from './mesh-command.js';
import { choiceOption, durationMsOption } from './options.js';
import { INTENTION_DEFAULTS, scopeMode } from './traffic-flags.js';
import { withUsageErrors } from './usage.js';

const PREFIX = 'lucid-mesh route';

interface ExplainFlags {
  from: string;
  to: string;
  path: string;
  method?: string;
  header: string[];
  server: string;
  catalog?: string;
  traffic?: string;
  policy?: string;
  intentionsDefault: (typeof INTENTION_DEFAULTS)[number];
  connectTimeoutMs: number;
  scope?: ScopeMode;
  json: boolean;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** `k=v` (or `k:v`) → [name, value]. */
function parseHeaderFlag(text: string): [string, string] {
  const eq = text.indexOf('=');
  const colon = text.indexOf(':', text.startsWith(':') ? 1 : 0);
  const at = eq > 0 ? eq : colon;
  if (at <= 0) {
    throw new InvalidInput([
      `${PREFIX}: --header: expected name=value, got ${JSON.stringify(text)}`,
    ]);
  }
  return [text.slice(0, at).trim(), text.slice(at + 1).trim()];
}

function read(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new InvalidInput([
      `${PREFIX}: cannot read ${what} ${JSON.stringify(file)}: ${e.code ?? e.message}`,
    ]);
  }
}

function parsed<T>(file: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    if (err instanceof DocumentError)
      throw new InvalidInput(err.problems.map((p) => `${file}: ${p}`));
    throw err;
  }
}

/** The mesh the control plane would build from these files (mTLS assumed: RBAC needs it). */
export function offlineMesh(flags: {
  catalog: string;
  traffic?: string;
  policy?: string;
  intentionsDefault: 'allow' | 'deny';
  connectTimeoutMs: number;
  scope?: ScopeMode;
}): Mesh {
  const catalog = parsed(flags.catalog, () =>
    parseCatalogText(read(flags.catalog, 'catalog'), flags.catalog),
  );
  const traffic = flags.traffic
    ? parsed(flags.traffic, () => parseTrafficText(read(flags.traffic!, 'traffic'), flags.traffic!))
    : EMPTY_TRAFFIC;
  const policy = flags.policy
    ? parsed(flags.policy, () => parsePolicyText(read(flags.policy!, 'policy'), flags.policy!))
    : undefined;
  return buildMesh({
    catalog,
    traffic,
    ...(policy ? { policy } : {}),
    settings: {
      ...DEFAULT_MESH_SETTINGS,
      intentionsDefault: flags.intentionsDefault,
      connectTimeoutMs: flags.connectTimeoutMs,
      scope: scopeMode(flags.scope, policy !== undefined),
      mtls: {
        trustDomain: policy?.trustDomain ?? DEFAULT_TRUST_DOMAIN,
        namespace: policy?.namespace ?? DEFAULT_NAMESPACE,
      },
    },
  });
}

function edits(label: string, e: HeaderEdits | undefined): string[] {
  if (!e) return [];
  const parts = [
    ...Object.entries(e.Add).map(([k, v]) => `add ${k}: ${v}`),
    ...Object.entries(e.Set).map(([k, v]) => `set ${k}: ${v}`),
    ...e.Remove.map((k) => `remove ${k}`),
  ];
  return parts.length > 0 ? [`${label}: ${parts.join(', ')}`] : [];
}

/** The explanation as text: request, routes tried, the match and its action, authorization. */
export function renderExplanation(e: RouteExplanation): string {
  const out: string[] = [];
  out.push(
    `${e.request.method} ${e.request.path}  ${e.from} → ${e.to} (${e.protocol}, from ${e.protocolFrom})`,
  );
  for (const h of Object.entries(e.request.headers)) out.push(`  header ${h[0]}: ${h[1]}`);
  for (const s of e.skipped) out.push(`skipped route [${s.index}] ${s.match}: ${s.reason}`);
  const r = e.route;
  if (r) {
    out.push(`matched route [${r.index}] of ${r.count}: ${r.description}`);
  }
  for (const d of e.destinations) {
    const subset = d.subset !== undefined ? `, subset ${d.subset}` : '';
    out.push(
      `  → ${d.backend} ${formatPercent(d.weightPercent)}  (service ${d.service}${subset}; ` +
        `${d.endpoints} endpoint${d.endpoints === 1 ? '' : 's'}; ${backendSettings(d)}` +
        `${d.callerOverride ? `; ${e.from}'s own upstream settings` : ''})`,
    );
    out.push(
      ...edits('    request headers', d.requestHeaders),
      ...edits('    response headers', d.responseHeaders),
    );
  }
  if (r) {
    out.push(
      `  timeout: ${r.timeout.ms === 0 ? 'none' : formatMs(r.timeout.ms)}${r.timeout.from === 'default' ? ' (Envoy default)' : ''}` +
        `${r.idleTimeoutMs !== undefined ? `, idle ${formatMs(r.idleTimeoutMs)}` : ''}`,
    );
    out.push(`  retries: ${r.retry ? describeRetry(r.retry).replace(/^retries /, '') : 'none'}`);
    if (r.prefixRewrite !== undefined) {
      out.push(
        `  rewrite: prefix → ${r.prefixRewrite}${r.rewrittenPath !== undefined ? ` (upstream path ${r.rewrittenPath})` : ''}`,
      );
    }
    if (r.fault) out.push(`  fault: ${describeFault(r.fault)}`);
    if (r.mirror) out.push(`  mirror: ${r.mirror.backend} for ${formatPercent(r.mirror.percent)}`);
    out.push(
      ...edits('  request headers', r.requestHeaders),
      ...edits('  response headers', r.responseHeaders),
    );
    if (r.hashPolicies.length > 0) {
      out.push(
        `  hash on: ${r.hashPolicies.map((h) => (h.SourceIP ? 'source IP' : `${h.Field} ${h.FieldValue ?? ''}`)).join(', ')}`,
      );
    }
  }
  const a = e.authorization;
  const both = a.policy !== undefined && a.intentions !== undefined;
  const how = [
    ...(both && a.decision === 'deny' ? ['deny wins'] : []),
    ...(a.enforced || !(a.policy || a.intentions) ? [] : ['not enforced']),
  ];
  out.push(
    `authorization: ${a.decision}${how.length > 0 ? ` (${how.join(', ')})` : ''}` +
      `${a.policy || a.intentions ? '' : `: ${a.reason}`}`,
  );
  if (a.policy) out.push(`  policy: ${a.policy.decision}: ${a.policy.reason}`);
  if (a.intentions) out.push(`  intentions: ${a.intentions.decision}: ${a.intentions.reason}`);
  for (const n of e.notes) out.push(`note: ${n}`);
  return `${out.join('\n')}\n`;
}

export function routeCommand(io: CommandIo = {}): Command {
  const out = resolveIo(io);
  const configure = (cmd: Command): Command => withUsageErrors(cmd, PREFIX, out);

  const explain = withUsageErrors(
    withOperatorOptions(
      new Command('explain')
        .description(
          "Say which route of TO a request from FROM's sidecar matches, where it goes (weights, " +
            'timeout, retries, rewrite, fault, mirror) and whether RBAC allows it. Against a ' +
            'running control plane, or offline with --catalog [--traffic] [--policy].',
        )
        .addOption(new Option('--from <service>', 'calling service').makeOptionMandatory())
        .addOption(new Option('--to <service>', 'called service').makeOptionMandatory())
        .addOption(
          new Option('--path <path>', 'request path, may include ?query').makeOptionMandatory(),
        )
        .option('--method <method>', 'request method (default GET)')
        .option('--header <name=value>', 'a request header (repeatable)', collect, []),
    )
      .option('--catalog <file>', 'offline: build the mesh from this catalog file')
      .option('--traffic <file>', 'offline: traffic configuration (Consul config entries)')
      .option('--policy <file>', 'offline: authorization policy')
      .addOption(
        new Option(
          '--intentions-default <action>',
          'offline: what intentions do with callers none names (as serve)',
        )
          .env('LUCID_INTENTIONS_DEFAULT')
          .default('allow')
          .argParser(choiceOption('--intentions-default', INTENTION_DEFAULTS)),
      )
      .addOption(
        new Option(
          '--connect-timeout-ms <ms>',
          'offline: default upstream connect timeout (as serve)',
        )
          .env('LUCID_CONNECT_TIMEOUT_MS')
          .default(5000)
          .argParser(durationMsOption('--connect-timeout-ms', 600_000)),
      )
      .addOption(
        new Option(
          '--scope <mode>',
          "offline: which services each sidecar receives, as serve --scope (all, declared, policy; default: policy with --policy, else all): a destination outside the caller's scope is said to get 404",
        )
          .env('LUCID_SCOPE')
          .argParser(choiceOption('--scope', SCOPE_MODES)),
      )
      .option('--json', 'print the explanation as JSON', false)
      .action(async (flags: ExplainFlags, cmd: Command) =>
        runCommandBody(out, 'route explain', async () => {
          const headers: Record<string, string[]> = {};
          for (const h of flags.header) {
            const [name, value] = parseHeaderFlag(h);
            (headers[name.toLowerCase()] ??= []).push(value);
          }
          let explanation: RouteExplanation;
          if (flags.catalog === undefined) {
            for (const f of ['traffic', 'policy', 'scope'] as const) {
              // LUCID_SCOPE is serve's too: only the flag itself asks for offline use.
              if (flags[f] !== undefined && cmd.getOptionValueSource(f) !== 'env') {
                throw new InvalidInput([
                  `${PREFIX}: --${f} is for offline use: add --catalog FILE`,
                ]);
              }
            }
            const query = new URLSearchParams({ from: flags.from, to: flags.to, path: flags.path });
            if (flags.method) query.set('method', flags.method);
            for (const [name, values] of Object.entries(headers)) {
              for (const v of values) query.append('header', `${name}:${v}`);
            }
            try {
              explanation = await getJson<RouteExplanation>(
                adminConnection(cmd),
                `/v1/route/explain?${query}`,
              );
            } catch (err) {
              // The server judged the arguments (a service not in the mesh, a bad path): the
              // same usage error, exit 2, as offline.
              const judged =
                err instanceof AdminHttpError &&
                err.detail !== '' &&
                (err.status === 400 ||
                  (err.status === 404 && !err.detail.startsWith('no such endpoint')));
              if (judged) {
                throw new InvalidInput([`${PREFIX}: ${(err as AdminHttpError).detail}`]);
              }
              throw err;
            }
          } else {
            if (cmd.getOptionValueSource('server') === 'cli') {
              throw new InvalidInput([
                `${PREFIX}: --server and --catalog: choose one (a running control plane, or files)`,
              ]);
            }
            const mesh = offlineMesh({ ...flags, catalog: flags.catalog });
            try {
              const e = explainRoute(mesh, { ...flags, headers });
              explanation = {
                ...e,
                notes: [
                  ...e.notes,
                  'offline: assumes the control plane runs with mTLS (RBAC is only applied with it)',
                ],
              };
            } catch (err) {
              if (err instanceof ExplainError)
                throw new InvalidInput([`${PREFIX}: ${err.message}`]);
              throw err;
            }
          }
          out.stdout(
            flags.json
              ? `${JSON.stringify(explanation, null, 2)}\n`
              : renderExplanation(explanation),
          );
        }),
      ),
    `${PREFIX} explain`,
    out,
  );

  return configure(
    new Command('route')
      .description('Explain how the mesh routes a request (see docs/operators-traffic.md).')
      .addHelpText(
        'after',
        '\nExit codes: 0 explained (whatever the decision), 1 control plane unreachable, 2 invalid files or arguments.\n' +
          '\nExamples:\n' +
          '  lucid-mesh route explain --from web --to api --path /admin --header x-canary=1\n' +
          '  lucid-mesh route explain --from web --to api --path /admin --catalog catalog.yaml --traffic traffic.yaml\n',
      ),
  ).addCommand(explain);
}
