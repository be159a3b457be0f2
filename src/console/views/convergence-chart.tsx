// Seconds from a change to every proxy's ACK, per snapshot, drawn with uPlot.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import type { ConvergencePoint } from '../api.js';

export function ConvergenceChart({ points }: { points: ConvergencePoint[] }) {
  const el = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);
  useEffect(() => {
    if (!el.current) return;
    plot.current = new uPlot(
      {
        width: 640,
        height: 200,
        scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(max, 0.1)] } },
        series: [
          {},
          { label: 'seconds to converge', stroke: '#2563eb', width: 2, points: { show: true } },
        ],
        axes: [{}, { label: 's' }],
      },
      [[], []],
      el.current,
    );
    return () => plot.current?.destroy();
  }, []);
  useEffect(() => {
    plot.current?.setData([
      points.map((p) => Date.parse(p.changedAt) / 1000),
      points.map((p) => p.seconds),
    ]);
  }, [points]);
  return (
    <div class="chart" id="convergence-chart" data-points={points.length}>
      <div ref={el} />
      {points.length === 0 && <p class="muted">No change has converged yet.</p>}
    </div>
  );
}
