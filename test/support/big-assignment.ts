// A catalog whose one service, `big`, has 300 instances: its ClusterLoadAssignment is ~15 KB,
// enough to fill a stream's buffers in a few changes. `critical` picks one instance out
// (-1: none), so each value is a distinct change.
export function bigAssignmentCatalog(critical: number) {
  const instances = Array.from({ length: 300 }, (_, i) => ({
    id: `big-${String(i).padStart(3, '0')}`,
    address: `127.0.${Math.floor(i / 250)}.${(i % 250) + 1}`,
    port: 8080,
    health: i === critical ? 'critical' : 'passing',
  }));
  return { services: [{ name: 'big', instances }] };
}
