"""The ordering rules an AI SDK client enforces on a UI message stream, as one assertion.

    assert_valid_turn(chunks)          # chunks: wire dicts in stream order
    assert_valid_content(chunks)       # what a turn produces, before its task frames it
    chunks = await stored_chunks(task_id)   # a task's stream as it is stored in Redis

The client throws on a `text-delta` whose `text-start` it has not seen (or after its
`text-end`), and on tool output for a tool call whose input it has not seen. Steps open
and close in pairs. A turn has one `start` (first) and one `finish` (last).
"""

from __future__ import annotations

import json
from typing import Any

from chat_core import keys
from chat_core.protocol import chunks as c
from chat_core.redis_client import get_redis


def assert_valid_turn(chunks: list[dict[str, Any]]) -> None:
    types = [c["type"] for c in chunks]
    assert types.count("finish") == 1 and types[-1] == "finish", types
    assert types.count("start") == 1 and types[0] == "start", types
    assert_valid_content(chunks)


def assert_valid_content(chunks: list[dict[str, Any]]) -> None:
    open_texts: set[str] = set()
    closed_texts: set[str] = set()
    tool_inputs: set[str] = set()
    step_open = False
    for chunk in chunks:
        kind = chunk["type"]
        if kind == "start-step":
            assert not step_open, "a step opened inside a step"
            step_open = True
        elif kind == "finish-step":
            assert step_open, "finish-step without start-step"
            step_open = False
            open_texts.clear()
        elif kind == "text-start":
            assert chunk["id"] not in open_texts | closed_texts, f"text {chunk['id']} started twice"
            open_texts.add(chunk["id"])
        elif kind == "text-delta":
            assert chunk["id"] in open_texts, f"text-delta before text-start of {chunk['id']}"
        elif kind == "text-end":
            assert chunk["id"] in open_texts, f"text-end without text-start of {chunk['id']}"
            open_texts.discard(chunk["id"])
            closed_texts.add(chunk["id"])
        elif kind == "tool-input-start":
            tool_inputs.add(chunk["toolCallId"])
        elif kind == "tool-input-available":
            tool_inputs.add(chunk["toolCallId"])
        elif kind in ("tool-output-available", "tool-output-error"):
            assert chunk["toolCallId"] in tool_inputs, (
                f"output before input of {chunk['toolCallId']}"
            )


def text_of(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["delta"] for c in chunks if c["type"] == "text-delta")


async def stored_chunks(task_id: str) -> list[dict[str, Any]]:
    entries = await get_redis().xrange(keys.task_stream(task_id))
    return [json.loads(fields["data"]) for _, fields in entries]


def text_step(text: str, text_id: str = "t") -> list[c.Chunk]:
    """One model step that only says `text`: what a producer writes for a short answer."""
    return [
        c.StartStep(),
        c.TextStart(id=text_id),
        c.TextDelta(id=text_id, delta=text),
        c.TextEnd(id=text_id),
        c.FinishStep(),
    ]
