// The page's one way to the API: same origin, the session cookie, the CSRF token on changes.
let session = null;

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
    this.detail = detail;
  }
}

export async function loadSession() {
  const response = await fetch("/api/ui/session", { credentials: "same-origin" });
  if (response.status === 401) {
    location.assign("/ui/login");
    return new Promise(() => {});
  }
  if (!response.ok) throw new ApiError(response.status, await response.text());
  session = await response.json();
  return session;
}

export function can(scope) {
  return !!session && (session.scopes.includes(scope) || session.scopes.includes("admin"));
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params || {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const one of Array.isArray(value) ? value : [value]) search.append(name, one);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

export async function api(method, path, { params, body } = {}) {
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (method !== "GET" && session && session.csrf) headers["x-csrf-token"] = session.csrf;
  const response = await fetch(`/api${path}${query(params)}`, {
    method,
    headers,
    credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) {
    location.assign("/ui/login");
    throw new ApiError(401, "signed out");
  }
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, data && data.detail !== undefined ? data.detail : text);
  return data;
}

export const get = (path, params) => api("GET", path, { params });
export const post = (path, body) => api("POST", path, { body: body || {} });

// Server-sent events: calls onEvent(parsed data, event) for each `event: event` frame. The browser
// reconnects by itself (with Last-Event-ID); `onState(true|false)` says whether it is connected.
export function stream(path, params, { onEvent, onEnd, onState, type = "event" } = {}) {
  const source = new EventSource(`/api${path}${query(params)}`, { withCredentials: true });
  source.addEventListener(type, (message) => onEvent && onEvent(JSON.parse(message.data), message));
  source.addEventListener("end", (message) => {
    source.close();
    onState && onState(false);
    onEnd && onEnd(message.data);
  });
  source.onopen = () => onState && onState(true);
  source.onerror = () => onState && onState(source.readyState === EventSource.OPEN);
  return source;
}
