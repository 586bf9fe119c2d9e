import { useState } from 'preact/hooks';
import { setToken, whoami } from '../api.js';
import { ErrorNote, html } from '../ui.js';

export function SignIn({ onSignedIn }) {
  const [tok, setTok] = useState('');
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const me = await whoami(tok.trim());
      setToken(tok.trim());
      onSignedIn(me);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return html`
    <main class="signin">
      <h1>Capstan console</h1>
      <form onSubmit=${submit}>
        <label>Admin API token
          <input type="password" name="token" autocomplete="off" value=${tok} onInput=${(e) => setTok(e.target.value)} required />
        </label>
        <button type="submit" disabled=${busy}>Sign in</button>
        <${ErrorNote} error=${error} />
        <p class="muted">The token is kept in this tab only (sessionStorage) and sent to this server's /api/v1.</p>
      </form>
    </main>`;
}
