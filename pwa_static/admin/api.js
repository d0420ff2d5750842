/**
 * The API as the dashboard calls it: the bearer token of the dashboard's own device, kept in
 * sessionStorage (gone with the tab; no cookies).
 *
 * @module admin/api
 */

const KEY = "zoufang.admin.session";
export const LABEL = "督导台 dashboard";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

export function session() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY));
  } catch {
    return null;
  }
}

export function forget() {
  sessionStorage.removeItem(KEY);
}

async function fail(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    /* not JSON */
  }
  const error = body?.error ?? {};
  if (response.status === 401) forget();
  return new ApiError(response.status, error.code, error.message);
}

/** Fetch `/api/v1{path}` with the token; `body` is sent as JSON. */
export async function call(path, { method = "GET", body, raw = false } = {}) {
  const headers = { Accept: raw ? "*/*" : "application/json" };
  const token = session()?.token;
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(`/api/v1${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "omit",
    cache: "no-store",
  });
  if (!response.ok) throw await fail(response);
  return raw ? response : response.json();
}

/**
 * POST a file to `/api/v1{path}` as the form field `file`, for the uploads whose refusals the
 * page shows row by row: `{ok: true, body}`, `{ok: false, status, error}` for a status in
 * `shown`, else an ApiError is thrown (a 401 forgets the session first).
 */
export async function upload(path, file, language, shown) {
  const data = new FormData();
  data.append("file", file);
  const response = await fetch(`/api/v1${path}`, {
    method: "POST",
    headers: {
      Accept: "application/json",
      "Accept-Language": language,
      Authorization: `Bearer ${session()?.token ?? ""}`,
    },
    body: data,
    credentials: "omit",
    cache: "no-store",
  });
  let body = null;
  try {
    body = await response.json();
  } catch {
    /* not JSON */
  }
  if (response.ok) return { ok: true, body };
  const error = body?.error ?? {};
  if (shown(response.status, error)) return { ok: false, status: response.status, error };
  if (response.status === 401) forget();
  throw new ApiError(response.status, error.code, error.message);
}

/** Sign in: registers this dashboard as a device of the user and keeps the answer. */
export async function signIn(username, password) {
  const answer = await call("/devices", {
    method: "POST",
    body: { username, password, label: LABEL },
  });
  sessionStorage.setItem(KEY, JSON.stringify(answer));
  return answer;
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, value);
  }
  return search.toString();
}

/** Fetch a file with the token and hand it to the browser as a download (Blob URL). */
export async function download(path, fallbackName) {
  const response = await call(path, { raw: true });
  const disposition = response.headers.get("Content-Disposition") ?? "";
  const encoded = /filename\*=UTF-8''([^;]+)/i.exec(disposition);
  const plain = /filename="?([^";]+)"?/i.exec(disposition);
  const name = encoded ? decodeURIComponent(encoded[1]) : plain ? plain[1] : fallbackName;
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return name;
}
