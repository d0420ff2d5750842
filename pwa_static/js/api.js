/**
 * The HTTP API as the app calls it (CONTRACT §2–§8): JSON in, JSON out, and every failure
 * turned into one of two errors the sync loop can decide on — retry, halve, stop or wipe.
 *
 * @module api
 */

import { lang } from "./i18n.js";

const TIMEOUT_MS = 90_000; // a 200-op push on a slow 3G link takes a few seconds, not minutes

/** The server answered with the contract's error shape (or at least an HTTP error). */
export class ApiError extends Error {
  constructor(status, body, retryAfter = null) {
    const error = body?.error ?? {};
    super(error.message || `HTTP ${status}`);
    this.name = "ApiError";
    this.status = status;
    this.code = error.code ?? `http_${status}`;
    this.details = error.details ?? {};
    this.retryAfter = retryAfter;
  }

  /** Worth trying again later: the server is busy or broken, not the request. */
  get retryable() {
    return this.status >= 500 || this.status === 429 || this.status === 408;
  }

  /** This phone may no longer sync: revoked, or its token is not known any more. */
  get revoked() {
    return this.status === 401;
  }
}

/** No answer at all, or one that is not the API's (a captive portal's page). */
export class NetworkError extends Error {
  constructor(message) {
    super(message);
    this.name = "NetworkError";
    this.retryable = true;
  }
}

/**
 * One request, no retries; resolves to the JSON body of a 2xx answer. With `gzip` the body
 * goes compressed (a push of 200 visits: ~150 kB of JSON, ~30 kB on the wire) where the
 * browser can compress.
 */
export async function request(path, { method = "GET", body, token, gzip = false } = {}) {
  const headers = { Accept: "application/json", "Accept-Language": lang() };
  if (token) headers.Authorization = `Bearer ${token}`;
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
    if (gzip && typeof CompressionStream === "function") {
      payload = await compressed(payload);
      headers["Content-Encoding"] = "gzip";
    }
  }
  let response;
  let json = null;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: payload,
      cache: "no-store",
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    if ((response.headers.get("Content-Type") ?? "").includes("json")) json = await response.json();
  } catch (error) {
    throw new NetworkError(error.message);
  }
  if (!response.ok) throw new ApiError(response.status, json, retryAfter(response));
  if (json === null) throw new NetworkError(`not a JSON answer from ${path}`);
  return json;
}

async function compressed(text) {
  const stream = new Blob([text]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

function retryAfter(response) {
  const seconds = Number(response.headers.get("Retry-After"));
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : null;
}
