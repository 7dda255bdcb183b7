// One chat: the history from GET /sessions/{id}/messages, then `useChat` with
// `resume: true`, exactly as any AI SDK front end does it (README "With the AI SDK").
import { useChat } from "@ai-sdk/react";
import { DefaultChatTransport } from "ai";
import { useEffect, useMemo, useRef, useState } from "react";

import { API, auth, call } from "./api.js";
import { CopyButton } from "./copy.jsx";
import { Markdown } from "./markdown.jsx";

export function ChatView({ chatId, onActivity, onSettled }) {
  const [history, setHistory] = useState(null);
  const [failure, setFailure] = useState(null);
  useEffect(() => {
    call("GET", `sessions/${encodeURIComponent(chatId)}/messages`).then(
      (body) => setHistory(body.messages),
      (error) => (error.status === 404 ? setHistory([]) : setFailure(error)), // 404: a new chat
    );
  }, [chatId]);
  if (failure) return <p className="banner error" role="alert">{failure.message}</p>;
  if (history === null) return <p className="muted loading">Loading…</p>;
  return <Conversation chatId={chatId} history={history} onActivity={onActivity} onSettled={onSettled} />;
}

function Conversation({ chatId, history, onActivity, onSettled }) {
  const transport = useMemo(
    () => new DefaultChatTransport({ api: API, headers: () => auth.headers() }),
    [],
  );
  const { messages, sendMessage, regenerate, stop, status, error, clearError } = useChat({
    id: chatId,
    messages: history,
    transport,
    resume: true,
    experimental_throttle: 30,
    onFinish: () => onSettled(chatId),
  });
  const busy = status === "submitted" || status === "streaming";
  const bottom = useRef(null);

  useEffect(() => {
    document.body.dataset.busy = String(busy);
    document.body.dataset.status = status;
  }, [busy, status]);
  useEffect(() => {
    document.body.dataset.ready = "true";
    return () => {
      document.body.dataset.ready = "false";
    };
  }, []);
  useEffect(() => {
    bottom.current?.scrollIntoView({ block: "end" }); // returns a promise in new browsers
  }, [messages]);

  const send = (text) => {
    clearError();
    onActivity(chatId, text);
    sendMessage({ text });
  };
  // The AI SDK's stop() only disconnects; the stop route really ends the answer.
  const stopAnswer = () => {
    stop();
    call("POST", `${encodeURIComponent(chatId)}/stop`).catch(() => {});
  };
  const lastAssistant = messages.findLastIndex((m) => m.role === "assistant");

  return (
    <>
      <section id="messages" aria-live="polite">
        {messages.length === 0 && (
          <div id="empty-state">
            <h2>What can I help with?</h2>
            <p className="muted">Answers stream as they are written. Reload mid-answer: it picks up where it was.</p>
          </div>
        )}
        {messages.map((message, index) => (
          <Message
            key={message.id}
            message={message}
            busy={busy}
            last={index === lastAssistant}
            onEdit={(text) => {
              clearError();
              sendMessage({ text, messageId: message.id });
            }}
            onRegenerate={() => {
              clearError();
              regenerate({ messageId: message.id });
            }}
          />
        ))}
        {error && (
          <div id="error" className="banner error" role="alert">
            <span>{error.message || "The answer failed."}</span>
            <button id="retry" type="button" onClick={() => { clearError(); regenerate(); }}>
              Retry
            </button>
          </div>
        )}
        <div ref={bottom} />
      </section>
      <Composer busy={busy} onSend={send} onStop={stopAnswer} />
    </>
  );
}

function Composer({ busy, onSend, onStop }) {
  const [text, setText] = useState("");
  const submit = (event) => {
    event.preventDefault();
    if (!text.trim() || busy) return;
    onSend(text);
    setText("");
  };
  return (
    <form id="composer" onSubmit={submit}>
      <textarea
        id="input"
        rows={1}
        value={text}
        placeholder="Send a message…  (Enter sends, Shift+Enter for a new line)"
        aria-label="Message"
        onChange={(e) => setText(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === "Enter" && !e.shiftKey) submit(e);
        }}
      />
      {busy ? (
        <button id="stop" type="button" onClick={onStop}>■ Stop</button>
      ) : (
        <button id="send" type="submit">Send</button>
      )}
    </form>
  );
}

function Message({ message, busy, last, onEdit, onRegenerate }) {
  const [editing, setEditing] = useState(false);
  const text = message.parts.filter((p) => p.type === "text").map((p) => p.text).join("\n\n");
  if (message.role === "user") {
    return (
      <article className="message user" data-id={message.id}>
        {editing ? (
          <EditBox text={text} onCancel={() => setEditing(false)} onSave={(t) => { setEditing(false); onEdit(t); }} />
        ) : (
          <>
            <div className="bubble">{text}</div>
            <div className="actions">
              <CopyButton text={text} />
              <button className="edit" type="button" disabled={busy} onClick={() => setEditing(true)}>Edit</button>
            </div>
          </>
        )}
      </article>
    );
  }
  return (
    <article className="message assistant" data-id={message.id}>
      <div className="parts">
        {message.parts.map((part, i) => <Part key={i} part={part} />)}
      </div>
      {!(busy && last) && (
        <div className="actions">
          <CopyButton text={text} />
          <button className="regenerate" type="button" disabled={busy} onClick={onRegenerate}>Regenerate</button>
        </div>
      )}
    </article>
  );
}

function EditBox({ text, onSave, onCancel }) {
  const [value, setValue] = useState(text);
  return (
    <form className="edit-box" onSubmit={(e) => { e.preventDefault(); if (value.trim()) onSave(value); }}>
      <textarea className="edit-input" value={value} onChange={(e) => setValue(e.target.value)} rows={3} />
      <div className="row">
        <button className="save" type="submit">Save &amp; send</button>
        <button type="button" onClick={onCancel}>Cancel</button>
      </div>
    </form>
  );
}

const TOOL_STATES = {
  "input-streaming": "preparing…",
  "input-available": "running…",
  "output-available": "done",
  "output-error": "failed",
};

function Part({ part }) {
  if (part.type === "text") return <Markdown text={part.text} />;
  if (part.type === "reasoning") {
    return (
      <details className="reasoning">
        <summary>Thinking{part.state === "streaming" ? "…" : ""}</summary>
        <div className="reasoning-text">{part.text}</div>
      </details>
    );
  }
  if (part.type.startsWith("tool-")) {
    const name = part.type.slice(5);
    return (
      <div className="tool tool-card" data-tool={name} data-state={part.state}>
        <div className="tool-head">
          <span className="tool-name">{name}</span>
          <span className="tool-state">{TOOL_STATES[part.state] || part.state}</span>
        </div>
        {part.state === "output-error" && <div className="tool-error">{part.errorText}</div>}
        <ToolSummary output={part.state === "output-available" ? part.output : null} />
        <details>
          <summary>Details</summary>
          <pre>{JSON.stringify({ input: part.input, output: part.output }, null, 2)}</pre>
        </details>
      </div>
    );
  }
  return null; // data-* parts (usage, operation ids) are for programs, not people
}


/** What a person wants to know of a result: the agent made, and where it is kept. */
function ToolSummary({ output }) {
  if (!output || typeof output !== "object") return null;
  const name = output.agent_name || "your agent";
  if (output.type === "agent_saved") {
    return (
      <div className="tool-summary">
        Saved “{name}”
        {output.library_agent_link && (
          <>
            {" "}· <a href={output.library_agent_link} target="_blank" rel="noopener noreferrer">open in your library</a>
          </>
        )}
      </div>
    );
  }
  if (output.type === "agent_generated") return <div className="tool-summary">Built “{name}”</div>;
  if (Array.isArray(output.agents)) return <div className="tool-summary">{output.agents.length} agents found</div>;
  return null;
}
