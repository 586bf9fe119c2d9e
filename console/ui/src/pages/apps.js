import { useState } from 'preact/hooks';
import { get, post } from '../api.js';
import { can, visibleApps, when } from '../logic.js';
import { ErrorNote, html, Link, navigate, useAction, useLoad } from '../ui.js';

export function Apps({ me }) {
  const apps = useLoad(() => get('/apps'), []);
  const list = visibleApps(apps.data || [], me.apps);
  return html`
    <section>
      <h1>Apps</h1>
      <${ErrorNote} error=${apps.error} />
      ${apps.loading ? html`<p class="muted">Loading…</p>` : list.length === 0 ? html`<p class="muted">No apps yet.</p>` : html`
        <table data-testid="apps">
          <thead><tr><th>App id</th><th>Name</th><th>Created</th></tr></thead>
          <tbody>${list.map((a) => html`
            <tr><td><${Link} to=${`/apps/${encodeURIComponent(a.id)}/channels`}>${a.id}</${Link}></td><td>${a.name}</td><td>${when(a.created_at)}</td></tr>`)}
          </tbody>
        </table>`}
      ${can(me.role, 'admin') ? html`<${CreateApp} />` : null}
    </section>`;
}

function CreateApp() {
  const [id, setId] = useState('');
  const [name, setName] = useState('');
  const act = useAction();
  const submit = async (e) => {
    e.preventDefault();
    const app = await act.run(() => post('/apps', { id: id.trim(), name: name.trim() || undefined }));
    if (app) navigate(`/apps/${encodeURIComponent(app.id)}/channels`);
  };
  return html`
    <form class="write card" data-testid="create-app" onSubmit=${submit}>
      <h2>Create an app</h2>
      <label>App id <input name="app-id" placeholder="com.example.app" value=${id} onInput=${(e) => setId(e.target.value)} required /></label>
      <label>Name <input name="app-name" value=${name} onInput=${(e) => setName(e.target.value)} /></label>
      <button type="submit" disabled=${act.busy}>Create app</button>
      <${ErrorNote} error=${act.error} />
    </form>`;
}
