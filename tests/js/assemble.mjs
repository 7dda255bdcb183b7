// Assemble a recorded SSE body the way the AI SDK's own client does, and print the result.
//
//   node assemble.mjs recorded.sse        (or: … | node assemble.mjs -)
//   → {"ai": "6.0.230", "message": {id, role, parts}, "chunks": [...], "errors": [...]}
//
// The path is the one DefaultChatTransport + useChat take: parseJsonEventStream with
// uiMessageChunkSchema (strict in the pinned version: one unknown key and the chunk is
// refused), then readUIMessageStream, which enforces the order rules (no text-delta before
// its text-start, no tool output for an unknown tool call). `error` chunks are part of the
// protocol: they are listed in "errors" and the exit code stays 0. A chunk the schema
// refuses, or a stream the SDK cannot assemble, prints the reason and exits 1.

import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { parseJsonEventStream } from "@ai-sdk/provider-utils";
import { readUIMessageStream, uiMessageChunkSchema } from "ai";

const require = createRequire(import.meta.url);
const aiVersion = require("ai/package.json").version;

async function readInput(path) {
  if (!path || path === "-") {
    const parts = [];
    for await (const part of process.stdin) parts.push(part);
    return Buffer.concat(parts);
  }
  return readFile(path);
}

function byteStream(bytes) {
  // Cut in small pieces, so events split across reads are part of what is tested.
  return new ReadableStream({
    start(controller) {
      for (let i = 0; i < bytes.length; i += 97) controller.enqueue(new Uint8Array(bytes.subarray(i, i + 97)));
      controller.close();
    },
  });
}

/** A zod union failure lists every branch; the keys it refused are what matter. */
function describe(error) {
  const text = String((error && error.message) || error);
  const refused = [...new Set([...text.matchAll(/Unrecognized keys?: ([^\n]+?)\\?"?\n/g)].map((m) => m[1].replace(/[\\"]/g, "")))];
  const head = text.split("\n")[0].slice(0, 600);
  const name = (error && error.name) || "Error";
  return refused.length ? `${name}: ${head} Unrecognized keys: ${refused.join("; ")}` : `${name}: ${head}`;
}

function fail(reason, extra = {}) {
  process.stdout.write(JSON.stringify({ ai: aiVersion, ok: false, reason, ...extra }, null, 2) + "\n");
  process.exit(1);
}

const body = await readInput(process.argv[2]);
const chunks = [];
const errors = [];
const failures = [];

// What DefaultChatTransport.processResponseStream does: a refused chunk is thrown.
const chunkStream = parseJsonEventStream({ stream: byteStream(body), schema: uiMessageChunkSchema }).pipeThrough(
  new TransformStream({
    transform(result, controller) {
      if (!result.success) throw result.error;
      chunks.push(result.value);
      if (result.value.type === "error") errors.push(result.value.errorText);
      controller.enqueue(result.value);
    },
  }),
);

let message = null;
const errorTexts = new Set();
try {
  for await (const snapshot of readUIMessageStream({
    stream: chunkStream,
    onError: (error) => {
      // An `error` chunk reaches onError as Error(errorText); anything else is a failure.
      const text = error && error.message;
      if (errors.includes(text) && !errorTexts.has(text)) errorTexts.add(text);
      else failures.push(describe(error));
    },
  })) {
    message = snapshot;
  }
} catch (error) {
  failures.push(describe(error));
}

if (failures.length) fail(failures[0], { failures, chunks: chunks.length });
if (!message && !errors.length) fail("the stream held no chunk that makes a message", { chunks: chunks.length });
process.stdout.write(JSON.stringify({ ai: aiVersion, ok: true, message, chunks, errors }, null, 2) + "\n");
