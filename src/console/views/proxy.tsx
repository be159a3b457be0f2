// One proxy: its sync state, its last pushes (what they upserted/removed and how the proxy
// answered) and the resources it is served as Envoy JSON (keys redacted by /v1/snapshot).
import { useState } from 'preact/hooks';
import { api, type PushRecord } from '../api.js';
import { ago, clock, json } from '../format.js';
import { useNow, usePoll } from '../use-poll.js';
import { SyncCell } from './proxies.js';

function PushRow({ p }: { p: PushRecord }) {
  const names = p.upserted ?? [];
  return (
    <tr class={`push ${p.outcome}`}>
      <td class="mono">{clock(p.at)}</td>
      <td>{p.type}</td>
      <td class="mono">{p.version}</td>
      <td>
        {p.upserted ? `${names.length} upserted` : `${p.resources} resources`}
        {p.removed.length > 0 && `, ${p.removed.length} removed`}
        {(names.length > 0 || p.removed.length > 0) && (
          <div class="muted">
            {names.map((n) => `+ ${n}`).join('  ')} {p.removed.map((n) => `− ${n}`).join('  ')}
          </div>
        )}
      </td>
      <td>{p.bytes} B</td>
      <td class={`outcome ${p.outcome}`}>
        {p.outcome}
        {p.error && <div class="nack-error">{p.error}</div>}
      </td>
    </tr>
  );
}

export function ProxyView({ node }: { node: string }) {
  const rows = usePoll(api.proxies, 1000);
  const pushes = usePoll(() => api.pushes(node), 1000, node);
  const dump = usePoll(() => api.snapshot(node), 5000, node);
  const [open, setOpen] = useState<string | undefined>();
  const now = useNow();
  const row = rows.data?.find((r) => r.nodeId === node);
  return (
    <main id="proxy-view">
      <h2>
        <a href="#/proxies">Proxies</a> / {node}
      </h2>
      {row ? (
        <table class="proxies">
          <thead>
            <tr>
              <th>service</th>
              <th>mode</th>
              <th>peer</th>
              <th>connected</th>
              {Object.keys(row.types).map((k) => (
                <th>{k}</th>
              ))}
            </tr>
          </thead>
          <tbody>
            <tr data-node={row.nodeId}>
              <td>{row.service}</td>
              <td>{row.mode}</td>
              <td class="mono">{row.peer}</td>
              <td>{ago(row.connectedSince, now)}</td>
              {Object.keys(row.types).map((k) => (
                <SyncCell row={row} kind={k} />
              ))}
            </tr>
          </tbody>
        </table>
      ) : (
        <p class="muted">{rows.data ? `${node} is not connected.` : 'Loading…'}</p>
      )}
      <h3>Last pushes</h3>
      {pushes.error && <p class="error">{pushes.error}</p>}
      <table class="pushes">
        <thead>
          <tr>
            <th>at</th>
            <th>type</th>
            <th>version</th>
            <th>changed</th>
            <th>size</th>
            <th>answer</th>
          </tr>
        </thead>
        <tbody>
          {(pushes.data?.pushes ?? []).map((p) => (
            <PushRow p={p} />
          ))}
        </tbody>
      </table>
      <h3>
        Resources <span class="muted">snapshot {dump.data?.snapshotVersion ?? '—'}</span>
      </h3>
      {dump.error && <p class="error">{dump.error}</p>}
      {Object.entries(dump.data?.resources ?? {}).map(([kind, list]) => (
        <section class="card resources" data-kind={kind}>
          <h4>
            {kind} ({list.length})
          </h4>
          {list.map((r) => {
            const id = `${kind}/${r.name}`;
            return (
              <details
                open={open === id}
                onToggle={(e) => (e.target as HTMLDetailsElement).open && setOpen(id)}
              >
                <summary class="mono">{r.name}</summary>
                <pre>{json(r.resource)}</pre>
              </details>
            );
          })}
        </section>
      ))}
    </main>
  );
}
