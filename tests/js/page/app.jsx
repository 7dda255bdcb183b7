// A plain useChat front end on another origin, as a Vite or Next.js app would be: the proof
// page of tests/e2e/test_ai_sdk_page.py. `?api=<base>/api/chat&chat=<id>` picks the backend
// and the chat; the chat id stays in the address, so a reload comes back to it.
import { useChat } from "@ai-sdk/react";
import { DefaultChatTransport } from "ai7"; // the ai that @ai-sdk/react 4 runs on
import { useEffect, useMemo, useState } from "react";
import { createRoot } from "react-dom/client";

const params = new URLSearchParams(location.search);
const API = params.get("api");
const CHAT = params.get("chat");

async function loadHistory() {
  const response = await fetch(`${API}/sessions/${encodeURIComponent(CHAT)}/messages`);
  if (response.status === 404) return []; // a new chat: the first message creates it
  if (!response.ok) throw new Error(`history: HTTP ${response.status}`);
  return (await response.json()).messages;
}

function Part({ part }) {
  if (part.type === "text") return <p className="text">{part.text}</p>;
  if (part.type === "reasoning") return <details className="reasoning"><summary>Thinking</summary>{part.text}</details>;
  if (part.type.startsWith("tool-")) {
    return (
      <div className="tool" data-tool={part.type.slice(5)} data-state={part.state}>
        {part.type.slice(5)}: {part.state}
      </div>
    );
  }
  return null;
}

function Chat({ initial }) {
  const transport = useMemo(() => new DefaultChatTransport({ api: API }), []);
  const { messages, sendMessage, regenerate, stop, status, error } = useChat({
    id: CHAT,
    messages: initial,
    transport,
    resume: true,
  });
  const [input, setInput] = useState("");
  useEffect(() => {
    document.body.dataset.status = status;
  }, [status]);
  return (
    <main>
      {messages.map((message) => (
        <div key={message.id} className={`message ${message.role}`} data-id={message.id}>
          {message.parts.map((part, i) => <Part key={i} part={part} />)}
        </div>
      ))}
      {error && <p className="error">{String(error.message || error)}</p>}
      <form
        onSubmit={(event) => {
          event.preventDefault();
          if (!input.trim()) return;
          sendMessage({ text: input });
          setInput("");
        }}
      >
        <input id="input" value={input} onChange={(e) => setInput(e.target.value)} />
        <button id="send" type="submit">Send</button>
        <button id="stop" type="button" onClick={() => stop()}>Stop</button>
        <button id="regenerate" type="button" onClick={() => regenerate()}>Regenerate</button>
      </form>
    </main>
  );
}

function App() {
  const [initial, setInitial] = useState(null);
  useEffect(() => {
    loadHistory().then(setInitial, (e) => setInitial({ error: String(e) }));
  }, []);
  if (initial === null) return <p>Loading…</p>;
  if (initial.error) return <p className="error">{initial.error}</p>;
  document.body.dataset.ready = "true";
  return <Chat initial={initial} />;
}

createRoot(document.getElementById("root")).render(<App />);
