// Who may call whom, drawn as a graph: services on a circle, an arrow per allowed caller
// (dashed where L7 permissions decide per request). Denied pairs are listed below it.
import type { CallGraph } from '../api.js';

const SIZE = 420;
const R = 160;
const NODE_R = 30;

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
          // Each edge bends to its own left, so A → B and B → A are two visible arcs; it ends
          // short of the target's circle so the arrowhead shows.
          const dx = b.x - a.x;
          const dy = b.y - a.y;
          const len = Math.hypot(dx, dy) || 1;
          const bend = 0.18 * len;
          const cx = (a.x + b.x) / 2 + (dy / len) * bend;
          const cy = (a.y + b.y) / 2 - (dx / len) * bend;
          const tx = b.x - cx;
          const ty = b.y - cy;
          const tl = Math.hypot(tx, ty) || 1;
          const ex = b.x - (tx / tl) * (NODE_R + 2);
          const ey = b.y - (ty / tl) * (NODE_R + 2);
          const sl = Math.hypot(cx - a.x, cy - a.y) || 1;
          const sx = a.x + ((cx - a.x) / sl) * NODE_R;
          const sy = a.y + ((cy - a.y) / sl) * NODE_R;
          return (
            <path
              class={`edge${c.perRequest ? ' per-request' : ''}`}
              data-from={c.from}
              data-to={c.to}
              d={`M ${sx} ${sy} Q ${cx} ${cy} ${ex} ${ey}`}
              marker-end="url(#arrow)"
            >
              <title>{c.reason}</title>
            </path>
          );
        })}
        {graph.services.map((s) => {
          const p = pos.get(s)!;
          return (
            <g class="node" data-service={s}>
              <circle cx={p.x} cy={p.y} r={NODE_R} />
              <text x={p.x} y={p.y + 4} text-anchor="middle">
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
