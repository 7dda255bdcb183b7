// Server-Sent Events read from a fetch() response, so a stream can be POSTed to, carry an
// Authorization header and start from a cursor — none of which EventSource can do.
//
//   for await (const event of readEvents(response)) {
//     event.id     // the `id:` in force (the Redis entry id: our cursor)
//     event.data   // the joined `data:` lines
//   }
//
// Parsing follows the WHATWG rules the AI SDK's eventsource-parser follows: comments
// (heartbeats) and events without data are skipped, `id` persists until changed.

const LINE_BREAK = /\r\n|\r|\n/;

export async function* readEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let data = [];
  let id = null;
  let event = "message";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      for (;;) {
        const match = LINE_BREAK.exec(buffer);
        // A lone "\r" at the end may be the first half of "\r\n": wait for the rest.
        if (!match || (match[0] === "\r" && match.index === buffer.length - 1)) break;
        const line = buffer.slice(0, match.index);
        buffer = buffer.slice(match.index + match[0].length);
        if (line === "") {
          if (data.length) yield { id, event, data: data.join("\n") };
          data = [];
          event = "message";
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let text = colon < 0 ? "" : line.slice(colon + 1);
        if (text.startsWith(" ")) text = text.slice(1);
        if (field === "data") data.push(text);
        else if (field === "id" && !text.includes("\0")) id = text;
        else if (field === "event") event = text;
      }
    }
  } finally {
    // Leaving the loop early (abort, switch of chat) must close the connection too.
    reader.cancel().catch(() => {});
  }
}
