// A uPlot time-series chart as a Preact component.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { html } from './ui.js';

// barPaths draws series i of n as bars: two versions side by side, more
// overlapping (they are translucent).
function barPaths(i, n) {
  const align = n === 2 ? (i === 0 ? -1 : 1) : 0;
  return uPlot.paths.bars({ size: [n === 2 ? 0.4 : 0.7, 40], align, gap: 1 });
}

const COUNT_INCRS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 1e6];

export const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4b5563'];

// Chart draws lines over x (unix seconds), one per series {label, values}.
// bars: counts per bucket as bars (a fresh release's one busy minute
// shows as a bar, not a spike).
export function Chart({ title, x, series, unit = '', testid, height = 200, bars = false }) {
  const el = useRef(null);
  useEffect(() => {
    const node = el.current;
    if (!node) return undefined;
    const width = Math.max(280, node.clientWidth || 480);
    const pad = x.length > 1 ? (x[1] - x[0]) / 2 : 30;
    const opts = {
      width,
      height,
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      // Half a bucket of room on each side, so the newest bucket's bars
      // are not cut off at the edge.
      scales: { x: { time: true, range: (u, min, max) => [min - pad, max + pad] }, y: { range: (u, min, max) => [0, Math.max(max || 0, unit === '%' ? 1 : 1) * 1.1] } },
      // Counts get whole-number ticks; percentages any.
      axes: [{}, { values: (u, ticks) => ticks.map((t) => `${+t.toFixed(1)}${unit}`), size: 56, ...(unit ? {} : { incrs: COUNT_INCRS }) }],
      series: [{}, ...series.map((s, i) => ({
        label: s.label,
        stroke: PALETTE[i % PALETTE.length],
        width: bars ? 1 : 2,
        ...(bars ? { fill: `${PALETTE[i % PALETTE.length]}99`, paths: barPaths(i, series.length), points: { show: false } } : {}),
        spanGaps: false,
        // Sparse series (a fresh release) would vanish as lines alone.
        ...(bars ? {} : { points: { size: 7, show: x.length < 40 || s.values.filter((v) => v !== null && v !== undefined).length < 8 } }),
        value: (u, v) => (v === null || v === undefined ? '–' : `${+v.toFixed(1)}${unit}`),
      }))],
    };
    // A bar of 0 would still draw its outline on the axis.
    const values = series.map((s) => (bars ? s.values.map((v) => (v ? v : null)) : s.values));
    const plot = new uPlot(opts, [x, ...values], node);
    return () => plot.destroy();
  }, [x, series, unit, height, bars]);
  const points = series.reduce((n, s) => n + s.values.filter((v) => v !== null && v > 0).length, 0);
  return html`<figure class="chart" data-testid=${testid} data-points=${points}>
    <figcaption>${title}</figcaption>
    <div ref=${el}></div>
  </figure>`;
}
