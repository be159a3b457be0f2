// Metrics of a CA state store shared by replicas (`serve --state consul|etcd`): whether this
// replica reaches it, whether it leads (creates the first root, drops retired roots), and
// whether the other replicas serve the same mesh settings.
import { Gauge, type Registry } from 'prom-client';
import type { SharedState } from '../ca/open.js';
import type { ReplicaSettingsMonitor } from '../ca/state/replica-settings.js';
import { METRIC_PREFIX } from './metrics.js';

export function registerStateMetrics(registry: Registry, shared: SharedState): void {
  const store = shared.store.location;
  new Gauge({
    name: `${METRIC_PREFIX}state_healthy`,
    help: '1 while the shared CA state store answers (0: serving from what this replica holds)',
    labelNames: ['store'],
    registers: [registry],
    collect() {
      this.set({ store }, shared.store.health.healthy ? 1 : 0);
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}state_leader`,
    help: '1 while this replica leads the replicas sharing the CA state',
    labelNames: ['store'],
    registers: [registry],
    collect() {
      this.set({ store }, shared.leadership.isLeader() ? 1 : 0);
    },
  });
}

/**
 * How many other live replicas serve other mesh settings than this one (docs/ha.md), and which
 * replica differs in which setting (what `lucid-mesh status` prints: state-status.ts). Series
 * are bounded by replicas × settings (a dozen flags); the values stay in the log.
 */
export function registerReplicaSettingsMetric(
  registry: Registry,
  monitor: Pick<ReplicaSettingsMonitor, 'mismatched' | 'mismatches'>,
): void {
  new Gauge({
    name: `${METRIC_PREFIX}replica_settings_mismatch`,
    help: 'Other live replicas (sharing the state store) whose mesh settings differ from this one (0: all agree)',
    registers: [registry],
    collect() {
      this.set(monitor.mismatched());
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}replica_setting_differs`,
    help: " 1 per other live replica and mesh setting (serve flag) whose value differs from this replica's",
    labelNames: ['replica', 'setting'],
    registers: [registry],
    collect() {
      this.reset();
      for (const m of monitor.mismatches())
        for (const setting of m.settings) this.set({ replica: m.replica, setting }, 1);
    },
  });
}
