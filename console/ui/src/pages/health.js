import { useMemo, useState } from 'preact/hooks';
import { enc, get } from '../api.js';
import { Chart } from '../chart.js';
import { adoptionShare, failureRate, hasData, pct, topFailures, when } from '../logic.js';
import { ErrorNote, html, useLoad } from '../ui.js';

const RANGES = { '15m': '1m', '1h': '1m', '6h': '5m', '24h': '1h', '7d': '6h', '30d': '1d' };

export function Health({ app }) {
  const [since, setSince] = useState('1h');
  const [channel, setChannel] = useState('');
  const q = `since=${enc(since)}${channel ? `&channel=${enc(channel)}` : ''}`;
  const channels = useLoad(() => get(`/apps/${enc(app)}/channels`), [app]);
  const summary = useLoad(() => get(`/apps/${enc(app)}/health?${q}`), [app, q], 5000);
  const timeline = useLoad(() => get(`/apps/${enc(app)}/health/timeline?${q}&step=${RANGES[since]}`), [app, q], 5000);
  return html`
    <section>
      <h2>Release health</h2>
      <form class="inline" onSubmit=${(e) => { e.preventDefault(); summary.reload(); timeline.reload(); }}>
        <label>Period <select name="since" value=${since} onChange=${(e) => setSince(e.target.value)}>
          ${Object.keys(RANGES).map((s) => html`<option value=${s}>last ${s}</option>`)}
        </select></label>
        <label>Channel <select name="channel" value=${channel} onChange=${(e) => setChannel(e.target.value)}>
          <option value="">all channels</option>
          ${(channels.data || []).map((c) => html`<option value=${c.name}>${c.name}</option>`)}
        </select></label>
        <button type="submit">Refresh</button>
        <span class="muted">refreshes every 5 s</span>
      </form>
      <${ErrorNote} error=${summary.error} />
      <${Versions} data=${summary.data} />
      <${ErrorNote} error=${timeline.error} />
      <${Timeline} tl=${timeline.data} />
    </section>`;
}

function Versions({ data }) {
  const versions = data?.versions || [];
  if (!data) return null;
  if (!versions.length) return html`<p class="muted">No stats for this period yet.</p>`;
  const maxRate = Math.max(0.0001, ...versions.map((v) => v.failure_rate || 0));
  return html`<table data-testid="health-versions">
    <thead><tr><th>Version</th><th>Active devices</th><th>Installs</th><th>Failures</th><th>Failure rate</th><th>Top failures</th><th>Rollbacks</th><th>Events</th></tr></thead>
    <tbody>${versions.map((v) => html`<tr data-version=${v.version} data-installs=${v.installs}>
      <td><b>${v.version}</b></td><td>${v.active_devices}</td><td>${v.installs}</td><td>${v.failures}</td>
      <td class="rate"><span class="bar" style=${{ width: `${(100 * (v.failure_rate || 0)) / maxRate}%` }}></span><span>${pct(v.failure_rate)}</span></td>
      <td>${topFailures(v.failures_by_action).map((f) => html`<div><code>${f.action}</code> ${f.count}</div>`)}</td>
      <td>${v.rollbacks}</td><td>${v.events}</td></tr>`)}</tbody>
  </table>
  <p class="muted">${when(data.since)} – ${when(data.until)}</p>`;
}

function Timeline({ tl }) {
  const derived = useMemo(() => {
    if (!tl) return null;
    const x = (tl.buckets || []).map((b) => Date.parse(b) / 1000);
    const n = x.length;
    const series = tl.series || [];
    const per = (key) => series.map((s) => ({ label: s.version, values: (s[key] || []).slice(0, n).map((v) => v ?? 0) }));
    return {
      x,
      filled: hasData(tl),
      adoption: adoptionShare(series, n).map((s) => ({ label: s.version, values: s.share })),
      installs: per('installs'),
      failureRate: series.map((s) => ({ label: s.version, values: failureRate(s, n) })),
      rollbacks: per('rollbacks'),
      crashes: per('crashes'),
    };
  }, [tl]);
  if (!derived) return null;
  if (!derived.x.length || !(tl.series || []).length) return html`<p class="muted" data-testid="charts-empty">No events in this period to chart.</p>`;
  return html`<div class="charts" data-testid="charts" data-filled=${derived.filled ? 'true' : 'false'}>
    <${Chart} title="Adoption: share of active devices per version" testid="chart-adoption" x=${derived.x} series=${derived.adoption} unit="%" />
    <${Chart} title="Installs" testid="chart-installs" x=${derived.x} series=${derived.installs} bars />
    <${Chart} title="Failure rate (failures / attempts)" testid="chart-failure-rate" x=${derived.x} series=${derived.failureRate} unit="%" />
    <${Chart} title="Reverts and rollbacks" testid="chart-rollbacks" x=${derived.x} series=${derived.rollbacks} bars />
    <${Chart} title="Crashes" testid="chart-crashes" x=${derived.x} series=${derived.crashes} bars />
  </div>`;
}
