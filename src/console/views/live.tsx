// Live: the event tail (snapshot changes with field-level diffs, pushes, ACKs, NACKs) as it
// happens, filterable by node and type, and the convergence of the last changes as a chart.
import { useEffect, useState } from 'preact/hooks';
import { api, followEvents, type MeshEvent } from '../api.js';
import { clock } from '../format.js';
import { usePoll } from '../use-poll.js';
import { ConvergenceChart } from './convergence-chart.js';

const KEEP = 300;
const TYPES = ['', 'listeners', 'routes', 'virtualHosts', 'clusters', 'endpoints', 'secrets'];

function matches(e: MeshEvent, node: string, type: string): boolean {
  if (e.event === 'snapshot') {
    return (
      (!node || e.proxies.includes(node)) && (!type || e.resources.some((r) => r.type === type))
    );
  }
  if (node && e.node !== node) return false;
  return !type || !('type' in e) || e.type === type;
}

/** A field's value as `lucid-mesh tail` shows it: JSON, or (none). */
const show = (v: unknown): string => (v === undefined ? '(none)' : JSON.stringify(v));

function EventRow({ e, type }: { e: MeshEvent; type: string }) {
  if (e.event === 'snapshot') {
    const resources = e.resources.filter((r) => !type || r.type === type);
    return (
      <li class="event snapshot">
        <span class="mono">{clock(e.at)}</span> <b>snapshot</b> {e.previous ?? '∅'} → {e.version}
        <ul>
          {resources.map((r) => (
            <li class={`change ${r.change}`} data-resource={`${r.type}/${r.name}`}>
              {r.change === 'added' ? '+' : r.change === 'removed' ? '−' : '~'} {r.type}/{r.name}{' '}
              {r.change}
              {r.fields.length > 0 && (
                <ul class="fields mono">
                  {r.fields.map((f) => (
                    <li>
                      {f.path}: {show(f.from)} → {show(f.to)}
                    </li>
                  ))}
                </ul>
              )}
            </li>
          ))}
        </ul>
      </li>
    );
  }
  const detail =
    e.event === 'push'
      ? `${e.node} ${e.type} ${e.version} (${e.resources} resources, ${e.bytes} B)`
      : e.event === 'ack'
        ? `${e.node} ${e.type} ${e.version}`
        : e.event === 'nack'
          ? `${e.node} ${e.type}: ${e.error}`
          : `${e.node} (${e.mode})${e.reason ? `: ${e.reason}` : ''}`;
  return (
    <li class={`event ${e.event}`}>
      <span class="mono">{clock(e.at)}</span> <b>{e.event.toUpperCase()}</b> {detail}
    </li>
  );
}

export function LiveView() {
  const [events, setEvents] = useState<MeshEvent[]>([]);
  const [stream, setStream] = useState<{ state: string; error?: string }>({ state: 'connecting' });
  const [node, setNode] = useState('');
  const [type, setType] = useState('');
  const convergence = usePoll(api.convergence, 2000);
  useEffect(
    () =>
      followEvents(
        (e) => setEvents((list) => [e, ...list].slice(0, KEEP)),
        (state, error) => setStream({ state, error }),
      ),
    [],
  );
  const nodes = [...new Set(events.flatMap((e) => ('node' in e && e.node ? [e.node] : [])))].sort();
  const shown = events.filter((e) => matches(e, node, type));
  return (
    <main id="live-view">
      <h2>
        Live <span class={`stream ${stream.state}`}>{stream.state}</span>
        {stream.error && <span class="error"> {stream.error}</span>}
      </h2>
      <h3>Convergence of the last changes</h3>
      <ConvergenceChart points={convergence.data ?? []} />
      <div class="filters">
        <label>
          node{' '}
          <select
            id="filter-node"
            value={node}
            onChange={(e) => setNode((e.target as HTMLSelectElement).value)}
          >
            <option value="">all</option>
            {nodes.map((n) => (
              <option value={n}>{n}</option>
            ))}
          </select>
        </label>
        <label>
          type{' '}
          <select
            id="filter-type"
            value={type}
            onChange={(e) => setType((e.target as HTMLSelectElement).value)}
          >
            {TYPES.map((t) => (
              <option value={t}>{t || 'all'}</option>
            ))}
          </select>
        </label>
        <span class="muted">
          {shown.length} of {events.length} events
        </span>
      </div>
      <ul class="events">
        {shown.map((e) => (
          <EventRow e={e} type={type} />
        ))}
      </ul>
    </main>
  );
}
