// The chat page: sessions in the sidebar, the conversation, streaming that survives a reload.
//
// How a turn is read: POST /api/chat/sessions/{id}/stream answers with the task's SSE
// stream (and its id in X-Task-Id). Every event's `id:` is a cursor; after each chunk the
// message drawn so far and that cursor are saved together in sessionStorage. A dropped
// connection resumes with GET /api/chat/tasks/{task}/stream?last_message_id=<cursor>; a
// reload draws the saved message and resumes from its cursor, or, with nothing saved (another
// tab, another browser), replays the running task from 0-0. Either way each token shows once.

import * as api from "./api.js";
import { readEvents } from "./sse.js";
import { Conversation, assistantMessage, fromHistory, userMessage } from "./message.js";
import { MessageList, drawSessions, hideError, setConnection, showError } from "./view.js";

const $ = (selector) => document.querySelector(selector);
const ANON_SESSIONS_KEY = "chat.anonSessions";
const SNAPSHOT_PREFIX = "chat.task.";
const RETRY_DELAYS_MS = [250, 500, 1000, 2000, 4000];

const state = {
  info: null,
  sessionId: null,
  title: null,
  conversation: new Conversation(),
  sessions: [],
  running: new Set(), // session ids with a turn running, from /events
  follow: null, // {taskId, message, controller, stopRequested}
  busy: false,
  events: null, // {path, controller} of the /events reader
  openSeq: 0,
};
let messages;

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });

// --- saved progress of running tasks (sessionStorage) -------------------------------------

function saveSnapshot({ taskId, message, userText }, cursor) {
  // An operation's result lands on a card another message owns: keep that card's state too.
  const cards = {};
  for (const [id, owner] of state.conversation.tools) {
    if (owner.message !== message && owner.part.operationTaskId === taskId) cards[id] = owner.part;
  }
  try {
    sessionStorage.setItem(SNAPSHOT_PREFIX + taskId, JSON.stringify({ cursor, message, cards, userText, sessionId: state.sessionId }));
  } catch {
    // storage full or disabled: a reload will replay from the start instead
  }
}

function loadSnapshot(taskId) {
  try {
    return JSON.parse(sessionStorage.getItem(SNAPSHOT_PREFIX + taskId) || "null");
  } catch {
    return null;
  }
}

function dropSnapshot(taskId) {
  sessionStorage.removeItem(SNAPSHOT_PREFIX + taskId);
}

// --- anonymous sessions, remembered in this browser ---------------------------------------

function anonSessions() {
  try {
    return JSON.parse(localStorage.getItem(ANON_SESSIONS_KEY) || "[]");
  } catch {
    return [];
  }
}

function saveAnonSessions(list) {
  localStorage.setItem(ANON_SESSIONS_KEY, JSON.stringify(list.slice(0, 100)));
}

function rememberAnon(id, title = null) {
  const list = anonSessions().filter((s) => s.id !== id);
  const old = anonSessions().find((s) => s.id === id);
  list.unshift({ id, title: title ?? old?.title ?? null });
  saveAnonSessions(list);
}

function forgetAnon(id) {
  saveAnonSessions(anonSessions().filter((s) => s.id !== id));
}

// --- sidebar ----------------------------------------------------------------------------

async function refreshSessions() {
  if (api.auth.token) {
    try {
      const answer = await api.json("GET", "/api/chat/sessions?limit=100");
      state.sessions = answer.sessions;
    } catch (error) {
      handleAuthError(error) || showError(error);
    }
  } else {
    state.sessions = anonSessions();
  }
  drawSidebar();
}

function drawSidebar() {
  drawSessions(state.sessions, state.sessionId, state.running, { onOpen: (id) => navigate(id), onDelete: deleteSession });
}

function setTitle(sessionId, title) {
  const known = state.sessions.find((s) => s.id === sessionId);
  if (known) known.title = title;
  if (!api.auth.token && anonSessions().some((s) => s.id === sessionId)) {
    saveAnonSessions(anonSessions().map((s) => (s.id === sessionId ? { ...s, title } : s)));
  }
  if (sessionId === state.sessionId) {
    state.title = title;
    drawTitle();
  }
  drawSidebar();
}

function drawTitle() {
  $("#chat-title").textContent = state.title || "New chat";
  document.title = state.title ? `${state.title} · Chat` : "Chat";
}

async function deleteSession(id) {
  try {
    await api.json("DELETE", `/api/chat/sessions/${encodeURIComponent(id)}`);
  } catch (error) {
    if (error.status !== 404) return showError(error);
  }
  forgetAnon(id);
  state.sessions = state.sessions.filter((s) => s.id !== id);
  if (id === state.sessionId) navigate(null);
  drawSidebar();
}

// --- session events: titles, turns starting and ending ------------------------------------

function restartEvents() {
  const path = api.auth.token
    ? "/api/chat/events"
    : state.sessionId
      ? `/api/chat/events?session_id=${encodeURIComponent(state.sessionId)}`
      : null;
  if (state.events && state.events.path === path && !state.events.controller.signal.aborted) return;
  state.events?.controller.abort();
  state.events = null;
  if (!path) return;
  const controller = new AbortController();
  state.events = { path, controller };
  followEvents(path, controller.signal);
}

async function followEvents(path, signal) {
  let failures = 0;
  while (!signal.aborted) {
    try {
      const response = await api.stream("GET", path, undefined, { signal });
      failures = 0;
      for await (const event of readEvents(response)) {
        if (signal.aborted) return;
        try {
          onSessionEvent(JSON.parse(event.data));
        } catch (error) {
          console.warn("unreadable session event", event.data, error);
        }
      }
    } catch (error) {
      if (api.isAbort(error) || signal.aborted) return;
      if (handleAuthError(error)) return;
      if (error.status === 404) {
        if (state.events && state.events.controller.signal === signal) state.events = null;
        return;
      }
      failures += 1;
    }
    // The server ends the stream when its read budget runs out: reconnect.
    await sleep(RETRY_DELAYS_MS[Math.min(failures, RETRY_DELAYS_MS.length - 1)], signal);
  }
}

function onSessionEvent(event) {
  switch (event.type) {
    case "session_created":
      if (api.auth.token) refreshSessions();
      break;
    case "session_deleted":
      state.sessions = state.sessions.filter((s) => s.id !== event.session_id);
      forgetAnon(event.session_id);
      if (event.session_id === state.sessionId) navigate(null);
      drawSidebar();
      break;
    case "title_changed":
      setTitle(event.session_id, event.title);
      break;
    case "task_started":
      state.running.add(event.session_id);
      drawSidebar();
      // A turn started elsewhere (another tab): show it here too.
      if (event.session_id === state.sessionId && !state.busy) resumeTask(event.task_id);
      break;
    case "task_finished":
      state.running.delete(event.session_id);
      drawSidebar();
      break;
    default:
      break;
  }
}

// --- opening a session ------------------------------------------------------------------

function navigate(id) {
  const hash = id ? `#${id}` : "";
  if (location.hash !== hash) history.pushState(null, "", hash || location.pathname + location.search);
  openSession(id);
}

function stopFollowing() {
  if (state.follow) state.follow.controller.abort();
  state.follow = null;
  setBusy(false);
  setConnection(null);
}

async function openSession(id) {
  const seq = ++state.openSeq;
  stopFollowing();
  hideError();
  state.sessionId = id;
  state.title = null;
  state.conversation = new Conversation();
  messages.clear();
  drawTitle();
  drawSidebar();
  restartEvents();
  if (!id) {
    $("#input").focus();
    return;
  }
  let session;
  try {
    session = await api.json("GET", `/api/chat/sessions/${encodeURIComponent(id)}`);
  } catch (error) {
    if (seq !== state.openSeq) return;
    if (error.status === 404) {
      forgetAnon(id);
      state.sessions = state.sessions.filter((s) => s.id !== id);
      drawSidebar();
    }
    handleAuthError(error) || showError(error);
    return;
  }
  if (seq !== state.openSeq) return;
  if (!api.auth.token) rememberAnon(id, session.title);
  state.title = session.title;
  drawTitle();
  state.conversation = fromHistory(session.messages);
  for (const message of state.conversation.messages) messages.draw(message);
  messages.scrollToEnd(true);
  if (session.active_stream) resumeTask(session.active_stream.task_id);
  else cleanSnapshots(id);
}

function cleanSnapshots(sessionId) {
  for (let i = sessionStorage.length - 1; i >= 0; i -= 1) {
    const key = sessionStorage.key(i);
    if (!key || !key.startsWith(SNAPSHOT_PREFIX)) continue;
    const snapshot = loadSnapshot(key.slice(SNAPSHOT_PREFIX.length));
    if (!snapshot || snapshot.sessionId === sessionId) sessionStorage.removeItem(key);
  }
}

/** Follow a running task of the open session: from where this tab was, or from the start. */
function resumeTask(taskId) {
  if (state.follow && state.follow.taskId === taskId) return;
  const snapshot = loadSnapshot(taskId);
  let cursor = "0-0";
  let userText = null;
  if (snapshot && snapshot.message && snapshot.cursor) {
    // The running turn's own user message is not in the history the server gives back.
    if (snapshot.userText) {
      userText = snapshot.userText;
      messages.draw(state.conversation.add(userMessage(snapshot.userText, taskId)));
    }
    for (const [id, part] of Object.entries(snapshot.cards || {})) {
      const owner = state.conversation.tool(id);
      if (owner) {
        Object.assign(owner.part, part);
        messages.draw(owner.message);
      }
    }
    const message = state.conversation.add(snapshot.message);
    cursor = snapshot.cursor;
    return follow(taskId, message, cursor, { userText });
  }
  return follow(taskId, state.conversation.add(assistantMessage(taskId)), cursor, { userText });
}

// --- reading a task's stream ------------------------------------------------------------

function setBusy(busy) {
  state.busy = busy;
  document.body.dataset.busy = busy ? "true" : "false";
  $("#send").hidden = busy;
  $("#stop").hidden = !busy;
  $("#stop").disabled = false;
}

/**
 * Read `taskId` after `cursor` into `message` until its [DONE], reconnecting with the cursor
 * whenever the connection ends early. `response` is an already open stream (a new turn's).
 */
async function follow(taskId, message, cursor, { response = null, userText = null } = {}) {
  const controller = new AbortController();
  const signal = controller.signal;
  const following = { taskId, message, controller, userText, stopRequested: false };
  state.follow = following;
  message.taskId = taskId;
  setBusy(true);
  messages.draw(message, { streaming: true });
  messages.scrollToEnd();
  let failures = 0;
  let done = false;
  while (!done && !signal.aborted) {
    if (!response) {
      try {
        const path = `/api/chat/tasks/${encodeURIComponent(taskId)}/stream?last_message_id=${encodeURIComponent(cursor)}`;
        response = await api.stream("GET", path, undefined, { signal });
      } catch (error) {
        if (api.isAbort(error) || signal.aborted) return;
        if (error.status === 0 || error.status >= 500) {
          failures += 1;
          setConnection("Connection lost. Reconnecting…");
          await sleep(RETRY_DELAYS_MS[Math.min(failures, RETRY_DELAYS_MS.length - 1)], signal);
          continue;
        }
        handleAuthError(error) || showError(error);
        break;
      }
      if (response.status === 204) break; // over, and nothing after the cursor
    }
    try {
      for await (const event of readEvents(response)) {
        if (signal.aborted) return; // another chat is open now: draw nothing more here
        if (event.data === "[DONE]") {
          done = true;
          break;
        }
        let chunk;
        try {
          chunk = JSON.parse(event.data);
        } catch {
          console.warn("not a chunk", event.data);
          continue;
        }
        for (const touched of state.conversation.apply(message, chunk)) {
          messages.draw(touched, { streaming: touched === message });
        }
        if (event.id) cursor = event.id;
        saveSnapshot(following, cursor);
        if (failures) setConnection(null);
        failures = 0;
        messages.scrollToEnd();
      }
    } catch (error) {
      if (api.isAbort(error) || signal.aborted) return;
      failures += 1;
      setConnection("Connection lost. Reconnecting…");
      await sleep(RETRY_DELAYS_MS[Math.min(failures, RETRY_DELAYS_MS.length - 1)], signal);
    }
    response = null;
  }
  if (signal.aborted) return;
  setConnection(null);
  dropSnapshot(taskId);
  message.finished = true;
  // How it ended tells a stop made here from one made in another tab, or by a reload.
  const status = await taskStatus(taskId);
  if (signal.aborted) return;
  if (following.stopRequested || status === "cancelled") message.stopped = true;
  settlePendingCards(taskId, status);
  messages.draw(message);
  if (state.follow === following) {
    state.follow = null;
    setBusy(false);
  }
  await followOperations(message);
}

async function taskStatus(taskId) {
  try {
    return (await api.json("GET", `/api/chat/tasks/${encodeURIComponent(taskId)}`)).status;
  } catch {
    return null; // expired or unreachable
  }
}

/**
 * A card still pending after its operation's task ended. The server closes an operation's
 * tool call when it ends without a result; this covers a stream that expired before the page
 * read that far: say how it ended.
 */
function settlePendingCards(taskId, status) {
  if (status === "running") return;
  for (const { message, part } of state.conversation.tools.values()) {
    if (part.state !== "pending" || part.operationTaskId !== taskId) continue;
    part.state = "output-error";
    part.errorText = status === "cancelled" ? "Cancelled." : `The operation ${status || "ended"} without a result.`;
    messages.draw(message);
  }
}

/** Cards that went pending in this message: follow their operation tasks for the result. */
async function followOperations(message) {
  const operations = message.parts.filter((p) => p.kind === "tool" && p.state === "pending" && p.operationTaskId);
  for (const part of operations) {
    if (state.busy) return; // something else is being followed already
    if (part.state !== "pending") continue;
    const continuation = state.conversation.add(assistantMessage(part.operationTaskId));
    await follow(part.operationTaskId, continuation, "0-0");
  }
}

// --- sending and stopping ----------------------------------------------------------------

async function send(text) {
  if (state.busy || !text.trim()) return;
  hideError();
  setBusy(true);
  let id = state.sessionId;
  if (!id) {
    try {
      id = (await api.json("POST", "/api/chat/sessions")).id;
    } catch (error) {
      setBusy(false);
      return handleAuthError(error) || showError(error);
    }
    state.sessionId = id;
    history.pushState(null, "", `#${id}`);
    if (!api.auth.token) rememberAnon(id);
    state.sessions = [{ id, title: null }, ...state.sessions.filter((s) => s.id !== id)];
    drawSidebar();
    restartEvents();
  }
  $("#input").value = "";
  autoGrow();
  const question = state.conversation.add(userMessage(text));
  messages.draw(question);
  const answer = state.conversation.add(assistantMessage());
  messages.draw(answer, { streaming: true });
  messages.scrollToEnd(true);
  const seq = state.openSeq;
  let response;
  try {
    response = await api.stream("POST", `/api/chat/sessions/${encodeURIComponent(id)}/stream`, { message: text });
  } catch (error) {
    if (seq !== state.openSeq) return;
    // Nothing was started: take the message back so it can be sent again.
    state.conversation.remove(answer);
    state.conversation.remove(question);
    messages.remove(answer);
    messages.remove(question);
    $("#input").value = text;
    setBusy(false);
    return handleAuthError(error) || showError(error);
  }
  if (seq !== state.openSeq) {
    // Another chat was opened meanwhile; the turn goes on without this page watching it.
    response.body?.cancel().catch(() => {});
    return;
  }
  const taskId = response.headers.get("X-Task-Id");
  question.taskId = taskId;
  if (response.status === 204 || !taskId) {
    setBusy(false);
    return;
  }
  await follow(taskId, answer, "0-0", { response, userText: text });
}

async function stop() {
  const following = state.follow;
  if (!following) return;
  following.stopRequested = true;
  $("#stop").disabled = true;
  try {
    await api.json("POST", `/api/chat/tasks/${encodeURIComponent(following.taskId)}/cancel`);
  } catch (error) {
    $("#stop").disabled = false;
    following.stopRequested = false;
    showError(error);
  }
  // The stream now ends with its finish chunk; follow() draws the rest.
}

// --- signing in (dev server only) ---------------------------------------------------------

function handleAuthError(error) {
  if (!error || error.status !== 401 || !api.auth.token) return false;
  api.auth.signOut();
  drawAccount();
  showError({ code: error.code, message: `${error.message} You are signed out now; sign in again to see your chats.` });
  refreshSessions();
  restartEvents();
  return true;
}

function drawAccount() {
  const user = api.auth.user;
  const canLogin = Boolean(state.info && state.info.dev_login);
  $("#account").hidden = !canLogin && !user;
  $("#signed-in").hidden = !user;
  $("#signed-out").hidden = Boolean(user);
  $("#whoami").textContent = user || "";
  document.body.dataset.user = user || "";
}

async function signIn(userId) {
  hideError();
  let answer;
  try {
    answer = await api.json("POST", "/dev/login", { user_id: userId });
  } catch (error) {
    return showError(error);
  }
  await switchAccount(() => api.auth.signIn(answer.token, answer.user_id));
}

async function signOut() {
  await switchAccount(() => api.auth.signOut());
}

/** Another identity sees other chats: start over with an empty one. */
async function switchAccount(change) {
  document.body.dataset.ready = "false";
  change();
  drawAccount();
  await openSession(null);
  history.pushState(null, "", location.pathname + location.search);
  await refreshSessions();
  document.body.dataset.ready = "true";
}

async function loadInfo() {
  try {
    state.info = await api.json("GET", "/dev/info");
  } catch {
    state.info = null; // not the dev server: no banner, no dev login
  }
  const banner = $("#model-banner");
  if (state.info) {
    banner.dataset.scripted = state.info.scripted ? "true" : "false";
    banner.textContent = state.info.scripted
      ? "Answers come from the scripted model: no CHAT_LLM_API_KEY is set, so replies follow simple rules. " +
        "Try “find an agent for newsletters” or “create an agent that summarizes my email”."
      : `Model: ${state.info.model}`;
    banner.hidden = false;
  }
  drawAccount();
}

// --- wiring ------------------------------------------------------------------------------

function autoGrow() {
  const input = $("#input");
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 200)}px`;
}

function bind() {
  $("#composer").addEventListener("submit", (event) => {
    event.preventDefault();
    send($("#input").value);
  });
  $("#input").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send($("#input").value);
    }
  });
  $("#input").addEventListener("input", autoGrow);
  $("#stop").addEventListener("click", stop);
  $("#new-chat").addEventListener("click", () => navigate(null));
  $("#error-banner .close").addEventListener("click", hideError);
  $("#login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const userId = $("#login-user").value.trim();
    if (userId) signIn(userId);
  });
  $("#logout-button").addEventListener("click", signOut);
  window.addEventListener("popstate", () => openSession(location.hash.slice(1) || null));
}

async function main() {
  messages = new MessageList($("#messages"));
  bind();
  setBusy(false);
  await loadInfo();
  await refreshSessions();
  await openSession(location.hash.slice(1) || null);
  document.body.dataset.ready = "true";
}

main();
