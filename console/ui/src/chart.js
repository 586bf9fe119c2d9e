// A uPlot time-series chart as a Preact component.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { html } from './ui.js';

const COUNT_INCRS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1e3, 2e3, 5e3, 1e4, 2e4, 5e4, 1e5, 1e6];

export const PALETTE = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4b5563'];

// Chart draws lines over x (unix seconds), one per series {label, values}.
export function Chart({ title, x, series, unit = '', testid, height = 200 }) {
  const el = useRef(null);
  useEffect(() => {
    const node = el.current;
    if (!node) return undefined;
    const width = Math.max(280, node.clientWidth || 480);
    const opts = {
      width,
      height,
      legend: { show: true },
      cursor: { drag: { x: false, y: false } },
      scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(max || 0, unit === '%' ? 1 : 1) * 1.1] } },
      // Counts get whole-number ticks; percentages any.
      axes: [{}, { values: (u, ticks) => ticks.map((t) => `${+t.toFixed(1)}${unit}`), size: 56, ...(unit ? {} : { incrs: COUNT_INCRS }) }],
      series: [{}, ...series.map((s, i) => ({
        label: s.label,
        stroke: PALETTE[i % PALETTE.length],
        width: 2,
        spanGaps: false,
        // Sparse series (a fresh release) would vanish as lines alone.
        points: { show: x.length < 40 || s.values.filter((v) => v !== null && v !== undefined).length < 8 },
        value: (u, v) => (v === null || v === undefined ? '–' : `${+v.toFixed(1)}${unit}`),
      }))],
    };
    const plot = new uPlot(opts, [x, ...series.map((s) => s.values)], node);
    return () => plot.destroy();
  }, [x, series, unit, height]);
  const points = series.reduce((n, s) => n + s.values.filter((v) => v !== null && v > 0).length, 0);
  return html`<figure class="chart" data-testid=${testid} data-points=${points}>
    <figcaption>${title}</figcaption>
    <div ref=${el}></div>
  </figure>`;
}
