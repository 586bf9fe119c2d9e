// Drives the real console in Debian's Chromium (playwright-core) against a
// running capstan serve: sign in, create an app, upload bundles, point a
// channel at one, start a rollout, send plugin-shaped stats, wait for the
// health charts, look a device up, pause the rollout, find it in the
// audit log, then sign in as a viewer and check nothing writable shows
// and a write is refused.
//
// Env: CONSOLE_URL (where /console/ and /api/v1 are), DEVICE_URL (/stats,
// /updates), ADMIN_TOKEN, BUNDLE_ZIP_1, BUNDLE_ZIP_2, SCREENSHOT (png
// path), CHROMIUM (default /usr/bin/chromium), STEP_TIMEOUT_MS.
// Prints one JSON line per step; exits non-zero on the first failure.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const env = (k, d) => process.env[k] ?? d;
const base = env('CONSOLE_URL');
const deviceURL = env('DEVICE_URL');
const adminToken = env('ADMIN_TOKEN');
const stepTimeout = Number(env('STEP_TIMEOUT_MS', '15000'));
const app = 'com.example.console';

const log = (step, extra = {}) => console.log(JSON.stringify({ step, ...extra }));

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'capstan-console-chromium-'));
const ctx = await chromium.launchPersistentContext(userDataDir, {
  executablePath: env('CHROMIUM', '/usr/bin/chromium'),
  headless: true,
  timeout: 30000,
  viewport: { width: 1280, height: 900 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
ctx.setDefaultTimeout(stepTimeout);
const problems = [];
let page;

function watch(p) {
  // CSP violations and script errors surface here.
  p.on('console', (m) => { if (m.type() === 'error' && !/status of 40[34]/.test(m.text())) problems.push(`console: ${m.text()}`); });
  p.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
}

async function signIn(tok) {
  await page.goto(`${base}/console/`);
  await page.locator('input[name=token]').fill(tok);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('[data-testid=role]').waitFor();
  return page.locator('[data-testid=role]').textContent();
}

async function tab(name) {
  await page.locator('nav.tabs a', { hasText: name }).click();
}

async function post(url, body, tok) {
  const headers = { 'Content-Type': 'application/json' };
  if (tok) headers.Authorization = `Bearer ${tok}`;
  const r = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body), signal: AbortSignal.timeout(10000) });
  return { status: r.status, body: await r.text() };
}

// devices: plugin-shaped update checks, then stats for what each got;
// a few installs of the rollout bundle fail or crash (fewer than the
// guard's minimum, so it decides nothing) and one base download fails.
async function sendStats(n) {
  const got = {};
  let fails = 0;
  let crashes = 0;
  for (let i = 1; i <= n; i++) {
    const id = `${i.toString(16).padStart(8, '0')}-7e57-4000-8000-00000000c0de`;
    const dev = { app_id: app, device_id: id, platform: 'android', version_build: '1.0.0', version_name: 'builtin',
      plugin_version: '8.51.23', is_prod: true, is_emulator: false };
    const check = await post(`${deviceURL}/updates`, dev);
    const version = JSON.parse(check.body).version;
    if (!version) throw new Error(`device ${id}: no update offered: ${check.body}`);
    got[version] = (got[version] || 0) + 1;
    const ev = (action, v = version) => ({ ...dev, action, version_name: v, old_version_name: 'builtin' });
    const events = [ev('set')];
    if (version === '1.1.0' && fails < 3) { events.push(ev('update_fail')); fails++; }
    else if (version === '1.1.0' && crashes < 2) { events.push(ev('app_crash')); crashes++; }
    else if (version === '1.0.1' && i % 17 === 0) events.push(ev('download_fail', '1.0.1'));
    const r = await post(`${deviceURL}/stats`, events);
    if (r.status !== 200) throw new Error(`stats for ${id}: ${r.status} ${r.body}`);
  }
  return got;
}

try {
  page = await ctx.newPage();
  watch(page);

  // 1. sign in with the admin token
  const role = await signIn(adminToken);
  if (role.trim() !== 'admin') throw new Error(`signed in as ${role}, want admin`);
  log('signed_in', { role });

  // 2. create an app
  await page.locator('input[name=app-id]').fill(app);
  await page.locator('input[name=app-name]').fill('Console tour');
  await page.getByRole('button', { name: 'Create app' }).click();
  await page.locator('[data-testid=app-id]', { hasText: app }).waitFor();
  log('app_created', { app });

  // 3. upload two bundle zips
  await tab('Bundles');
  for (const [v, zip] of [['1.0.1', env('BUNDLE_ZIP_1')], ['1.1.0', env('BUNDLE_ZIP_2')]]) {
    await page.locator('input[name=version]').fill(v);
    await page.locator('input[name=file]').setInputFiles(zip);
    await page.getByRole('button', { name: 'Upload' }).click();
    await page.locator(`tr[data-version="${v}"]`).waitFor();
  }
  log('bundles_uploaded');

  // 4. point the public production channel at 1.0.1
  await tab('Channels');
  await page.locator('[data-testid=new-channel] input[name=channel]').fill('production');
  await page.locator('[data-testid=new-channel] select[name=bundle]').selectOption('1.0.1');
  await page.locator('[data-testid=new-channel] input[name=public]').check();
  await page.getByRole('button', { name: 'Save channel' }).click();
  await page.locator('tr[data-channel=production]').waitFor();
  log('channel_set');

  // 5. start a 50 % rollout of 1.1.0
  await page.locator('[data-testid=rollout-form] select[name=rollout-bundle]').selectOption('1.1.0');
  await page.locator('[data-testid=rollout-form] input[name=rollout-percent]').fill('50');
  await page.getByRole('button', { name: 'Start rollout' }).click();
  await page.locator('[data-testid=rollout-state]', { hasText: 'running' }).waitFor();
  await page.locator('[data-testid=rollout-percent]', { hasText: '50 %' }).waitFor();
  log('rollout_started');

  // the bundles page says which channel uses which bundle
  await tab('Bundles');
  await page.locator('tr[data-version="1.0.1"] [data-testid=used-by]', { hasText: 'production' }).waitFor();
  await page.locator('tr[data-version="1.1.0"] [data-testid=used-by]', { hasText: 'production (rollout)' }).waitFor();
  log('bundle_usage');

  // 6. devices report stats
  const got = await sendStats(Number(env('DEVICES', '60')));
  log('stats_sent', { got });

  // 7. the health page fills from ClickHouse
  {
    await tab('Release health');
    await page.locator('select[name=since]').selectOption('15m');
    const t0 = Date.now();
    await page.locator('[data-testid=charts][data-filled=true]').waitFor({ timeout: 60000 });
    await page.locator('tr[data-version="1.1.0"]').waitFor({ timeout: 60000 });
    // every device's install is in ClickHouse
    await page.waitForFunction((want) => Object.entries(want).every(([v, n]) => {
      const row = document.querySelector(`tr[data-version="${v}"]`);
      return row && Number(row.dataset.installs) >= n;
    }), got, { timeout: 60000 });
    await page.waitForFunction(() => {
      const a = document.querySelector('[data-testid=chart-adoption]');
      const f = document.querySelector('[data-testid=chart-failure-rate]');
      return a && f && Number(a.dataset.points) > 0 && Number(f.dataset.points) > 0;
    }, null, { timeout: 60000 });
    log('health_filled', { waited_ms: Date.now() - t0 });
    await page.screenshot({ path: env('SCREENSHOT'), fullPage: true });
    log('screenshot', { path: env('SCREENSHOT') });
    // a device's record, from the same stats
    await tab('Devices');
    await page.locator('input[name=device-id]').fill(`00000001-7e57-4000-8000-00000000c0de`);
    await page.getByRole('button', { name: 'Look up' }).click();
    await page.locator('[data-testid=device-events] tbody tr').first().waitFor();
    const dv = (await page.locator('[data-testid=device-version]').textContent()).trim();
    if (!got[dv]) throw new Error(`device 1 shows bundle ${dv}, want one the devices got (${JSON.stringify(got)})`);
    log('device_found', { text: dv });
  }

  // 8. pause the rollout in the UI
  await tab('Channels');
  await page.locator('[data-testid=rollout-controls] input[name=reason]').fill('checkout broken');
  await page.locator('[data-testid=rollout-controls] button[data-action=pause]').click();
  await page.locator('[data-testid=rollout-state]', { hasText: 'paused' }).waitFor();
  await page.locator('[data-testid=paused-by]', { hasText: 'checkout broken' }).waitFor();
  await page.locator('[data-testid=guard]').waitFor();
  log('rollout_paused', { guard: (await page.locator('[data-testid=guard]').textContent()).slice(0, 200) });

  // 9. the audit log shows it
  await tab('Audit log');
  const entry = page.locator('tr[data-change=rollout_pause]');
  await entry.waitFor();
  log('audit_entry', { text: (await entry.textContent()).replace(/\s+/g, ' ').trim() });

  // 10. a viewer sees no write controls, and the API refuses its writes
  {
    await page.locator('.top a', { hasText: 'Tokens' }).click();
    await page.locator('input[name=token-name]').fill('console-viewer');
    await page.locator('select[name=token-role]').selectOption('viewer');
    await page.getByRole('button', { name: 'Create token' }).click();
    const viewer = (await page.locator('[data-testid=token-secret]').textContent()).trim();
    await page.locator('tr[data-token=console-viewer]').waitFor();
    log('viewer_token_created');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.locator('input[name=token]').waitFor();
    const vrole = await signIn(viewer);
    if (vrole.trim() !== 'viewer') throw new Error(`viewer token signed in as ${vrole}`);
    if (await page.locator('.top a', { hasText: 'Tokens' }).count()) throw new Error('a viewer sees the tokens page link');
    const writable = async (where) => {
      const n = await page.locator('.write, [data-action], button:has-text("Upload"), button:has-text("Create app")').count();
      if (n) throw new Error(`${where}: a viewer sees ${n} write controls`);
    };
    await page.locator('table[data-testid=apps]').waitFor();
    await writable('apps');
    await page.locator('table[data-testid=apps] a', { hasText: app }).click();
    for (const [t, ready] of [['Channels', '[data-testid=channel-detail]'], ['Bundles', 'table[data-testid=bundles]'],
      ['Devices', '[data-testid=device-lookup]'], ['Audit log', 'table[data-testid=audit]']]) {
      await tab(t);
      await page.locator(ready).waitFor();
      await writable(t);
    }
    await tab('Channels');
    await page.locator('[data-testid=rollout-state]', { hasText: 'paused' }).waitFor();
    await writable('channels, paused rollout');
    const w = await post(`${base}/api/v1/apps/${app}/channels/production/rollout/resume`, {}, viewer);
    log('viewer_write', { status: w.status, body: w.body.slice(0, 200) });
    if (w.status !== 403) throw new Error(`a viewer's rollout resume answered ${w.status} ${w.body}, want 403`);
  }

  if (problems.length) throw new Error(`the browser reported:\n${problems.join('\n')}`);
  log('done');
} catch (e) {
  console.log(JSON.stringify({ step: 'failed', error: String(e?.stack || e) }));
  if (page) {
    const shot = `${env('SCREENSHOT', path.join(os.tmpdir(), 'console'))}.failure.png`;
    await page.screenshot({ path: shot, fullPage: true }).catch(() => {});
    console.log(JSON.stringify({ step: 'failure_screenshot', path: shot, url: page.url(), problems }));
  }
  process.exitCode = 1;
} finally {
  await ctx.close().catch(() => {});
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
