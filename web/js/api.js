// The HTTP API client: bearer token, JSON in and out, RFC 9457 problems turned into ApiError
// {status, code, detail, errors[]}. 429 and 503 are retried after Retry-After (bounded); a network
// failure is an ApiError with status 0, so a view can say so and keep what the user typed.

import { endSession, session } from "./session.js";

export const MAX_RETRIES = 2;
export const SESSION_ENDED = "mci:session-ended"; // a window event: the API refused the session's token
const MAX_WAIT_SECONDS = 5;
let baseUrl = location.origin;

export class ApiError extends Error {
  constructor({ status, code, detail, errors = [], title = "", field = "" }) {
    super(detail || title || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.title = title;
    this.errors = Array.isArray(errors) ? errors : [];
    this.field = typeof field === "string" ? field : ""; // a rule's problem may name one field (e.g. deal_size_usd)
  }
}

export function configure({ apiUrl }) {
  baseUrl = apiUrl || location.origin;
}

function waitSeconds(response) {
  const header = response.headers.get("Retry-After");
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds, MAX_WAIT_SECONDS);
  const date = Date.parse(header || "");
  if (Number.isFinite(date)) return Math.min(Math.max(0, (date - Date.now()) / 1000), MAX_WAIT_SECONDS);
  return 1;
}

async function problem(response) {
  let body = {};
  try {
    body = await response.json();
  } catch {
    body = {};
  }
  return new ApiError({
    status: response.status,
    code: body.code || (response.status === 401 ? "unauthorized" : "http_error"),
    detail: body.detail || body.message || "",
    title: body.title || "",
    errors: body.errors,
    field: body.field,
  });
}

/**
 * request("POST", "/claims/x/submission", {body, idempotencyKey}) -> the parsed JSON answer.
 * Throws ApiError: the API's problem, or {status: 0, code: "network"} when the request never got an answer.
 */
export async function request(method, path, { body, idempotencyKey, token = session.token() } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
  const url = new URL(path, baseUrl);
  for (let attempt = 0; ; attempt += 1) {
    let response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
        credentials: "omit",
        referrerPolicy: "no-referrer",
      });
    } catch (error) {
      throw new ApiError({ status: 0, code: "network", detail: String(error && error.message ? error.message : error) });
    }
    if ((response.status === 429 || response.status === 503) && attempt < MAX_RETRIES) {
      await new Promise((resolve) => setTimeout(resolve, waitSeconds(response) * 1000));
      continue;
    }
    if (response.status === 401 && (token || session.ended())) {
      // The session is over (expired, here or at the API, or revoked): sign out, and let the app send the user
      // to Sign in, which brings them back here afterwards (main.js). A wizard's answers stay, drafts of their owner (session.js).
      endSession();
      window.dispatchEvent(new Event(SESSION_ENDED));
    }
    if (!response.ok) throw await problem(response);
    if (response.status === 204) return null;
    return response.json();
  }
}

export const get = (path, options) => request("GET", path, options);
export const post = (path, body, options = {}) => request("POST", path, { ...options, body });
