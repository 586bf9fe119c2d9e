import { useState } from 'preact/hooks';
import { enc, get } from '../api.js';
import { when } from '../logic.js';
import { ErrorNote, html, useLoad } from '../ui.js';

export function Audit({ app }) {
  const [since, setSince] = useState('7d');
  const [channel, setChannel] = useState('');
  const q = `app=${enc(app)}&since=${enc(since)}&limit=200${channel ? `&channel=${enc(channel)}` : ''}`;
  const data = useLoad(() => get(`/audit?${q}`), [q], 10000);
  // The API answers oldest first; newest first reads better here.
  const entries = [...(data.data || [])].reverse();
  return html`
    <section>
      <h2>Audit log</h2>
      <form class="inline" onSubmit=${(e) => { e.preventDefault(); data.reload(); }}>
        <label>Since <select name="since" value=${since} onChange=${(e) => setSince(e.target.value)}>
          ${['1h', '24h', '7d', '30d', '400d'].map((s) => html`<option value=${s}>${s}</option>`)}
        </select></label>
        <label>Channel <input name="channel" value=${channel} onInput=${(e) => setChannel(e.target.value)} placeholder="all" /></label>
        <button type="submit">Refresh</button>
      </form>
      <${ErrorNote} error=${data.error} />
      ${entries.length === 0 ? html`<p class="muted">${data.loading ? 'Loading…' : 'No changes recorded in this period.'}</p>` : html`
        <table data-testid="audit">
          <thead><tr><th>Time</th><th>Channel</th><th>Bundle</th><th>Change</th><th>Actor</th><th>Detail</th></tr></thead>
          <tbody>${entries.map((e) => html`<tr data-change=${e.change}>
            <td>${when(e.time)}</td><td>${e.channel || ''}</td><td>${e.bundle || ''}</td>
            <td><code>${e.change}</code>${e.automatic ? html` <span class="badge paused">auto</span>` : null}</td>
            <td>${e.actor}</td><td>${e.detail}</td></tr>`)}</tbody>
        </table>`}
    </section>`;
}
