// The HTTP API as the page uses it: JSON in and out, the dev token, readable errors.
//
//   const session = await api.json("POST", "/api/chat/sessions");
//   const response = await api.stream("GET", `/api/chat/tasks/${id}/stream?last_message_id=0-0`);
//
// Every error answer of the API is {"detail": {"code", "message"}}; it becomes an ApiError
// with that code and message, which is what the page shows.

const TOKEN_KEY = "chat.token";
const USER_KEY = "chat.user";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

export const auth = {
  get token() {
    return localStorage.getItem(TOKEN_KEY);
  },
  get user() {
    return localStorage.getItem(USER_KEY);
  },
  signIn(token, user) {
    localStorage.setItem(TOKEN_KEY, token);
    localStorage.setItem(USER_KEY, user);
  },
  signOut() {
    localStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(USER_KEY);
  },
};

function headers(body) {
  const result = {};
  if (auth.token) result.Authorization = `Bearer ${auth.token}`;
  if (body !== undefined) result["Content-Type"] = "application/json";
  return result;
}

export function isAbort(error) {
  return error && error.name === "AbortError";
}

async function send(method, path, body, signal) {
  try {
    return await fetch(path, {
      method,
      headers: headers(body),
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
      cache: "no-store",
    });
  } catch (error) {
    if (isAbort(error)) throw error;
    throw new ApiError(0, "NETWORK", "Cannot reach the server. Is `make dev` still running?");
  }
}

export async function errorFrom(response) {
  let detail = null;
  try {
    detail = (await response.json()).detail;
  } catch {
    // not JSON: a proxy's page, say; the status says enough
  }
  if (detail && typeof detail === "object" && detail.message) {
    return new ApiError(response.status, detail.code || `HTTP_${response.status}`, detail.message);
  }
  const message = typeof detail === "string" ? detail : `The server answered ${response.status} ${response.statusText}.`;
  return new ApiError(response.status, `HTTP_${response.status}`, message);
}

/** A JSON answer (null for 204); an ApiError for anything but 2xx. */
export async function json(method, path, body, { signal } = {}) {
  const response = await send(method, path, body, signal);
  if (!response.ok) throw await errorFrom(response);
  return response.status === 204 ? null : response.json();
}

/** The raw response of a 2xx (a 204 included), for reading a stream; ApiError otherwise. */
export async function stream(method, path, body, { signal } = {}) {
  const response = await send(method, path, body, signal);
  if (!response.ok) throw await errorFrom(response);
  return response;
}
