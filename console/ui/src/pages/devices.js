import { useState } from 'preact/hooks';
import { del, enc, get, put } from '../api.js';
import { when } from '../logic.js';
import { ErrorNote, html, useAction, useLoad } from '../ui.js';

// lookUp reads a device's record: ClickHouse's view of it and its pin.
const lookUp = (app, id) => get(`/apps/${enc(app)}/devices/${enc(id)}`);

export function Devices({ app, canWrite }) {
  const [id, setId] = useState('');
  const [device, setDevice] = useState(null);
  const act = useAction();
  const pins = useLoad(() => get(`/apps/${enc(app)}/devices`), [app]);
  const channels = useLoad(() => get(`/apps/${enc(app)}/channels`), [app]);
  const find = async (devId) => {
    setDevice(null);
    const d = await act.run(() => lookUp(app, devId.trim()));
    if (d) setDevice(d);
  };
  return html`
    <section>
      <h2>Devices</h2>
      <form class="card" data-testid="device-lookup" onSubmit=${(e) => { e.preventDefault(); find(id); }}>
        <label>Device id <input name="device-id" placeholder="9f0c8a4e-…" value=${id} onInput=${(e) => setId(e.target.value)} required /></label>
        <button type="submit" disabled=${act.busy}>Look up</button>
      </form>
      <${ErrorNote} error=${act.error} />
      ${device ? html`<${Device} app=${app} d=${device} canWrite=${canWrite} channels=${channels.data || []} onChange=${() => { find(device.device_id); pins.reload(); }} />` : null}
      <h3>Pinned devices</h3>
      <${ErrorNote} error=${pins.error} />
      ${(pins.data || []).length === 0 ? html`<p class="muted">No device is pinned to a channel.</p>` : html`
        <table data-testid="pins"><thead><tr><th>Device</th><th>Channel</th></tr></thead>
          <tbody>${pins.data.map((o) => html`<tr><td><a href="#" onClick=${(e) => { e.preventDefault(); setId(o.device_id); find(o.device_id); }}><code>${o.device_id}</code></a></td><td>${o.channel}</td></tr>`)}</tbody>
        </table>`}
    </section>`;
}

function Device({ app, d, canWrite, channels, onChange }) {
  const [ch, setCh] = useState(d.pin || '');
  const act = useAction();
  const path = `/apps/${enc(app)}/devices/${enc(d.device_id)}/channel`;
  const pin = async (e) => {
    e.preventDefault();
    if (await act.run(() => put(path, { channel: ch }))) onChange();
  };
  const unpin = async () => {
    if ((await act.run(() => del(path).then(() => true)))) onChange();
  };
  return html`<div class="card" data-testid="device">
    <h3><code>${d.device_id}</code></h3>
    ${d.known === false ? html`<p class="muted">No stats from this device yet.</p>` : html`
      <dl class="facts">
        <dt>Last seen</dt><dd>${when(d.last_seen)}</dd>
        <dt>Platform</dt><dd>${d.platform} ${d.version_os || ''}</dd>
        <dt>Bundle</dt><dd data-testid="device-version">${d.version_name || '–'}</dd>
        <dt>Native build</dt><dd>${d.version_build || '–'}</dd>
        <dt>Plugin</dt><dd>${d.plugin_version || '–'}</dd>
        <dt>Channel</dt><dd>${d.channel || '–'}</dd>
        <dt>Custom id</dt><dd>${d.custom_id || '–'}</dd>
        <dt>Build</dt><dd>${d.is_prod ? 'prod' : 'dev'}, ${d.is_emulator ? 'emulator' : 'device'}</dd>
      </dl>`}
    <p>Pinned to: <b data-testid="device-pin">${d.pin || 'no channel (not pinned)'}</b></p>
    ${canWrite ? html`<form class="write inline" onSubmit=${pin}>
      <select name="pin-channel" value=${ch} onChange=${(e) => setCh(e.target.value)}>
        <option value="">choose a channel…</option>
        ${channels.map((c) => html`<option value=${c.name}>${c.name}</option>`)}
      </select>
      <button type="submit" disabled=${!ch || act.busy}>Pin</button>
      ${d.pin ? html`<button type="button" class="danger" onClick=${unpin} disabled=${act.busy}>Unpin</button>` : null}
    </form>` : null}
    <${ErrorNote} error=${act.error} />
    ${(d.recent_events || []).length ? html`
      <h4>Recent events</h4>
      <table class="small" data-testid="device-events"><thead><tr><th>Received</th><th>Action</th><th>Version</th><th>From</th></tr></thead>
        <tbody>${d.recent_events.map((e) => html`<tr><td>${when(e.received_at)}</td><td>${e.action}</td><td>${e.version_name}</td><td>${e.old_version_name}</td></tr>`)}</tbody>
      </table>` : null}
  </div>`;
}
