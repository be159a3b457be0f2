// Proxies: every connected proxy and its sync state per resource type (GET /v1/proxies).
import { api, type ProxyRow } from '../api.js';
import { ago } from '../format.js';
import { useNow, usePoll } from '../use-poll.js';

const KINDS = ['listeners', 'routes', 'virtualHosts', 'clusters', 'endpoints', 'secrets'] as const;

/** The most recent ACK over all types. */
function lastAck(row: ProxyRow): string | undefined {
  return Object.values(row.types)
    .map((t) => t.ackedAt)
    .filter((t): t is string => t !== undefined)
    .sort()
    .at(-1);
}

/** Whether a proxy refused its configuration (a NACK) or could not be given one (build error). */
export function refused(row: ProxyRow): boolean {
  return (
    row.buildError !== undefined || Object.values(row.types).some((t) => t.status === 'NACKED')
  );
}

export function SyncCell({ row, kind }: { row: ProxyRow; kind: string }) {
  const t = row.types[kind];
  const status = t?.status ?? 'NOT_SENT';
  return (
    <td class={`sync ${status}`} data-kind={kind} title={t?.nackError ?? ''}>
      <span class="state">{status}</span>
      {t?.nackError && <div class="nack-error">{t.nackError}</div>}
    </td>
  );
}

export function ProxiesView() {
  const rows = usePoll(api.proxies, 1000);
  const now = useNow();
  // Those that refused their configuration first: in a big mesh one NACK sorted by node id
  // sits pages down the list.
  const list = rows.data && [
    ...rows.data.filter((r) => refused(r)),
    ...rows.data.filter((r) => !refused(r)),
  ];
  const refusing = rows.data?.filter((r) => refused(r)).length ?? 0;
  return (
    <main id="proxies-view">
      <h2>Proxies</h2>
      {rows.error && <p class="error">{rows.error}</p>}
      {refusing > 0 && (
        <p class="error refused-summary">
          {refusing} of {rows.data!.length} proxies refused their configuration (NACK) or could not
          be given one: listed first.
        </p>
      )}
      {rows.data && rows.data.length === 0 && <p class="muted">No proxy is connected.</p>}
      {rows.data && rows.data.length > 0 && (
        <table class="proxies">
          <thead>
            <tr>
              <th>node</th>
              <th>service</th>
              <th>mode</th>
              {KINDS.map((k) => (
                <th>{k}</th>
              ))}
              <th>last ACK</th>
              <th>version</th>
            </tr>
          </thead>
          <tbody>
            {list!.map((row) => (
              <tr data-node={row.nodeId}>
                <td>
                  <a href={`#/proxies/${encodeURIComponent(row.nodeId)}`}>{row.nodeId}</a>
                  {row.buildError && <div class="nack-error">{row.buildError.message}</div>}
                </td>
                <td>{row.service}</td>
                <td>{row.mode}</td>
                {KINDS.map((k) => (
                  <SyncCell row={row} kind={k} />
                ))}
                <td>{ago(lastAck(row), now)}</td>
                <td class="mono">{row.types.clusters?.ackedVersion ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </main>
  );
}
