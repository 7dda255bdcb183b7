// The chat page `make dev` serves: sessions in the sidebar (live titles), the chat (a
// useChat client, chat.jsx), dev sign-in that keeps anonymous chats, a mobile layout.
// The chat id is in the address (#<id>), so a reload comes back to the same chat.
import { useCallback, useEffect, useState } from "react";
import { createRoot } from "react-dom/client";

import { anonymous, auth, call, followEvents } from "./api.js";
import { ChatView } from "./chat.jsx";

const chatFromHash = () => decodeURIComponent(location.hash.slice(1)) || null;
const newChatId = () => crypto.randomUUID();

function App() {
  const [user, setUser] = useState(auth.user);
  const [chatId, setChatId] = useState(() => chatFromHash() || newChatId());
  const [sessions, setSessions] = useState([]);
  const [info, setInfo] = useState(null);
  const [sidebarOpen, setSidebarOpen] = useState(false);
  const [problem, setProblem] = useState(null);

  useEffect(() => {
    if (!location.hash) history.replaceState(null, "", `#${chatId}`);
    const onHash = () => chatFromHash() && setChatId(chatFromHash());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  useEffect(() => {
    document.body.dataset.user = user || "";
  }, [user]);
  useEffect(() => {
    call("GET", "/dev/info").then(setInfo, () => setInfo(null));
  }, []);

  const refresh = useCallback(async () => {
    if (!auth.token) return setSessions(anonymous.list());
    try {
      const body = await call("GET", "sessions?limit=100");
      setSessions(body.sessions.map((s) => ({ id: s.id, title: s.title })));
    } catch (error) {
      if (error.status === 401) signOut();
      else setProblem(error.message);
    }
  }, []);
  useEffect(() => {
    refresh();
  }, [user, refresh]);

  // Titles and new or deleted sessions arrive as events: no polling.
  useEffect(() => {
    const controller = new AbortController();
    const query = auth.token ? "" : `?session_id=${encodeURIComponent(chatId)}`;
    followEvents(query, (event) => {
      if (event.type === "title_changed") {
        if (!auth.token) anonymous.remember(event.session_id, event.title);
        setSessions((list) => list.map((s) => (s.id === event.session_id ? { ...s, title: event.title } : s)));
      } else if (event.type === "session_created" || event.type === "session_deleted") {
        refresh();
      }
    }, controller.signal);
    return () => controller.abort();
  }, [user, chatId, refresh]);

  const open = (id) => {
    location.hash = id;
    setChatId(id);
    setSidebarOpen(false);
  };
  const onActivity = (id) => {
    if (!sessions.some((s) => s.id === id)) {
      if (!auth.token) anonymous.remember(id);
      setSessions((list) => [{ id, title: null }, ...list.filter((s) => s.id !== id)]);
    }
  };
  // A finished answer may have named the chat (titles are made beside the turn); the event
  // says so too, but a new chat's event stream may have started after it.
  const settled = async (id) => {
    for (let attempt = 0; attempt < 4; attempt++) {
      const session = await call("GET", `sessions/${encodeURIComponent(id)}`).catch(() => null);
      if (session?.title) {
        if (!auth.token) anonymous.remember(id, session.title);
        setSessions((list) => list.map((s) => (s.id === id ? { ...s, title: session.title } : s)));
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 700));
    }
  };
  const remove = async (id) => {
    try {
      await call("DELETE", `sessions/${encodeURIComponent(id)}`);
    } catch (error) {
      if (error.status !== 404) return setProblem(error.message);
    }
    anonymous.forget(id);
    setSessions((list) => list.filter((s) => s.id !== id));
    if (id === chatId) open(newChatId());
  };
  const rename = async (id, title) => {
    try {
      await call("PATCH", `sessions/${encodeURIComponent(id)}`, { title });
      if (!auth.token) anonymous.remember(id, title);
      setSessions((list) => list.map((s) => (s.id === id ? { ...s, title } : s)));
    } catch (error) {
      setProblem(error.message);
    }
  };
  // Signing in keeps the chats this browser had anonymously: they become the user's.
  const signIn = async (userId) => {
    try {
      const { token } = await call("POST", "/dev/login", { user_id: userId });
      auth.set(userId, token);
      for (const { id } of anonymous.list()) {
        await call("PATCH", `sessions/${encodeURIComponent(id)}/assign-user`).catch(() => {});
      }
      anonymous.save([]);
      setUser(userId);
    } catch (error) {
      setProblem(error.message);
    }
  };
  function signOut() {
    auth.clear();
    setUser(null);
    open(newChatId());
  }

  const title = sessions.find((s) => s.id === chatId)?.title || "New chat";
  return (
    <div className={`layout${sidebarOpen ? " sidebar-open" : ""}`}>
      <aside id="sidebar">
        <div className="brand">
          <span className="logo" aria-hidden="true">◆</span>
          <span>Chat</span>
          <span className="tag">dev</span>
          <button id="close-sidebar" type="button" aria-label="Close the chat list" onClick={() => setSidebarOpen(false)}>×</button>
        </div>
        <button id="new-chat" type="button" onClick={() => open(newChatId())}>+ New chat</button>
        <nav aria-label="Your chats">
          <ul id="sessions">
            {sessions.map((s) => (
              <SessionItem key={s.id} session={s} active={s.id === chatId} onOpen={open} onDelete={remove} onRename={rename} />
            ))}
          </ul>
          {sessions.length === 0 && <p id="sessions-empty" className="muted">No chats yet.</p>}
        </nav>
        <Account user={user} devLogin={info?.dev_login} onSignIn={signIn} onSignOut={signOut} />
      </aside>
      <div id="scrim" onClick={() => setSidebarOpen(false)} />
      <main id="main">
        <header id="topbar">
          <button id="toggle-sidebar" type="button" aria-label="Open the chat list" onClick={() => setSidebarOpen(true)}>☰</button>
          <h1 id="chat-title">{title}</h1>
        </header>
        {info?.scripted && <div id="model-banner">{info.model}</div>}
        {problem && (
          <div id="error-banner" className="banner error" role="alert">
            <span>{problem}</span>
            <button type="button" aria-label="Dismiss" onClick={() => setProblem(null)}>×</button>
          </div>
        )}
        <ChatView key={`${user}:${chatId}`} chatId={chatId} onActivity={onActivity} onSettled={settled} />
      </main>
    </div>
  );
}

function SessionItem({ session, active, onOpen, onDelete, onRename }) {
  const [renaming, setRenaming] = useState(false);
  const [value, setValue] = useState(session.title || "");
  if (renaming) {
    return (
      <li className="session session-item renaming">
        <form onSubmit={(e) => { e.preventDefault(); setRenaming(false); if (value.trim()) onRename(session.id, value.trim()); }}>
          <input className="rename-input" value={value} autoFocus onChange={(e) => setValue(e.target.value)} onBlur={() => setRenaming(false)} />
        </form>
      </li>
    );
  }
  return (
    <li className={`session session-item${active ? " active" : ""}`} data-id={session.id}>
      <a className="session-link" href={`#${session.id}`} onClick={(e) => { e.preventDefault(); onOpen(session.id); }}>
        {session.title || "New chat"}
      </a>
      <button className="rename" type="button" aria-label="Rename" onClick={() => { setValue(session.title || ""); setRenaming(true); }}>✎</button>
      <button className="delete delete-session" type="button" aria-label="Delete" onClick={() => onDelete(session.id)}>×</button>
    </li>
  );
}

function Account({ user, devLogin, onSignIn, onSignOut }) {
  const [name, setName] = useState("");
  if (user) {
    return (
      <section id="account">
        <span>Signed in as <strong id="whoami">{user}</strong></span>
        <button id="logout-button" type="button" onClick={onSignOut}>Sign out</button>
      </section>
    );
  }
  if (!devLogin) return null;
  return (
    <section id="account">
      <form id="login-form" onSubmit={(e) => { e.preventDefault(); if (name.trim()) onSignIn(name.trim()); }}>
        <label htmlFor="login-user">Dev login</label>
        <div className="row">
          <input id="login-user" value={name} placeholder="user id, e.g. alice" autoComplete="username" pattern="[A-Za-z0-9_.@\-]{1,64}" onChange={(e) => setName(e.target.value)} />
          <button id="login-button" type="submit">Sign in</button>
        </div>
      </form>
      <p className="muted small">Anonymous: your chats are remembered in this browser; signing in keeps them.</p>
    </section>
  );
}

createRoot(document.getElementById("root")).render(<App />);
