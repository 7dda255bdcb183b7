// Drawing: messages, tool cards, the sidebar, banners. Text always goes in as textContent,
// never as HTML, so nothing a model or a user writes can run in the page.
//
//   const list = new MessageList(document.querySelector("#messages"));
//   list.draw(message);         // first time: appended; later: redrawn in place

const $ = (selector) => document.querySelector(selector);

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("data-")) node.setAttribute(name, value);
    else node[name] = value;
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function pretty(value) {
  if (value === undefined) return "";
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

const STATE_LABELS = {
  "input-streaming": "preparing…",
  "input-available": "running…",
  pending: "in progress",
  "output-available": "done",
  "output-error": "failed",
};

/** One line saying what a tool's output holds, where we know its shape. */
function outputSummary(part) {
  const output = part.output;
  if (!output || typeof output !== "object") return null;
  if (Array.isArray(output.agents)) {
    const names = output.agents.slice(0, 3).map((a) => a.name).filter(Boolean);
    const more = output.agents.length > names.length ? ` and ${output.agents.length - names.length} more` : "";
    return output.agents.length ? `Found ${output.agents.length}: ${names.join(", ")}${more}` : "No agents found";
  }
  if (output.type === "agent_saved") return `Saved “${output.agent_name || "your agent"}”`;
  if (output.type === "agent_generated") return `Built “${output.agent_name || "your agent"}”`;
  if (part.state === "pending") return output.message || "Running in the background; the result will appear here.";
  return null;
}

function toolCard(part) {
  const card = el("div", {
    class: "tool-card",
    "data-tool-call-id": part.toolCallId,
    "data-tool-name": part.toolName,
    "data-state": part.state,
  });
  const head = el(
    "div",
    { class: "tool-head" },
    el("span", { class: "tool-icon", text: part.state === "output-error" ? "!" : "⚙" }),
    el("span", { class: "tool-name", text: part.toolName }),
    el("span", { class: "tool-state", text: STATE_LABELS[part.state] || part.state }),
  );
  card.append(head);
  const summary = outputSummary(part);
  if (summary) card.append(el("div", { class: "tool-summary", text: summary }));
  if (part.state === "pending") {
    let waiting = "Waiting for the service to report back…";
    if (part.progress && part.progress.elapsedSeconds !== undefined) waiting = `Still working (${part.progress.elapsedSeconds}s)…`;
    card.append(el("div", { class: "tool-pending" }, el("span", { class: "spinner" }), el("span", { text: waiting })));
  }
  if (part.input !== undefined) {
    card.append(el("details", { class: "tool-input" }, el("summary", { text: "Input" }), el("pre", { text: pretty(part.input) })));
  }
  if (part.state === "output-available") {
    card.append(el("details", { class: "tool-output" }, el("summary", { text: "Output" }), el("pre", { text: pretty(part.output) })));
  }
  if (part.state === "output-error") card.append(el("div", { class: "tool-error", role: "alert", text: part.errorText || "The tool failed." }));
  return card;
}

function usageText(usage) {
  if (!usage || usage.totalTokens === undefined) return null;
  return `${usage.totalTokens} tokens (${usage.promptTokens} in, ${usage.completionTokens} out)`;
}

export class MessageList {
  constructor(root) {
    this.root = root;
    this.nodes = new Map(); // message → element
  }

  clear() {
    this.nodes.clear();
    this.root.querySelectorAll(".message").forEach((node) => node.remove());
    this.updateEmpty();
  }

  updateEmpty() {
    const empty = $("#empty-state");
    if (empty) empty.hidden = this.nodes.size > 0;
  }

  remove(message) {
    this.nodes.get(message)?.remove();
    this.nodes.delete(message);
    this.updateEmpty();
  }

  draw(message, { streaming = false } = {}) {
    const fresh = this.build(message, streaming);
    const old = this.nodes.get(message);
    if (old) {
      // Keep open <details> open across redraws: the reader may be looking at an output.
      const open = new Set([...old.querySelectorAll("details[open]")].map((d) => d.dataset.key));
      fresh.querySelectorAll("details").forEach((d) => {
        if (open.has(d.dataset.key)) d.open = true;
      });
      old.replaceWith(fresh);
    } else {
      this.root.append(fresh);
    }
    this.nodes.set(message, fresh);
    this.updateEmpty();
    return fresh;
  }

  build(message, streaming) {
    if (message.role === "user") {
      return el("div", { class: "message user", "data-task-id": message.taskId || undefined }, el("div", { class: "bubble", text: message.text }));
    }
    const node = el("div", {
      class: "message assistant",
      "data-task-id": message.taskId || undefined,
      "data-state": streaming ? "streaming" : message.finished ? "finished" : "idle",
    });
    const parts = el("div", { class: "parts" });
    for (const part of message.parts) {
      if (part.kind === "text") {
        if (part.text) parts.append(el("div", { class: "part-text", "data-text-id": part.id, text: part.text }));
      } else if (part.kind === "tool") {
        const card = toolCard(part);
        card.querySelectorAll("details").forEach((d) => (d.dataset.key = `${part.toolCallId}:${d.className}`));
        parts.append(card);
      }
    }
    if (streaming) {
      const last = parts.lastElementChild;
      if (last && last.classList.contains("part-text")) last.append(el("span", { class: "caret" }));
      else parts.append(el("div", { class: "typing", "aria-label": "The assistant is answering" }, el("span"), el("span"), el("span")));
    }
    node.append(parts);
    if (message.error) node.append(el("div", { class: "message-error", role: "alert", text: message.error }));
    const footer = [];
    if (message.stopped) footer.push(el("span", { class: "badge stopped", text: "Stopped" }));
    const usage = usageText(message.usage);
    if (usage) footer.push(el("span", { class: "usage", text: usage }));
    if (footer.length) node.append(el("div", { class: "message-footer" }, ...footer));
    if (!parts.childElementCount && !message.error && !footer.length) node.classList.add("empty");
    return node;
  }

  scrollToEnd(force = false) {
    const scroller = this.root;
    const nearEnd = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 120;
    if (force || nearEnd) scroller.scrollTop = scroller.scrollHeight;
  }
}

export function drawSessions(sessions, currentId, running, { onOpen, onDelete }) {
  const list = $("#sessions");
  list.replaceChildren(
    ...sessions.map((s) => {
      const link = el("a", { class: "session-link", href: `#${s.id}`, text: s.title || "New chat", title: s.title || "New chat" });
      link.addEventListener("click", (event) => {
        event.preventDefault();
        onOpen(s.id);
      });
      const remove = el("button", { class: "delete-session", type: "button", title: "Delete this chat", "aria-label": `Delete ${s.title || "chat"}`, text: "×" });
      remove.addEventListener("click", () => onDelete(s.id));
      const item = el("li", { class: "session-item", "data-session-id": s.id }, el("span", { class: "running-dot", title: "Answering…" }), link, remove);
      item.classList.toggle("active", s.id === currentId);
      item.classList.toggle("running", running.has(s.id));
      return item;
    }),
  );
  $("#sessions-empty").hidden = sessions.length > 0;
}

export function showError(error) {
  const banner = $("#error-banner");
  const code = error && error.code ? error.code : "ERROR";
  banner.querySelector(".text").textContent = error && error.message ? error.message : String(error);
  banner.querySelector(".code").textContent = code;
  banner.dataset.code = code;
  banner.hidden = false;
}

export function hideError() {
  $("#error-banner").hidden = true;
}

export function setConnection(text) {
  const status = $("#connection-status");
  status.textContent = text || "";
  status.hidden = !text;
}
