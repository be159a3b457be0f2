// `lucid-mesh status`: every connected proxy and its sync state per type (like istioctl
// proxy-status), then the configuration problems in force (GET /v1/config/errors).
import { Command } from 'commander';
import type { ConfigErrors } from '../admin/mesh-endpoints.js';
import type { ProxyRow } from '../admin/proxies.js';
import { adminConnection, getJson, withOperatorOptions } from './admin-client.js';
import { renderConfigErrors, resolveIo, runCommandBody, type CommandIo } from './mesh-command.js';
import { fetchStateStatus, renderStateStatus } from './state-status.js';
import { tokenExpiryNote } from './token-expiry-note.js';

const TYPES = ['clusters', 'endpoints', 'listeners', 'routes', 'virtualHosts', 'secrets'] as const;
const HEADERS = ['NODE', 'SERVICE', 'MODE', 'CDS', 'EDS', 'LDS', 'RDS', 'VHDS', 'SDS', 'CONNECTED'];

export function statusCommand(io: CommandIo = {}): Command {
  const out = resolveIo(io);
  return withOperatorOptions(
    new Command('status').description(
      'Show every connected proxy and, per resource type, whether it accepted what it was sent; then the configuration problems in force.',
    ),
  )
    .option(
      '--json',
      'print the raw JSON of GET /v1/proxies, with GET /v1/config/errors as "config"',
      false,
    )
    .addHelpText(
      'after',
      '\nStates: SYNCED (sent and ACKed), STALE (sent, not yet ACKed), NACKED (rejected; the error is shown),\nNOT_SENT (subscribed, nothing sent yet), - (not subscribed).\n' +
        'Config problems: traffic entries applied in part or not at all (and what was done instead),\n' +
        'a discovery source whose last change was rejected (an invalid catalog edit, a backend down:\n' +
        'the last good catalog stays in force), and input lucid-mesh does not implement.\n' +
        'A proxy whose token has expired, or expires within 6 h, is pointed out: its stream stays open, but\n' +
        'its next reconnect is refused (then no config, no certificate renewals) until it gets a new token.\n' +
        'With a shared CA state store (serve --state consul|etcd): whether it is reachable, and the other\n' +
        'replicas that serve other mesh settings than this one (which settings; docs/ha.md).',
    )
    .action(async (flags: { json: boolean }, cmd: Command) =>
      runCommandBody(out, 'status', async () => {
        const conn = adminConnection(cmd);
        const { proxies } = await getJson<{ proxies: ProxyRow[] }>(conn, '/v1/proxies');
        // A control plane from before /v1/config/errors: the proxies still show.
        const config = await getJson<ConfigErrors>(conn, '/v1/config/errors').catch(
          (err: Error) => err,
        );
        // With a shared CA state store (serve --state consul|etcd): whether it is reachable, and
        // the replicas serving other mesh settings.
        const state = await fetchStateStatus(conn).catch(() => undefined);
        if (flags.json) {
          const extra = {
            ...(config instanceof Error ? {} : { config }),
            ...(state ? { state } : {}),
          };
          out.stdout(`${JSON.stringify({ proxies, ...extra }, null, 2)}\n`);
          return;
        }
        out.stdout(renderStatus(proxies));
        out.stdout(
          `\n${config instanceof Error ? `Config problems: unknown (${config.message})\n` : renderConfigErrors(config)}`,
        );
        out.stdout(renderStateStatus(state));
      }),
    );
}

/** Names of a scope shown per proxy: a policy scope may hold most of a mesh of thousands. */
export const SCOPE_NAMES_SHOWN = 20;

function scopeNames(services: readonly string[]): string {
  if (services.length === 0) return 'no services';
  const more = services.length - SCOPE_NAMES_SHOWN;
  if (more <= 0) return services.join(', ');
  return `${services.slice(0, SCOPE_NAMES_SHOWN).join(', ')} and ${more} more (${services.length} services; all of them: --json)`;
}

export function renderStatus(proxies: ProxyRow[], now = Date.now()): string {
  if (proxies.length === 0) return 'no proxies connected\n';
  const rows = proxies.map((p) => [
    p.nodeId,
    p.service || '-',
    p.mode,
    ...TYPES.map((t) => p.types[t]?.status ?? '-'),
    p.connectedSince,
  ]);
  const widths = HEADERS.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    `${cells
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd()}\n`;
  let out = line(HEADERS) + rows.map(line).join('');
  for (const p of proxies) {
    if (p.scope) out += `\n${p.nodeId} scope (${p.scope.from}): ${scopeNames(p.scope.services)}\n`;
    const token = tokenExpiryNote(p, now);
    if (token) out += `\n${token}\n`;
    if (p.buildError) {
      // A proxy whose first build failed (a gateway not in the catalog yet) has nothing to keep.
      const held = TYPES.some((t) => p.types[t]?.ackedVersion !== undefined)
        ? 'keeps its last good config'
        : 'has no config yet';
      out += `\n${p.nodeId} BUILD ERROR since ${p.buildError.since} (${held}): ${p.buildError.message}\n`;
    }
    for (const t of TYPES) {
      const row = p.types[t];
      if (row?.status === 'NACKED')
        out += `\n${p.nodeId} ${t} NACKED version ${row.sentVersion ?? '?'}: ${row.nackError ?? ''}\n`;
    }
  }
  return out;
}
