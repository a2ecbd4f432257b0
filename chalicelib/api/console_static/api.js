// The HTTP API, called with the tenant key kept in sessionStorage (never localStorage, never a cookie).
// Every failure becomes an ApiError with a sentence a person can act on.

const KEY = "ruche-console-key";
// The page is served at <base>/v1/console: the API is <base>/v1/.
const BASE = new URL(".", location.href);

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const key = {
  get: () => sessionStorage.getItem(KEY),
  set: value => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
};

/** GET/POST/... a path under /v1/ ("agents", "agents/x/sessions?limit=5"); the parsed JSON, or null. */
export async function call(path, {method = "GET", body, apiKey} = {}) {
  const headers = {"Authorization": `Bearer ${apiKey || key.get() || ""}`};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(new URL(path, BASE), {method, headers,
      body: body === undefined ? undefined : JSON.stringify(body)});
  } catch (error) {
    throw new ApiError(0, "unreachable", `The API at ${BASE.origin} cannot be reached (${error.message}).`);
  }
  const text = await response.text();
  let parsed = null;
  try { parsed = text ? JSON.parse(text) : null; } catch { parsed = null; }
  if (response.ok) return parsed;
  const error = parsed && parsed.error ? parsed.error : {};
  throw new ApiError(response.status, error.code || `http_${response.status}`,
                     error.message || `The API answered HTTP ${response.status}.`);
}

/** Every item of a paginated list, following next_cursor. */
export async function all(path, field) {
  const items = [];
  let cursor = null;
  do {
    const separator = path.includes("?") ? "&" : "?";
    const page = await call(cursor ? `${path}${separator}cursor=${encodeURIComponent(cursor)}` : path);
    items.push(...page[field]);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

export const enc = encodeURIComponent;
