"""Talking to the scripted model the way a chat service does: through the `openai` SDK,
rebuilding text and tool calls from the streamed chunks.

    seen = await stream(client, USER_HI, tools=[tool("find_agent")])
    seen.text, seen.calls[0].arguments, seen.finish_reasons
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from openai import AsyncOpenAI

USER_HI = [{"role": "user", "content": "hi"}]
MONEY_REQUEST = (
    "Please find me an agent that can help me with my business. "
    "Use the query 'moneny printing agent'"
)
TITLE_SYSTEM = (
    "Generate a very short title (3-6 words) for a chat conversation based on the user's "
    "first message. Return ONLY the title, no quotes or punctuation."
)


def tool(name: str) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": f"The {name} tool.",
            "parameters": {"type": "object", "properties": {}},
        },
    }


@dataclass
class StreamedCall:
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    deltas: int = 0


@dataclass
class Streamed:
    """What a client rebuilds from the chunks, the way a chat service does."""

    text_deltas: list[str] = field(default_factory=list)
    calls: dict[int, StreamedCall] = field(default_factory=dict)
    finish_reasons: list[str] = field(default_factory=list)
    usage: list[Any] = field(default_factory=list)
    chunks: int = 0

    @property
    def text(self) -> str:
        return "".join(self.text_deltas)


async def stream(
    client: AsyncOpenAI, messages: list[dict], seen: Streamed | None = None, **kwargs: Any
) -> Streamed:
    seen = seen if seen is not None else Streamed()
    response = await client.chat.completions.create(
        model="test-model", messages=messages, stream=True, **kwargs
    )
    async for chunk in response:
        seen.chunks += 1
        if chunk.usage is not None:
            seen.usage.append(chunk.usage)
        for choice in chunk.choices:
            if choice.delta.content:
                seen.text_deltas.append(choice.delta.content)
            for delta in choice.delta.tool_calls or []:
                call = seen.calls.setdefault(delta.index, StreamedCall())
                call.deltas += 1
                call.id = call.id or delta.id
                if delta.function and delta.function.name:
                    call.name = delta.function.name
                if delta.function and delta.function.arguments:
                    call.arguments += delta.function.arguments
            if choice.finish_reason:
                seen.finish_reasons.append(choice.finish_reason)
    return seen


async def complete(client: AsyncOpenAI, messages: list[dict], **kwargs):
    return await client.chat.completions.create(model="test-model", messages=messages, **kwargs)
