import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { ApiError, setToken, token, whoami } from './api.js';
import { can } from './logic.js';
import { BASE, html, Link, navigate, usePath } from './ui.js';
import { SignIn } from './pages/signin.js';
import { Apps } from './pages/apps.js';
import { Channels } from './pages/channels.js';
import { Bundles } from './pages/bundles.js';
import { Devices } from './pages/devices.js';
import { Health } from './pages/health.js';
import { Audit } from './pages/audit.js';
import { Tokens } from './pages/tokens.js';

const APP_TABS = [
  ['channels', 'Channels'],
  ['bundles', 'Bundles'],
  ['devices', 'Devices'],
  ['health', 'Release health'],
  ['audit', 'Audit log'],
];

function AppPage({ app, tab, me }) {
  const props = { app, me, canWrite: can(me.role, 'write') };
  let page;
  switch (tab) {
    case 'bundles': page = html`<${Bundles} ...${props} />`; break;
    case 'devices': page = html`<${Devices} ...${props} />`; break;
    case 'health': page = html`<${Health} ...${props} />`; break;
    case 'audit': page = html`<${Audit} ...${props} />`; break;
    default: page = html`<${Channels} ...${props} />`; tab = 'channels';
  }
  return html`
    <section>
      <h1><${Link} to="/">Apps</${Link}> / <span data-testid="app-id">${app}</span></h1>
      <nav class="tabs">
        ${APP_TABS.map(([t, label]) => html`<${Link} to=${`/apps/${encodeURIComponent(app)}/${t}`} class=${t === tab ? 'tab active' : 'tab'}>${label}</${Link}>`)}
      </nav>
      ${page}
    </section>`;
}

function Shell() {
  const path = usePath();
  const [me, setMe] = useState(null);
  const [checking, setChecking] = useState(!!token());

  useEffect(() => {
    if (!token()) return;
    whoami(token()).then(setMe, (e) => {
      if (e instanceof ApiError && e.status === 401) setToken('');
      setMe(null);
    }).finally(() => setChecking(false));
  }, []);

  const signOut = () => {
    setToken('');
    setMe(null);
    navigate('/signin');
  };

  if (checking) return html`<p class="muted">Checking the token…</p>`;
  if (!me) {
    return html`<${SignIn} onSignedIn=${(m) => { setMe(m); navigate(path === '/signin' ? '/' : path); }} />`;
  }
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  let page;
  if (parts[0] === 'apps' && parts[1]) page = html`<${AppPage} app=${parts[1]} tab=${parts[2]} me=${me} />`;
  else if (parts[0] === 'tokens' && can(me.role, 'admin')) page = html`<${Tokens} me=${me} />`;
  else page = html`<${Apps} me=${me} />`;
  return html`
    <header class="top">
      <a class="brand" href=${BASE + '/'} onClick=${(e) => { e.preventDefault(); navigate('/'); }}>Capstan</a>
      <nav>
        <${Link} to="/">Apps</${Link}>
        ${can(me.role, 'admin') ? html`<${Link} to="/tokens">Tokens</${Link}>` : null}
      </nav>
      <span class="who" data-testid="whoami">
        ${me.name || 'token'} · <b data-testid="role">${me.role}</b>
      </span>
      <button class="link" onClick=${signOut}>Sign out</button>
    </header>
    <main>${page}</main>`;
}

render(html`<${Shell} />`, document.getElementById('app'));
