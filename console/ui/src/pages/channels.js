import { useEffect, useState } from 'preact/hooks';
import { del, enc, get, post, put } from '../api.js';
import { formatDuration, formatPlan, parsePlan, pct, rolloutControls, rolloutState, when } from '../logic.js';
import { ErrorNote, html, useAction, useLoad } from '../ui.js';

export function Channels({ app, canWrite }) {
  const data = useLoad(async () => {
    const [channels, bundles] = await Promise.all([get(`/apps/${enc(app)}/channels`), get(`/apps/${enc(app)}/bundles`)]);
    return { channels, bundles };
  }, [app]);
  const [selected, setSelected] = useState('');
  const channels = data.data?.channels || [];
  const bundles = data.data?.bundles || [];
  const current = channels.find((c) => c.name === selected) || channels[0];
  return html`
    <section>
      <h2>Channels</h2>
      <${ErrorNote} error=${data.error} />
      ${channels.length === 0 ? html`<p class="muted">${data.loading ? 'Loading…' : 'No channels yet.'}</p>` : html`
        <table data-testid="channels">
          <thead><tr><th>Channel</th><th>Bundle</th><th>Rollout</th><th>Public</th><th>Platforms</th><th>Policy</th><th>Updated</th></tr></thead>
          <tbody>${channels.map((c) => {
            const st = rolloutState(c);
            return html`<tr class=${current && c.name === current.name ? 'selected' : ''} data-channel=${c.name} onClick=${() => setSelected(c.name)}>
              <td><a href="#" onClick=${(e) => { e.preventDefault(); setSelected(c.name); }}><b>${c.name}</b></a></td>
              <td>${c.bundle || html`<span class="muted">builtin</span>`}</td>
              <td>${st === 'none' ? html`<span class="muted">none</span>` : html`${c.rollout_bundle} at ${c.rollout_percent} % <span class=${`badge ${st}`}>${st}</span>`}</td>
              <td>${c.public ? 'yes' : 'no'}</td>
              <td>${['ios', 'android', 'electron'].filter((p) => c[p]).join(', ')}</td>
              <td>${c.disable_auto_update}</td>
              <td>${when(c.updated_at)}</td>
            </tr>`;
          })}</tbody>
        </table>`}
      ${current ? html`<${ChannelDetail} key=${current.name} app=${app} channel=${current} bundles=${bundles} canWrite=${canWrite} onChange=${data.reload} />` : null}
      ${canWrite ? html`<${NewChannel} app=${app} bundles=${bundles} onDone=${(name) => { setSelected(name); data.reload(); }} />` : null}
    </section>`;
}

function BundleSelect({ name, value, bundles, onChange, allowNone = true }) {
  return html`<select name=${name} value=${value} onChange=${(e) => onChange(e.target.value)}>
    ${allowNone ? html`<option value="">(builtin: no bundle)</option>` : html`<option value="">choose…</option>`}
    ${bundles.map((b) => html`<option value=${b.version}>${b.version}</option>`)}
  </select>`;
}

function NewChannel({ app, bundles, onDone }) {
  const [name, setName] = useState('');
  const [bundle, setBundle] = useState('');
  const [pub, setPub] = useState(false);
  const act = useAction();
  const submit = async (e) => {
    e.preventDefault();
    const c = await act.run(() => put(`/apps/${enc(app)}/channels/${enc(name.trim())}`, { bundle, public: pub }));
    if (c) {
      setName('');
      onDone(c.name);
    }
  };
  return html`
    <form class="write card" data-testid="new-channel" onSubmit=${submit}>
      <h3>New channel, or point one at a bundle</h3>
      <label>Channel <input name="channel" placeholder="production" value=${name} onInput=${(e) => setName(e.target.value)} required /></label>
      <label>Bundle <${BundleSelect} name="bundle" value=${bundle} bundles=${bundles} onChange=${setBundle} /></label>
      <label class="check"><input type="checkbox" name="public" checked=${pub} onChange=${(e) => setPub(e.target.checked)} /> public (devices without a channel get it)</label>
      <button type="submit" disabled=${act.busy}>Save channel</button>
      <${ErrorNote} error=${act.error} />
    </form>`;
}

function ChannelDetail({ app, channel, bundles, canWrite, onChange }) {
  const path = `/apps/${enc(app)}/channels/${enc(channel.name)}`;
  const status = useLoad(() => get(`${path}/rollout`), [path, channel.updated_at], 5000);
  const st = status.data;
  const c = st?.channel || channel;
  const state = st?.state || rolloutState(c);
  const act = useAction();
  const [reason, setReason] = useState('');
  const control = async (action) => {
    if (action === 'abort' && !confirm(`Abort the rollout of ${c.rollout_bundle}? Its devices go back to ${c.bundle || 'builtin'}.`)) return;
    const body = reason.trim() ? { reason: reason.trim() } : undefined;
    const res = await act.run(() => post(`${path}/rollout/${action}`, body));
    if (res) {
      setReason('');
      status.reload();
      onChange();
    }
  };
  const remove = async () => {
    if (!confirm(`Delete channel ${c.name}?`)) return;
    if (await act.run(() => del(path).then(() => true))) onChange();
  };
  return html`
    <div class="card detail" data-testid="channel-detail">
      <h3>Channel <b>${c.name}</b></h3>
      <dl class="facts">
        <dt>Bundle</dt><dd>${c.bundle || 'builtin'}</dd>
        <dt>Public</dt><dd>${c.public ? 'yes' : 'no'}</dd>
        <dt>Self-assign</dt><dd>${c.allow_self_set ? 'allowed' : 'no'}</dd>
        <dt>Builds</dt><dd>${[c.allow_prod && 'prod', c.allow_dev && 'dev', c.allow_device && 'device', c.allow_emulator && 'emulator'].filter(Boolean).join(', ')}</dd>
      </dl>
      <h4>Rollout <span class=${`badge ${state}`} data-testid="rollout-state">${state}</span></h4>
      <${ErrorNote} error=${status.error} />
      ${state === 'none' ? html`<p class="muted">No rollout: every device of the channel gets ${c.bundle || 'its builtin bundle'}.</p>` : html`
        <p><b>${c.rollout_bundle}</b> to <b data-testid="rollout-percent">${c.rollout_percent} %</b> of devices, the rest on ${c.bundle || 'builtin'};
          started ${when(c.rollout_started_at)}.</p>
        ${state === 'paused' ? html`<p class="warn" data-testid="paused-by">Paused ${when(c.rollout_paused_at)} by ${c.rollout_paused_by || 'unknown'}${c.rollout_pause_reason ? `: ${c.rollout_pause_reason}` : ''}</p>` : null}
        <${Plan} c=${c} />
        <${GuardReading} health=${st?.health} guard=${st?.guard} />
        ${canWrite ? html`<div class="write controls" data-testid="rollout-controls">
          <input name="reason" placeholder="reason (optional)" value=${reason} onInput=${(e) => setReason(e.target.value)} />
          ${rolloutControls(state).map((a) => html`<button class=${a === 'abort' ? 'danger' : ''} disabled=${act.busy} data-action=${a} onClick=${() => control(a)}>${a[0].toUpperCase() + a.slice(1)}</button>`)}
        </div>` : null}`}
      <${ErrorNote} error=${act.error} />
      ${canWrite ? html`<${ChannelForm} path=${path} c=${c} bundles=${bundles} onDone=${() => { status.reload(); onChange(); }} />` : null}
      ${canWrite ? html`<p class="write"><button class="danger small" onClick=${remove}>Delete channel</button></p>` : null}
    </div>`;
}

function Plan({ c }) {
  const steps = c.rollout_plan || [];
  if (!steps.length) return html`<p class="muted">No progressive plan: the percentage stays until changed.</p>`;
  return html`<ol class="plan" data-testid="plan">${steps.map((s, i) => html`
    <li class=${i === (c.rollout_step || 0) ? 'current' : i < (c.rollout_step || 0) ? 'done' : ''}>
      ${s.percent} % for ${formatDuration(s.bake_seconds)}${s.min_installs ? `, at least ${s.min_installs} installs` : ''}
      ${i === (c.rollout_step || 0) ? html` <span class="muted">(current, since ${when(c.rollout_step_started_at)})</span>` : null}
    </li>`)}
    <li class="muted">then promote ${c.rollout_bundle}</li>
  </ol>`;
}

function Side({ label, s }) {
  if (!s) return null;
  return html`<tr><th>${label}</th><td>${s.attempts ?? '–'}</td><td>${s.installs ?? '–'}</td><td>${s.failures ?? '–'}</td><td>${s.active ?? '–'}</td><td>${s.crashed ?? '–'}</td></tr>`;
}

// GuardReading shows the guard's last reading: decision, reason and the
// counts it compared.
function GuardReading({ health, guard }) {
  if (!health) {
    return html`<p class="muted" data-testid="guard">${guard && guard.Enabled === false ? 'The guard is off for this channel.' : 'The guard has no reading yet.'}</p>`;
  }
  const worst = health.gate?.worst;
  return html`<div class="guard" data-testid="guard">
    <p>Guard, ${when(health.time)}: <b class=${health.gate?.failing ? 'bad' : 'good'}>${health.decision || 'no decision'}</b>${health.reason ? ` — ${health.reason}` : ''}</p>
    <table class="small">
      <thead><tr><th></th><th>attempts</th><th>installs</th><th>failing</th><th>active</th><th>crashed</th></tr></thead>
      <tbody><${Side} label="rollout" s=${health.rollout} /><${Side} label="base" s=${health.base} /></tbody>
    </table>
    ${worst ? html`<p class="muted">Worst metric: ${worst.metric || ''} rollout ${pct(worst.rollout?.rate)} vs base ${pct(worst.base?.rate)}</p>` : null}
  </div>`;
}

function ChannelForm({ path, c, bundles, onDone }) {
  const [bundle, setBundle] = useState(c.bundle || '');
  const [rb, setRb] = useState(c.rollout_bundle || '');
  const [percent, setPercent] = useState(String(c.rollout_percent || 10));
  const [plan, setPlan] = useState(formatPlan(c.rollout_plan));
  const [pub, setPub] = useState(!!c.public);
  const act = useAction();
  useEffect(() => setBundle(c.bundle || ''), [c.bundle]);
  const save = async (patch) => {
    if (await act.run(() => put(path, patch))) onDone();
  };
  const saveBundle = (e) => {
    e.preventDefault();
    save({ bundle, public: pub });
  };
  const startRollout = (e) => {
    e.preventDefault();
    let steps;
    try {
      steps = parsePlan(plan);
    } catch (err) {
      act.setError(err);
      return;
    }
    const patch = { rollout_bundle: rb };
    if (steps.length) patch.rollout_plan = steps;
    else {
      patch.rollout_percent = Number(percent);
      if (c.rollout_plan?.length) patch.rollout_plan = [];
    }
    save(patch);
  };
  return html`<div class="write forms">
    <form data-testid="channel-bundle" onSubmit=${saveBundle}>
      <h4>Bundle</h4>
      <label>Bundle <${BundleSelect} name="bundle" value=${bundle} bundles=${bundles} onChange=${setBundle} /></label>
      <label class="check"><input type="checkbox" name="public" checked=${pub} onChange=${(e) => setPub(e.target.checked)} /> public</label>
      <button type="submit" disabled=${act.busy}>Set bundle</button>
    </form>
    <form data-testid="rollout-form" onSubmit=${startRollout}>
      <h4>${c.rollout_bundle ? 'Change the rollout' : 'Start a rollout'}</h4>
      <label>Rollout bundle <${BundleSelect} name="rollout-bundle" value=${rb} bundles=${bundles} onChange=${setRb} allowNone=${false} /></label>
      <label>Percent <input name="rollout-percent" type="number" min="0" max="100" step="any" value=${percent} onInput=${(e) => setPercent(e.target.value)} /></label>
      <label>or plan <input name="rollout-plan" placeholder="1:10m,5:30m:100,25:1h" value=${plan} onInput=${(e) => setPlan(e.target.value)} /></label>
      <button type="submit" disabled=${act.busy || !rb}>${c.rollout_bundle ? 'Update rollout' : 'Start rollout'}</button>
    </form>
    <${ErrorNote} error=${act.error} />
  </div>`;
}
