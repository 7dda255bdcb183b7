"""Server-Sent Events framing of the chunk stream.

    encode_entry("1732200000000-0", '{"type":"text-delta","id":"t1","delta":"Hel"}')
    # b'id: 1732200000000-0\ndata: {"type":"text-delta","id":"t1","delta":"Hel"}\n\n'

`id:` carries the Redis stream entry id, the cursor a client resumes from with
`Last-Event-ID` or `?last_message_id=`. Heartbeats are comments, never an empty `data:`
line (the AI SDK would try to parse it). The stream ends with `data: [DONE]`.
"""

from __future__ import annotations

from sse_starlette.event import ServerSentEvent

SEP = "\n"

HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
    "x-vercel-ai-ui-message-stream": "v1",
}
MEDIA_TYPE = "text/event-stream"


def entry_event(entry_id: str | None, data: str) -> ServerSentEvent:
    return ServerSentEvent(data=data, id=entry_id, sep=SEP)


def encode_entry(entry_id: str | None, data: str) -> bytes:
    """One event's bytes. Chunk JSON has no raw line breaks, so the common case is a plain
    format (this runs once per entry per reader: a thousand readers of a turn make it hot)."""
    if "\n" in data or "\r" in data:
        return entry_event(entry_id, data).encode()
    if entry_id:
        return f"id: {entry_id}\ndata: {data}\n\n".encode()
    return f"data: {data}\n\n".encode()


HEARTBEAT = ServerSentEvent(comment="heartbeat", sep=SEP)
DONE = ServerSentEvent(data="[DONE]", sep=SEP)
HEARTBEAT_BYTES = HEARTBEAT.encode()
DONE_BYTES = DONE.encode()
