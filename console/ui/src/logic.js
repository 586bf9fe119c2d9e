// Pure functions the pages use: roles, bundle usage, rollout plans and
// the health timeline's derived series. Tested by src/logic.test.js.

export const ROLES = ['viewer', 'publisher', 'admin'];

// can answers what a role may do: 'write' (bundles, channels, rollouts,
// pins) for publisher and admin, 'admin' (apps, tokens) for admin only.
export function can(role, what) {
  if (what === 'read') return ROLES.includes(role);
  if (what === 'write') return role === 'publisher' || role === 'admin';
  if (what === 'admin') return role === 'admin';
  return false;
}

// visibleApps keeps the apps a token may see (an empty list: all).
export function visibleApps(apps, allowed) {
  if (!allowed || allowed.length === 0) return apps;
  const set = new Set(allowed);
  return apps.filter((a) => set.has(a.id));
}

// bundleUsage maps each bundle version to the channels using it, as
// their bundle or rollout bundle.
export function bundleUsage(channels) {
  const use = new Map();
  const add = (v, what) => {
    if (!v) return;
    if (!use.has(v)) use.set(v, []);
    use.get(v).push(what);
  };
  for (const c of channels || []) {
    add(c.bundle, c.name);
    add(c.rollout_bundle, `${c.name} (rollout)`);
  }
  return use;
}

const UNIT = { s: 1, m: 60, h: 3600, d: 86400 };

// parseDuration reads "90s", "10m", "1h", "2d" or "1h30m" as seconds.
export function parseDuration(s) {
  const str = String(s).trim();
  if (str === '') return NaN;
  if (/^\d+$/.test(str)) return Number(str);
  let total = 0;
  let rest = str;
  while (rest) {
    const m = /^(\d+)([smhd])/.exec(rest);
    if (!m) return NaN;
    total += Number(m[1]) * UNIT[m[2]];
    rest = rest.slice(m[0].length);
  }
  return total;
}

export function formatDuration(sec) {
  if (!sec) return '0s';
  const parts = [];
  for (const [u, n] of [['d', 86400], ['h', 3600], ['m', 60], ['s', 1]]) {
    if (sec >= n) {
      parts.push(`${Math.floor(sec / n)}${u}`);
      sec %= n;
    }
  }
  return parts.join('');
}

// parsePlan reads the CLI's plan syntax "1:10m,5:30m:100,25:1h"
// (PERCENT:BAKE[:MIN_INSTALLS]) into rollout steps; it throws on bad input.
export function parsePlan(text) {
  const t = String(text).trim();
  if (!t) return [];
  return t.split(',').map((part) => {
    const f = part.trim().split(':');
    if (f.length < 2 || f.length > 3) throw new Error(`plan step "${part}": want PERCENT:BAKE[:MIN_INSTALLS]`);
    const percent = Number(f[0]);
    const bake = parseDuration(f[1]);
    if (!(percent > 0 && percent <= 100)) throw new Error(`plan step "${part}": percent must be in (0, 100]`);
    if (!(bake > 0)) throw new Error(`plan step "${part}": bake must be a duration like 10m`);
    const step = { percent, bake_seconds: bake };
    if (f.length === 3) {
      const min = Number(f[2]);
      if (!Number.isInteger(min) || min < 0) throw new Error(`plan step "${part}": min installs must be a whole number`);
      if (min > 0) step.min_installs = min;
    }
    return step;
  });
}

export function formatPlan(steps) {
  return (steps || [])
    .map((s) => `${s.percent}:${formatDuration(s.bake_seconds)}${s.min_installs ? `:${s.min_installs}` : ''}`)
    .join(',');
}

// adoptionShare turns per-version active device counts per bucket into
// each version's share of the bucket's active devices (0–100; null for
// an empty bucket, so the chart leaves a gap).
export function adoptionShare(series, nBuckets) {
  const totals = new Array(nBuckets).fill(0);
  for (const s of series) {
    for (let i = 0; i < nBuckets; i++) totals[i] += s.active_devices?.[i] || 0;
  }
  return series.map((s) => ({
    version: s.version,
    share: totals.map((tot, i) => (tot > 0 ? (100 * (s.active_devices?.[i] || 0)) / tot : null)),
  }));
}

// failureRates is each bucket's failures / (installs + failures) of one
// version, in percent (null where nothing happened).
export function failureRate(s, nBuckets) {
  const out = [];
  for (let i = 0; i < nBuckets; i++) {
    const f = s.failures?.[i] || 0;
    const n = (s.installs?.[i] || 0) + f;
    out.push(n > 0 ? (100 * f) / n : null);
  }
  return out;
}

// topFailures sorts a version's failures by count, largest first.
export function topFailures(byAction, n = 3) {
  return [...(byAction || [])].sort((a, b) => b.count - a.count || a.action.localeCompare(b.action)).slice(0, n);
}

// hasData says whether a timeline has any non-zero count, i.e. whether
// its charts show anything.
export function hasData(tl) {
  for (const s of tl?.series || []) {
    for (const k of ['active_devices', 'installs', 'failures', 'rollbacks', 'crashes']) {
      if ((s[k] || []).some((v) => v > 0)) return true;
    }
  }
  return false;
}

export function rolloutState(c) {
  if (!c.rollout_bundle) return 'none';
  return c.rollout_state === 'paused' ? 'paused' : 'running';
}

// rolloutControls lists the controls that apply in a rollout state.
export function rolloutControls(state) {
  if (state === 'running') return ['pause', 'promote', 'abort'];
  if (state === 'paused') return ['resume', 'promote', 'abort'];
  return [];
}

export function pct(x, digits = 1) {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  return `${(x * 100).toFixed(digits)} %`;
}

export function bytes(n) {
  if (!n) return '–';
  const u = ['B', 'KiB', 'MiB', 'GiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}

export function when(t) {
  if (!t || t.startsWith('0001-')) return '–';
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? t : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}
