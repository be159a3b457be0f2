// Metrics of a CA state store shared by replicas (`serve --state consul|etcd`): whether this
// replica reaches it and whether it leads (creates the first root, drops retired roots).
import { Gauge, type Registry } from 'prom-client';
import type { SharedState } from '../ca/open.js';
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
