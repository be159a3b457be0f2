// Who may call whom, drawn as a graph: services on a circle, an arrow per allowed caller
// (dashed where L7 permissions decide per request). Denied pairs are listed below it.
import type { CallGraph } from '../api.js';

const SIZE = 420;
const R = 160;

export function CallGraphView({ graph }: { graph: CallGraph }) {
  const n = graph.services.length;
  const pos = new Map(
    graph.services.map((s, i) => {
      const a = (2 * Math.PI * i) / Math.max(n, 1) - Math.PI / 2;
      return [s, { x: SIZE / 2 + R * Math.cos(a), y: SIZE / 2 + R * Math.sin(a) }];
    }),
  );
  const allowed = graph.calls.filter((c) => c.decision === 'allow');
  const denied = graph.calls.filter((c) => c.decision === 'deny');
  const notEnforced = graph.calls.some((c) => !c.enforced);
  return (
    <section class="card graph">
      <svg
        id="call-graph"
        viewBox={`0 0 ${SIZE} ${SIZE}`}
        width={SIZE}
        height={SIZE}
        role="img"
        aria-label="who may call whom"
      >
        <defs>
          <marker
            id="arrow"
            viewBox="0 0 10 10"
            refX="10"
            refY="5"
            markerWidth="6"
            markerHeight="6"
            orient="auto"
          >
            <path d="M0,0 L10,5 L0,10 z" class="arrowhead" />
          </marker>
        </defs>
        {allowed.map((c) => {
          const a = pos.get(c.from)!;
          const b = pos.get(c.to)!;
          // Stop short of the target's circle so the arrowhead shows.
          const len = Math.hypot(b.x - a.x, b.y - a.y) || 1;
          const k = (len - 22) / len;
          return (
            <line
              class={`edge${c.perRequest ? ' per-request' : ''}`}
              data-from={c.from}
              data-to={c.to}
              x1={a.x}
              y1={a.y}
              x2={a.x + (b.x - a.x) * k}
              y2={a.y + (b.y - a.y) * k}
              marker-end="url(#arrow)"
            >
              <title>{c.reason}</title>
            </line>
          );
        })}
        {graph.services.map((s) => {
          const p = pos.get(s)!;
          return (
            <g class="node" data-service={s}>
              <circle cx={p.x} cy={p.y} r={20} />
              <text x={p.x} y={p.y + 34} text-anchor="middle">
                {s}
              </text>
            </g>
          );
        })}
      </svg>
      <div>
        {notEnforced && <p class="muted">mTLS is off: sidecars do not enforce these decisions.</p>}
        <p>
          {allowed.length} allowed, {denied.length} denied caller → service pairs.
        </p>
        {denied.length > 0 && (
          <ul class="denied">
            {denied.map((c) => (
              <li title={c.reason}>
                {c.from} ✕ {c.to}
              </li>
            ))}
          </ul>
        )}
      </div>
    </section>
  );
}
