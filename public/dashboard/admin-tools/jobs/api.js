// Talking to the bundle's admin API, and signing in.
//
// Credentials, in this order:
// - an access token in sessionStorage (from `#token=` in the URL that
//   scripts/dev.py prints, a pasted token, or an email + password sign-in
//   against Supabase Auth), sent as `Authorization: Bearer`;
// - otherwise the Supabase session cookie, which the browser sends by itself
//   when the page is on the app's own domain (`credentials: "same-origin"`).

const TOKEN_KEY = "jobQueue.adminToken";

export class ApiError extends Error {
  constructor(status, body) {
    const message = (body && body.message) || `The server answered ${status}.`;
    super(message);
    this.status = status;
    this.body = body || {};
  }

  get databaseUnavailable() {
    return this.status === 503 && this.body.error === "database_unavailable";
  }
}

export function takeTokenFromUrl() {
  const hash = new URLSearchParams(window.location.hash.slice(1));
  const token = hash.get("token");
  if (token) {
    setToken(token);
    // Drop the token from the address bar and history; it stays in this tab's sessionStorage.
    window.history.replaceState(null, "", window.location.pathname + window.location.search);
  }
}

export function getToken() {
  try {
    return window.sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setToken(token) {
  window.sessionStorage.setItem(TOKEN_KEY, token.trim());
}

export function clearToken() {
  window.sessionStorage.removeItem(TOKEN_KEY);
}

/** A JSON request to the bundle. Resolves to the body; rejects with ApiError. */
export async function api(path, { method = "GET", body, query, allowStatus = [] } = {}) {
  const headers = { Accept: "application/json" };
  const token = getToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const url = query ? `${path}?${new URLSearchParams(query)}` : path;
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    });
  } catch {
    throw new ApiError(0, { error: "network", message: "The server could not be reached." });
  }
  let data = null;
  const text = await response.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { message: text.slice(0, 200) };
    }
  }
  if (response.ok || allowStatus.includes(response.status)) return data;
  throw new ApiError(response.status, data);
}

/** Email + password against Supabase Auth, with the project's public URL and anon key. */
export async function signInWithPassword(config, email, password) {
  const response = await fetch(`${config.supabaseUrl}/auth/v1/token?grant_type=password`, {
    method: "POST",
    headers: { apikey: config.supabaseAnonKey, "Content-Type": "application/json" },
    body: JSON.stringify({ email, password }),
    credentials: "omit",
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok || !data.access_token) {
    throw new Error(data.error_description || data.msg || data.message || "Sign-in failed.");
  }
  setToken(data.access_token);
}
