// The CA state store's health for `lucid-mesh status`, read from the control plane's /metrics
// (lucid_mesh_state_healthy / lucid_mesh_state_leader, present with `--state consul|etcd`).
import { getText, type AdminConnection } from './admin-client.js';

export interface StateStatus {
  readonly store: string;
  readonly healthy: boolean;
  readonly leader: boolean;
}

/** undefined: the replica keeps its CA state in --data-dir (or predates the metrics). */
export async function fetchStateStatus(conn: AdminConnection): Promise<StateStatus | undefined> {
  const metrics = await getText(conn, '/metrics');
  const sample = (name: string) =>
    new RegExp(`^lucid_mesh_${name}\\{store="((?:[^"\\\\]|\\\\.)*)"\\} (\\S+)$`, 'm').exec(metrics);
  const healthy = sample('state_healthy');
  if (!healthy) return undefined;
  const leader = sample('state_leader');
  return {
    store: healthy[1]!.replace(/\\(.)/g, '$1'),
    healthy: healthy[2] === '1',
    leader: leader?.[2] === '1',
  };
}

export function renderStateStatus(state: StateStatus | undefined): string {
  if (!state) return '';
  const health = state.healthy
    ? 'reachable'
    : 'UNREACHABLE (serving and issuing leaves from what this replica holds; rotation waits)';
  return `\nCA state: ${state.store}: ${health}; ${state.leader ? 'this replica leads' : 'follower'}\n`;
}
