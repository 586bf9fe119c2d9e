import { useState } from 'preact/hooks';
import { del, enc, get, post } from '../api.js';
import { bundleUsage, bytes, when } from '../logic.js';
import { ErrorNote, html, useAction, useLoad } from '../ui.js';

export function Bundles({ app, canWrite }) {
  const data = useLoad(async () => {
    const [bundles, channels] = await Promise.all([get(`/apps/${enc(app)}/bundles`), get(`/apps/${enc(app)}/channels`)]);
    return { bundles, channels };
  }, [app]);
  const act = useAction();
  const usage = bundleUsage(data.data?.channels);
  const remove = async (v) => {
    if (!confirm(`Delete bundle ${v}? Devices can no longer download it.`)) return;
    await act.run(() => del(`/apps/${enc(app)}/bundles/${enc(v)}`));
    data.reload();
  };
  const bundles = data.data?.bundles || [];
  return html`
    <section>
      <h2>Bundles</h2>
      <${ErrorNote} error=${data.error} />
      <${ErrorNote} error=${act.error} />
      ${bundles.length === 0 ? html`<p class="muted">${data.loading ? 'Loading…' : 'No bundles uploaded.'}</p>` : html`
        <table data-testid="bundles">
          <thead><tr><th>Version</th><th>Size</th><th>Checksum</th><th>Kind</th><th>Used by</th><th>Uploaded</th>${canWrite ? html`<th></th>` : null}</tr></thead>
          <tbody>${bundles.map((b) => {
            const used = usage.get(b.version) || [];
            return html`<tr data-version=${b.version}>
              <td><b>${b.version}</b>${b.comment ? html`<div class="muted">${b.comment}</div>` : null}</td>
              <td>${bytes(b.size)}</td>
              <td><code title=${b.checksum}>${(b.checksum || '').slice(0, 12)}</code></td>
              <td>${b.external_url ? 'external' : 'stored'}${b.session_key ? ', encrypted' : ''}${b.manifest?.length ? `, ${b.manifest.length} files` : ''}</td>
              <td data-testid="used-by">${used.length ? used.join(', ') : html`<span class="muted">unused</span>`}</td>
              <td>${when(b.created_at)}</td>
              ${canWrite ? html`<td><button class="write danger small" disabled=${used.length > 0 || act.busy}
                title=${used.length ? 'in use by a channel' : 'delete this bundle'} onClick=${() => remove(b.version)}>Delete</button></td>` : null}
            </tr>`;
          })}</tbody>
        </table>`}
      ${canWrite ? html`<${Upload} app=${app} onDone=${data.reload} />` : null}
    </section>`;
}

function Upload({ app, onDone }) {
  const [version, setVersion] = useState('');
  const [file, setFile] = useState(null);
  const [comment, setComment] = useState('');
  const act = useAction();
  const submit = async (e) => {
    e.preventDefault();
    const form = new FormData();
    const meta = { version: version.trim() };
    if (comment.trim()) meta.comment = comment.trim();
    form.append('metadata', new Blob([JSON.stringify(meta)], { type: 'application/json' }));
    form.append('file', file, file.name);
    const b = await act.run(() => post(`/apps/${enc(app)}/bundles`, form));
    if (b) {
      setVersion('');
      setComment('');
      e.target.reset();
      onDone();
    }
  };
  return html`
    <form class="write card" data-testid="upload" onSubmit=${submit}>
      <h3>Upload a bundle</h3>
      <label>Version <input name="version" placeholder="1.0.1" value=${version} onInput=${(e) => setVersion(e.target.value)} required /></label>
      <label>Zip <input name="file" type="file" accept=".zip,application/zip" onChange=${(e) => setFile(e.target.files[0] || null)} required /></label>
      <label>Comment <input name="comment" value=${comment} onInput=${(e) => setComment(e.target.value)} /></label>
      <button type="submit" disabled=${act.busy || !file}>${act.busy ? 'Uploading…' : 'Upload'}</button>
      <${ErrorNote} error=${act.error} />
      <p class="muted">The zip needs index.html at its root or in a single top folder.</p>
    </form>`;
}
