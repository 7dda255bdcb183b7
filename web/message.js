// The conversation as data: UI message chunks (the AI SDK protocol) and stored history in,
// messages with parts out. No DOM here; view.js draws what this builds.
//
//   const conversation = new Conversation();
//   const answer = conversation.add(assistantMessage(taskId));
//   conversation.apply(answer, {type: "text-start", id: "t1"});   // → messages to redraw
//
// A long-running tool's card belongs to the turn that called it, but its result arrives in
// the operation's own task: tool chunks go to the message that owns the tool call, wherever
// they come from, so a card is never drawn twice.

export const PENDING_OUTPUTS = new Set(["operation_started", "operation_pending", "operation_in_progress"]);
const INTERRUPTED_MARK = "[interrupted]";

export function userMessage(text, taskId = null) {
  return { role: "user", taskId, text };
}

export function assistantMessage(taskId = null) {
  return {
    role: "assistant",
    taskId,
    id: null,
    parts: [],
    error: null,
    usage: null,
    finished: false,
    stopped: false,
  };
}

function toolPart(toolCallId, toolName) {
  return { kind: "tool", toolCallId, toolName, state: "input-streaming", input: undefined, output: undefined, errorText: null, operationTaskId: null, progress: null };
}

/** What a tool output means for its card: done, or still running elsewhere. */
export function setToolOutput(part, output) {
  part.output = output;
  if (output && typeof output === "object" && PENDING_OUTPUTS.has(output.type)) {
    part.state = "pending";
    part.operationTaskId = output.task_id || part.operationTaskId;
  } else {
    part.state = "output-available";
    part.errorText = null;
  }
}

export class Conversation {
  constructor() {
    this.messages = [];
    this.tools = new Map(); // toolCallId → {message, part}
  }

  add(message) {
    this.messages.push(message);
    for (const part of message.parts || []) {
      if (part.kind === "tool") this.tools.set(part.toolCallId, { message, part });
    }
    return message;
  }

  remove(message) {
    this.messages = this.messages.filter((m) => m !== message);
    for (const [id, owner] of this.tools) if (owner.message === message) this.tools.delete(id);
  }

  tool(toolCallId) {
    return this.tools.get(toolCallId);
  }

  /** Apply one chunk to `message`; returns the messages whose drawing changed. */
  apply(message, chunk) {
    const touched = new Set([message]);
    const textPart = (id) => {
      let part = findLast(message.parts, (p) => p.kind === "text" && p.id === id);
      if (!part) {
        // The AI SDK would fail here; the page draws what it can and says so in the console.
        if (chunk.type !== "text-start") console.warn("text chunk for an unknown text part", chunk);
        part = { kind: "text", id, text: "", done: false };
        message.parts.push(part);
      }
      return part;
    };
    const tool = (id, name) => {
      const owner = this.tools.get(id);
      if (owner) {
        touched.add(owner.message);
        return owner.part;
      }
      const part = toolPart(id, name || "tool");
      message.parts.push(part);
      this.tools.set(id, { message, part });
      return part;
    };

    switch (chunk.type) {
      case "start":
        if (chunk.messageId && !message.id) message.id = chunk.messageId;
        break;
      case "text-start":
        textPart(chunk.id);
        break;
      case "text-delta":
        textPart(chunk.id).text += chunk.delta;
        break;
      case "text-end":
        textPart(chunk.id).done = true;
        break;
      case "tool-input-start":
        tool(chunk.toolCallId, chunk.toolName);
        break;
      case "tool-input-available": {
        const part = tool(chunk.toolCallId, chunk.toolName);
        part.input = chunk.input;
        if (part.state === "input-streaming") part.state = "input-available";
        break;
      }
      case "tool-output-available":
        setToolOutput(tool(chunk.toolCallId), chunk.output);
        break;
      case "tool-output-error": {
        const part = tool(chunk.toolCallId);
        part.state = "output-error";
        part.errorText = chunk.errorText;
        break;
      }
      case "data-operation-started": {
        // The turn started a long operation: its card waits for the operation's task.
        const owner = this.tools.get(chunk.data.toolCallId);
        if (owner) {
          setToolOutput(owner.part, { type: "operation_started", task_id: chunk.data.taskId });
          touched.add(owner.message);
        }
        break;
      }
      case "data-progress": {
        const owner = chunk.id && this.tools.get(chunk.id);
        if (owner) {
          owner.part.progress = chunk.data;
          touched.add(owner.message);
        }
        break;
      }
      case "data-usage":
        message.usage = chunk.data;
        break;
      case "error":
        message.error = chunk.errorText;
        break;
      case "abort":
        message.stopped = true;
        break;
      case "finish":
        message.finished = true;
        for (const part of message.parts) if (part.kind === "text") part.done = true;
        break;
      default:
        break; // start-step, finish-step, reasoning, other data-*: nothing to draw
    }
    return [...touched];
  }
}

function findLast(items, test) {
  for (let i = items.length - 1; i >= 0; i -= 1) if (test(items[i])) return items[i];
  return undefined;
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * Stored messages (OpenAI shape: role, content, tool_calls, tool_call_id, task_id) as the
 * page's messages: the assistant and tool messages of one task make one assistant message,
 * as its stream did.
 */
export function fromHistory(stored) {
  const conversation = new Conversation();
  let current = null;
  for (const m of stored) {
    if (m.role === "user") {
      conversation.add(userMessage(m.content || "", m.task_id || null));
      current = null;
      continue;
    }
    if (m.role !== "assistant" && m.role !== "tool") continue;
    if (!current || current.taskId !== (m.task_id || null)) {
      current = conversation.add(assistantMessage(m.task_id || null));
      current.finished = true;
    }
    if (m.role === "assistant") {
      let text = m.content || "";
      if (text.endsWith(INTERRUPTED_MARK)) {
        text = text.slice(0, -INTERRUPTED_MARK.length).trimEnd();
        current.stopped = true;
      }
      if (text) current.parts.push({ kind: "text", id: `history-${m.sequence}`, text, done: true });
      for (const call of m.tool_calls || []) {
        const part = toolPart(call.id, call.function?.name);
        part.input = parseJson(call.function?.arguments || "{}");
        part.state = "input-available";
        current.parts.push(part);
        conversation.tools.set(call.id, { message: current, part });
      }
    } else {
      const owner = conversation.tools.get(m.tool_call_id);
      if (!owner) continue;
      const output = parseJson(m.content || "");
      if (output && typeof output === "object" && !Array.isArray(output) && "error" in output && Object.keys(output).length === 1) {
        owner.part.state = "output-error";
        owner.part.errorText = String(output.error);
      } else {
        setToolOutput(owner.part, output);
      }
    }
  }
  return conversation;
}
