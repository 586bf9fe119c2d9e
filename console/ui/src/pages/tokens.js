import { useState } from 'preact/hooks';
import { del, enc, get, post } from '../api.js';
import { ROLES, when } from '../logic.js';
import { ErrorNote, html, useAction, useLoad } from '../ui.js';

export function Tokens() {
  const list = useLoad(() => get('/tokens'), []);
  const act = useAction();
  const [name, setName] = useState('');
  const [role, setRole] = useState('viewer');
  const [apps, setApps] = useState('');
  const [created, setCreated] = useState(null);
  const create = async (e) => {
    e.preventDefault();
    const body = { name: name.trim(), role };
    const a = apps.split(',').map((s) => s.trim()).filter(Boolean);
    if (a.length) body.apps = a;
    const t = await act.run(() => post('/tokens', body));
    if (t) {
      setCreated(t);
      setName('');
      list.reload();
    }
  };
  const revoke = async (n) => {
    if (!confirm(`Revoke token ${n}? Whatever uses it stops working.`)) return;
    await act.run(() => del(`/tokens/${enc(n)}`));
    list.reload();
  };
  return html`
    <section>
      <h1>Tokens</h1>
      <${ErrorNote} error=${list.error} />
      ${(list.data || []).length ? html`
        <table data-testid="tokens">
          <thead><tr><th>Name</th><th>Role</th><th>Apps</th><th>Created</th><th>Last used</th><th></th></tr></thead>
          <tbody>${list.data.map((t) => html`<tr data-token=${t.name}>
            <td>${t.name}</td><td>${t.role}</td><td>${(t.apps || []).join(', ') || 'all'}</td>
            <td>${when(t.created_at)}</td><td>${when(t.last_used_at)}</td>
            <td><button class="write danger small" onClick=${() => revoke(t.name)}>Revoke</button></td></tr>`)}</tbody>
        </table>` : null}
      <form class="write card" data-testid="create-token" onSubmit=${create}>
        <h2>Create a token</h2>
        <label>Name <input name="token-name" value=${name} onInput=${(e) => setName(e.target.value)} required /></label>
        <label>Role <select name="token-role" value=${role} onChange=${(e) => setRole(e.target.value)}>
          ${ROLES.map((r) => html`<option value=${r}>${r}</option>`)}
        </select></label>
        <label>Apps <input name="token-apps" placeholder="all apps; or com.a.app, com.b.app" value=${apps} onInput=${(e) => setApps(e.target.value)} /></label>
        <button type="submit" disabled=${act.busy}>Create token</button>
        <${ErrorNote} error=${act.error} />
      </form>
      ${created ? html`<div class="card notice" data-testid="created-token">
        <p>Token <b>${created.name}</b> (${created.role}) — shown only now, copy it:</p>
        <pre><code data-testid="token-secret">${created.token}</code></pre>
      </div>` : null}
    </section>`;
}
