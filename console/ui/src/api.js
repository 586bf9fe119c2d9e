// The admin API client: bearer token from sessionStorage, JSON errors
// {"error": code, "message": text} turned into ApiError.

const TOKEN_KEY = 'capstan.token';

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

export function setToken(t) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || '';
  }
}

export async function api(method, path, body, opts = {}) {
  const headers = { Authorization: `Bearer ${opts.token ?? token()}` };
  let payload;
  if (body instanceof FormData) {
    payload = body;
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const resp = await fetch(`/api/v1${path}`, { method, headers, body: payload, cache: 'no-store' });
  if (resp.status === 204) return null;
  const text = await resp.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!resp.ok) {
    throw new ApiError(resp.status, data?.error, data?.message || text.slice(0, 200));
  }
  return data;
}

export const get = (path, opts) => api('GET', path, undefined, opts);
export const post = (path, body) => api('POST', path, body);
export const put = (path, body) => api('PUT', path, body);
export const del = (path) => api('DELETE', path);

export const enc = encodeURIComponent;

// notRouted is a 404/405 of the API's router: the server predates the
// endpoint (as opposed to a 404 naming a missing app, device, ...).
export function notRouted(err) {
  return err instanceof ApiError && ((err.status === 404 && err.code === 'not_found' && /no admin endpoint/.test(err.message)) || err.status === 405);
}

// whoami asks who the token is; a server without /whoami (404) predates
// roles, where every token is an admin.
export async function whoami(tok) {
  try {
    return await get('/whoami', { token: tok });
  } catch (e) {
    if (notRouted(e)) {
      await get('/apps', { token: tok }); // still checks the token
      return { name: '', role: 'admin', apps: [], assumed: true };
    }
    throw e;
  }
}
