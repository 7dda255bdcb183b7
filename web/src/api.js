// The backend's plain JSON routes, the signed-in token, and the chats an anonymous visitor
// has (remembered in this browser: only a signed-in user's chats can be listed).
import { EventSourceParserStream } from "eventsource-parser/stream";

export const API = "/api/chat";

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export const auth = {
  get token() {
    return localStorage.getItem("chat.token");
  },
  get user() {
    return localStorage.getItem("chat.user");
  },
  set(user, token) {
    localStorage.setItem("chat.user", user);
    localStorage.setItem("chat.token", token);
  },
  clear() {
    localStorage.removeItem("chat.user");
    localStorage.removeItem("chat.token");
  },
  headers() {
    return this.token ? { Authorization: `Bearer ${this.token}` } : {};
  },
};

export async function call(method, path, body) {
  const response = await fetch(path.startsWith("/") ? path : `${API}/${path}`, {
    method,
    headers: { ...auth.headers(), ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = data.detail || {};
    throw new ApiError(response.status, detail.code || "ERROR", detail.message || `HTTP ${response.status}`);
  }
  return data;
}

const ANON = "chat.anonymous";

export const anonymous = {
  list() {
    try {
      return JSON.parse(localStorage.getItem(ANON)) || [];
    } catch {
      return [];
    }
  },
  save(list) {
    localStorage.setItem(ANON, JSON.stringify(list));
  },
  remember(id, title = null) {
    const list = this.list().filter((s) => s.id !== id);
    const old = this.list().find((s) => s.id === id);
    this.save([{ id, title: title ?? old?.title ?? null }, ...list]);
  },
  forget(id) {
    this.save(this.list().filter((s) => s.id !== id));
  },
};

/** Session events (titles, sessions created and deleted) until `signal` aborts. */
export async function followEvents(query, onEvent, signal) {
  while (!signal.aborted) {
    try {
      const response = await fetch(`${API}/events${query}`, { headers: auth.headers(), signal });
      if (!response.ok || !response.body) throw new Error(`events: HTTP ${response.status}`);
      const events = response.body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream());
      for await (const event of events) {
        if (event.data) onEvent(JSON.parse(event.data));
      }
    } catch (error) {
      if (signal.aborted) return;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000)); // the read budget ended: again
  }
}
