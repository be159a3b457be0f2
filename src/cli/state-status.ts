// The CA state store's health for `lucid-mesh status`, read from the control plane's /metrics
// (lucid_mesh_state_healthy / lucid_mesh_state_leader, present with `--state consul|etcd`), and
// the other replicas serving other mesh settings (lucid_mesh_replica_setting_differs).
import { compareStrings } from '../text-order.js';
import { getText, type AdminConnection } from './admin-client.js';

export interface StateStatus {
  readonly store: string;
  readonly healthy: boolean;
  readonly leader: boolean;
  /** Other live replicas whose mesh settings differ: replica → the settings, sorted. */
  readonly settingsMismatch?: Readonly<Record<string, readonly string[]>>;
}

/** A Prometheus label value as written (backslash escapes). */
const LABEL = '"((?:[^"\\\\]|\\\\.)*)"';
const unescape = (v: string) => v.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));

function settingsMismatch(metrics: string): Record<string, string[]> | undefined {
  const series = new RegExp(
    `^lucid_mesh_replica_setting_differs\\{replica=${LABEL},setting=${LABEL}\\} 1$`,
    'gm',
  );
  const out: Record<string, string[]> = {};
  for (const m of metrics.matchAll(series)) (out[unescape(m[1]!)] ??= []).push(unescape(m[2]!));
  if (Object.keys(out).length === 0) return undefined;
  for (const settings of Object.values(out)) settings.sort(compareStrings);
  return out;
}

/** undefined: the replica keeps its CA state in --data-dir (or predates the metrics). */
export async function fetchStateStatus(conn: AdminConnection): Promise<StateStatus | undefined> {
  const metrics = await getText(conn, '/metrics');
  const sample = (name: string) =>
    new RegExp(`^lucid_mesh_${name}\\{store="((?:[^"\\\\]|\\\\.)*)"\\} (\\S+)$`, 'm').exec(metrics);
  const healthy = sample('state_healthy');
  if (!healthy) return undefined;
  const leader = sample('state_leader');
  const mismatch = settingsMismatch(metrics);
  return {
    store: healthy[1]!.replace(/\\(.)/g, '$1'),
    healthy: healthy[2] === '1',
    leader: leader?.[2] === '1',
    ...(mismatch ? { settingsMismatch: mismatch } : {}),
  };
}

export function renderStateStatus(state: StateStatus | undefined): string {
  if (!state) return '';
  const health = state.healthy
    ? 'reachable'
    : 'UNREACHABLE (serving and issuing leaves from what this replica holds; rotation waits)';
  const line = `\nCA state: ${state.store}: ${health}; ${state.leader ? 'this replica leads' : 'follower'}\n`;
  return line + renderSettingsMismatch(state.settingsMismatch);
}

/** One line: which replicas serve other mesh settings, and which (the values: the log). */
function renderSettingsMismatch(mismatch: StateStatus['settingsMismatch']): string {
  if (!mismatch) return '';
  const replicas = Object.entries(mismatch)
    .sort(([a], [b]) => compareStrings(a, b))
    .map(([replica, settings]) => `${replica} (${settings.join(', ')})`);
  return (
    `Replica settings MISMATCH: ${replicas.join('; ')} serve other mesh settings than this ` +
    "replica: sidecars moving between them flip between configurations (values: this replica's log; docs/ha.md)\n"
  );
}
