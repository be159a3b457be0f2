// `lucid-mesh status`: every connected proxy and its sync state per type (like istioctl proxy-status).
import { Command } from 'commander';
import type { ProxyRow } from '../admin/proxies.js';
import { getJson, runOperator, serverOption } from './admin-client.js';

const TYPES = ['clusters', 'endpoints', 'listeners', 'routes', 'secrets'] as const;
const HEADERS = ['NODE', 'SERVICE', 'MODE', 'CDS', 'EDS', 'LDS', 'RDS', 'SDS', 'CONNECTED'];

export function statusCommand(): Command {
  return new Command('status')
    .description(
      'Show every connected proxy and, per resource type, whether it accepted what it was sent.',
    )
    .addOption(serverOption())
    .option('--json', 'print the raw JSON of GET /v1/proxies', false)
    .addHelpText(
      'after',
      '\nStates: SYNCED (sent and ACKed), STALE (sent, not yet ACKed), NACKED (rejected; the error is shown),\nNOT_SENT (subscribed, nothing sent yet), - (not subscribed).',
    )
    .action(async (flags: { server: string; json: boolean }) =>
      runOperator('status', async () => {
        const { proxies } = await getJson<{ proxies: ProxyRow[] }>(flags.server, '/v1/proxies');
        if (flags.json) {
          process.stdout.write(`${JSON.stringify({ proxies }, null, 2)}\n`);
          return;
        }
        process.stdout.write(renderStatus(proxies));
      }),
    );
}

export function renderStatus(proxies: ProxyRow[]): string {
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
    for (const t of TYPES) {
      const row = p.types[t];
      if (row?.status === 'NACKED')
        out += `\n${p.nodeId} ${t} NACKED version ${row.sentVersion ?? '?'}: ${row.nackError ?? ''}\n`;
    }
  }
  return out;
}
