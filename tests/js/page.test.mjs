// The page's pure modules under node's test runner: its SSE reader and its chunk reducer.
//
//   node --test tests/js/        (tests/e2e/test_page_modules.py runs it)

import assert from "node:assert/strict";
import { test } from "node:test";

import { readEvents } from "../../web/sse.js";
import { Conversation, assistantMessage, fromHistory } from "../../web/message.js";

function responseOf(pieces) {
  const encoder = new TextEncoder();
  return new Response(
    new ReadableStream({
      start(controller) {
        for (const piece of pieces) controller.enqueue(typeof piece === "string" ? encoder.encode(piece) : piece);
        controller.close();
      },
    }),
  );
}

async function collect(pieces) {
  const events = [];
  for await (const event of readEvents(responseOf(pieces))) events.push(event);
  return events;
}

test("events split anywhere, comments, CRLF and a persisting id", async () => {
  const body = 'id: 1-0\r\ndata: {"a":1}\r\n\r\n: heartbeat\n\nid: 2-0\ndata: {"b":\ndata: 2}\n\ndata: [DONE]\n\n';
  for (const size of [1, 2, 3, 7, body.length]) {
    const pieces = [];
    for (let i = 0; i < body.length; i += size) pieces.push(body.slice(i, i + size));
    assert.deepEqual(await collect(pieces), [
      { id: "1-0", event: "message", data: '{"a":1}' },
      { id: "2-0", event: "message", data: '{"b":\n2}' },
      { id: "2-0", event: "message", data: "[DONE]" },
    ]);
  }
});

test("a multi-byte character cut between reads survives", async () => {
  const bytes = new TextEncoder().encode('data: {"t":"héllo ✓"}\n\n');
  const cut = bytes.indexOf(0xe2) + 1; // inside the three bytes of ✓
  const events = await collect([bytes.slice(0, cut), bytes.slice(cut)]);
  assert.equal(JSON.parse(events[0].data).t, "héllo ✓");
});

test("an unfinished last event is not dispatched", async () => {
  assert.deepEqual(await collect(['data: {"x":1}\n\ndata: {"y":2}\n']), [{ id: null, event: "message", data: '{"x":1}' }]);
});

test("chunks build a message; an operation's result lands on the turn's card", () => {
  const conversation = new Conversation();
  const turn = conversation.add(assistantMessage("turn"));
  const chunks = [
    { type: "start", messageId: "m1" },
    { type: "start-step" },
    { type: "text-start", id: "t1" },
    { type: "text-delta", id: "t1", delta: "Hel" },
    { type: "text-delta", id: "t1", delta: "lo" },
    { type: "text-end", id: "t1" },
    { type: "tool-input-start", toolCallId: "c1", toolName: "create_agent" },
    { type: "tool-input-available", toolCallId: "c1", toolName: "create_agent", input: { description: "x" } },
    { type: "tool-output-available", toolCallId: "c1", output: { type: "operation_started", task_id: "op1" } },
    { type: "data-usage", data: { totalTokens: 3 } },
    { type: "finish" },
  ];
  for (const chunk of chunks) conversation.apply(turn, chunk);
  assert.equal(turn.id, "m1");
  assert.equal(turn.parts[0].text, "Hello");
  assert.equal(turn.parts[1].state, "pending");
  assert.equal(turn.parts[1].operationTaskId, "op1");
  assert.ok(turn.finished);

  const operation = conversation.add(assistantMessage("op1"));
  const touched = conversation.apply(operation, { type: "tool-input-start", toolCallId: "c1", toolName: "create_agent" });
  assert.deepEqual(touched.sort(), [operation, turn].sort());
  conversation.apply(operation, { type: "tool-output-available", toolCallId: "c1", output: { type: "agent_saved" } });
  conversation.apply(operation, { type: "text-start", id: "t2" });
  conversation.apply(operation, { type: "text-delta", id: "t2", delta: "Ready." });
  assert.equal(operation.parts.length, 1, "the card is drawn once, on the turn");
  assert.equal(turn.parts[1].state, "output-available");
  assert.equal(operation.parts[0].text, "Ready.");
});

test("errors and stops", () => {
  const conversation = new Conversation();
  const message = conversation.add(assistantMessage("t"));
  conversation.apply(message, { type: "tool-input-start", toolCallId: "c", toolName: "find_agent" });
  conversation.apply(message, { type: "tool-output-error", toolCallId: "c", errorText: "boom" });
  conversation.apply(message, { type: "error", errorText: "The model failed." });
  assert.equal(message.parts[0].state, "output-error");
  assert.equal(message.parts[0].errorText, "boom");
  assert.equal(message.error, "The model failed.");
});

test("history: one message per task, tool results on their cards, interrupted answers", () => {
  const conversation = fromHistory([
    { role: "user", content: "find", task_id: "a", sequence: 0 },
    { role: "assistant", tool_calls: [{ id: "c1", function: { name: "find_agent", arguments: '{"query":"x"}' } }], task_id: "a", sequence: 1 },
    { role: "tool", tool_call_id: "c1", content: '{"agents":[]}', task_id: "a", sequence: 2 },
    { role: "assistant", content: "None found.", task_id: "a", sequence: 3 },
    { role: "user", content: "make one", task_id: "b", sequence: 4 },
    { role: "assistant", tool_calls: [{ id: "c2", function: { name: "create_agent", arguments: "{}" } }], task_id: "b", sequence: 5 },
    { role: "tool", tool_call_id: "c2", content: '{"type":"operation_pending","task_id":"op"}', task_id: "b", sequence: 6 },
    { role: "user", content: "again", task_id: "c", sequence: 7 },
    { role: "assistant", content: "Half an answ\n\n[interrupted]", task_id: "c", sequence: 8 },
    { role: "tool", tool_call_id: "c9", content: '{"error":"gone"}', task_id: "c", sequence: 9 },
  ]);
  const [, first, , second, , third] = conversation.messages;
  assert.deepEqual(first.parts.map((p) => p.kind), ["tool", "text"]);
  assert.equal(first.parts[0].state, "output-available");
  assert.deepEqual(first.parts[0].input, { query: "x" });
  assert.equal(second.parts[0].state, "pending");
  assert.equal(second.parts[0].operationTaskId, "op");
  assert.equal(third.parts[0].text, "Half an answ");
  assert.ok(third.stopped);
});
