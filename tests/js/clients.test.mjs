// The AI SDK's own clients (AbstractChat + DefaultChatTransport of ai 5, 6 and 7) against the
// real dev server: what a useChat front end does, and after each step the server's
// GET /sessions/{id}/messages equals the client's `messages`.
//
//   CHAT_API=http://127.0.0.1:8000/api/chat SCRIPTED_URL=http://127.0.0.1:8001 \
//     node --test clients.test.mjs
//
// Started by tests/e2e/test_ai_sdk_clients.py, which runs the dev server.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, test } from "node:test";

import * as ai5 from "ai5";
import * as ai6 from "ai6";
import * as ai7 from "ai7";

const API = process.env.CHAT_API;
const SCRIPTED = process.env.SCRIPTED_URL;
if (!API || !SCRIPTED) throw new Error("CHAT_API and SCRIPTED_URL must be set");

const VERSIONS = { "ai 5": ai5, "ai 6": ai6, "ai 7": ai7 };

/** The state useChat keeps, without React: what AbstractChat needs of it. */
class State {
  constructor(messages = []) {
    this.messages = messages;
    this.status = "ready";
    this.error = undefined;
    this.queuedMessages = [];
  }
  pushMessage = (message) => {
    this.messages = this.messages.concat(message);
  };
  popMessage = () => {
    this.messages = this.messages.slice(0, -1);
  };
  replaceMessage = (index, message) => {
    this.messages = [...this.messages.slice(0, index), this.snapshot(message), ...this.messages.slice(index + 1)];
  };
  snapshot = (value) => structuredClone(value);
}

function chatOf(sdk, { id = randomUUID(), messages = [] } = {}) {
  class Chat extends sdk.AbstractChat {
    constructor() {
      super({ id, state: new State(messages), transport: new sdk.DefaultChatTransport({ api: API }) });
    }
  }
  const chat = new Chat();
  chat.errors = [];
  chat.onError = (error) => chat.errors.push(error);
  return chat;
}

const plain = (value) => JSON.parse(JSON.stringify(value));

async function serverMessages(id) {
  const response = await fetch(`${API}/sessions/${id}/messages`);
  assert.equal(response.status, 200, await response.clone().text());
  return (await response.json()).messages;
}

/** The server's history equals what the client shows. */
async function assertSameAsServer(chat) {
  assert.deepEqual(await serverMessages(chat.id), plain(chat.messages));
}

async function script(...behaviours) {
  const response = await fetch(`${SCRIPTED}/_scripted/queue`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(behaviours),
  });
  assert.equal(response.status, 200);
}

async function until(condition, what, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const last = (chat) => chat.messages.at(-1);
const textOf = (message) =>
  (message?.parts ?? []).filter((p) => p.type === "text").map((p) => p.text).join("");
const toolParts = (message) => (message?.parts ?? []).filter((p) => p.type.startsWith("tool-"));
const answering = (chat) => last(chat)?.role === "assistant" && textOf(last(chat)).length > 0;
const slowWords = (n) => Array.from({ length: n }, (_, i) => `w${i}`).join(" ");

function assertSettled(chat) {
  assert.equal(chat.status, "ready", `status ${chat.status}: ${chat.errors.map(String)}`);
  assert.deepEqual(chat.errors.map(String), []);
}

for (const [name, sdk] of Object.entries(VERSIONS)) {
  describe(name, () => {
    test("a message streams, and the server's history is the client's", async () => {
      const chat = chatOf(sdk);
      await chat.sendMessage({ text: "Hello there!" });
      assertSettled(chat);
      assert.deepEqual(chat.messages.map((m) => m.role), ["user", "assistant"]);
      assert.match(textOf(last(chat)), /^Hello, nice to meet you!/);
      await assertSameAsServer(chat);
    });

    test("stop() disconnects, resumeStream() brings the rest once", async () => {
      const chat = chatOf(sdk);
      await script({ kind: "reply", text: slowWords(60), delay_ms: 30, stream: true });
      const sending = chat.sendMessage({ text: "count slowly" });
      await until(() => answering(chat), "the first words");
      await chat.stop();
      await sending;
      assert.notEqual(textOf(last(chat)), slowWords(60));
      await chat.resumeStream();
      assertSettled(chat);
      assert.deepEqual(chat.messages.map((m) => m.role), ["user", "assistant"]);
      assert.equal(textOf(last(chat)), slowWords(60));
      await assertSameAsServer(chat);
    });

    test("a tool turn shows its tool once, with its result, then the answer", async () => {
      const chat = chatOf(sdk);
      await chat.sendMessage({ text: "Find an agent for 'newsletters'" });
      assertSettled(chat);
      const [tool] = toolParts(last(chat));
      assert.equal(toolParts(last(chat)).length, 1);
      assert.equal(tool.type, "tool-find_agent");
      assert.equal(tool.state, "output-available");
      assert.ok(textOf(last(chat)).length > 0);
      await assertSameAsServer(chat);
    });

    test("a delegated operation goes from pending to its result in the same message", async () => {
      const chat = chatOf(sdk);
      const states = [];
      const sending = chat.sendMessage({ text: "Create an agent that chases unpaid invoices" });
      await until(() => toolParts(last(chat))[0]?.state === "input-available", "the pending tool");
      states.push("input-available");
      await sending;
      assertSettled(chat);
      const message = last(chat);
      assert.deepEqual(chat.messages.map((m) => m.role), ["user", "assistant"]);
      const tools = toolParts(message);
      assert.equal(tools.length, 1, JSON.stringify(message.parts));
      assert.equal(tools[0].type, "tool-create_agent");
      assert.equal(tools[0].state, "output-available");
      assert.ok(textOf(message).length > 0, "the model's continuation follows");
      await assertSameAsServer(chat);
    });

    test("a reload while an operation is pending: /messages then resume show it whole", async () => {
      const first = chatOf(sdk);
      const sending = first.sendMessage({ text: "Create an agent that sorts my email" });
      await until(() => toolParts(last(first))[0]?.state === "input-available", "the pending tool");
      await first.stop(); // the tab closes
      await sending;

      const history = await serverMessages(first.id);
      assert.deepEqual(history.map((m) => m.role), ["user"]); // the answer comes from the resume
      const reloaded = chatOf(sdk, { id: first.id, messages: history });
      await reloaded.resumeStream();
      assertSettled(reloaded);
      assert.deepEqual(reloaded.messages.map((m) => m.role), ["user", "assistant"]);
      const tools = toolParts(last(reloaded));
      assert.equal(tools.length, 1, JSON.stringify(last(reloaded).parts));
      assert.equal(tools[0].state, "output-available");
      assert.ok(textOf(last(reloaded)).length > 0);
      assert.equal(last(reloaded).id, last(first).id);
      await assertSameAsServer(reloaded);
    });

    test("regenerate() replaces the answer on both sides", async () => {
      const chat = chatOf(sdk);
      await chat.sendMessage({ text: "Tell me about streaming" });
      const before = last(chat).id;
      await script({ kind: "reply", text: "A second, different answer.", stream: true });
      await chat.regenerate();
      assertSettled(chat);
      assert.deepEqual(chat.messages.map((m) => m.role), ["user", "assistant"]);
      assert.notEqual(last(chat).id, before);
      assert.equal(textOf(last(chat)), "A second, different answer.");
      await assertSameAsServer(chat);
    });

    test("editing an earlier message rewinds the conversation on both sides", async () => {
      const chat = chatOf(sdk);
      await chat.sendMessage({ text: "First question" });
      await chat.sendMessage({ text: "Second question" });
      const firstId = chat.messages[0].id;
      await script({ kind: "reply", text: "An answer to the edit.", stream: true });
      await chat.sendMessage({ text: "First question, edited", messageId: firstId });
      assertSettled(chat);
      assert.deepEqual(chat.messages.map((m) => m.role), ["user", "assistant"]);
      assert.equal(chat.messages[0].id, firstId);
      assert.equal(textOf(chat.messages[0]), "First question, edited");
      assert.equal(textOf(last(chat)), "An answer to the edit.");
      await assertSameAsServer(chat);
    });

    test("resuming a chat id the server has never seen is quietly nothing", async () => {
      const chat = chatOf(sdk);
      await chat.resumeStream();
      assertSettled(chat);
      assert.deepEqual(chat.messages, []);
    });

    test("POST /{id}/stop ends the answer; both sides keep what was said", async () => {
      const chat = chatOf(sdk);
      await script({ kind: "reply", text: slowWords(200), delay_ms: 30, stream: true });
      const sending = chat.sendMessage({ text: "count for a long time" });
      await until(() => answering(chat), "the first words");
      const stopped = await fetch(`${API}/${chat.id}/stop`, { method: "POST" });
      assert.equal(stopped.status, 204);
      await sending;
      assertSettled(chat);
      assert.ok(textOf(last(chat)).length < slowWords(200).length);
      await assertSameAsServer(chat);
      assert.equal((await fetch(`${API}/${chat.id}/stop`, { method: "POST" })).status, 204);
    });

    test("reasoning streams as a reasoning part, kept in the history", async () => {
      const chat = chatOf(sdk);
      await chat.sendMessage({ text: "Think it through: what are you?" });
      assertSettled(chat);
      const reasoning = last(chat).parts.filter((p) => p.type === "reasoning");
      assert.equal(reasoning.length, 1);
      assert.equal(reasoning[0].state, "done");
      assert.match(reasoning[0].text, /The user wrote/);
      assert.ok(textOf(last(chat)).length > 0);
      await assertSameAsServer(chat);
    });
  });
}
