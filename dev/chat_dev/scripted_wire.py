"""How an OpenAI-compatible provider writes an answer: completions, streamed chunks, errors.

    from chat_dev.scripted_brain import Reply, ToolCall
    from chat_dev.scripted_wire import Completion, sse
    completion = Completion(Reply(tool_calls=(ToolCall("find_agent", {"query": "tax"}),)),
                            model="m", prompt_tokens=12, include_usage=True)
    events = [sse(chunk) for chunk in completion.chunks()] + [sse(completion.usage_chunk())]
    completion.body()          # the same answer as one non-streaming `chat.completion`

Chunks are cut the way real providers cut them, so the client's reassembly is what gets
tested: text in pieces of one to three words (long words split), each tool call opened by a
delta with its index, id and name, then its arguments a few characters at a time.
"""

from __future__ import annotations

import json
import math
import random
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

from chat_dev.scripted_brain import Reply

DONE = "[DONE]"

_ERROR_KINDS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "The request is invalid."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("permission_error", None, "You are not allowed to use this model."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request."),
    502: ("server_error", None, "Bad gateway: the upstream provider failed."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


def error_body(status: int, message: str | None = None, code: int | str | None = None) -> dict:
    """OpenAI's error shape, which the SDK turns into the message of its exception."""
    kind, default_code, default_message = _ERROR_KINDS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, "")
    )
    return {
        "error": {
            "message": message or default_message or f"Error {status}.",
            "type": kind,
            "param": None,
            "code": code if code is not None else default_code,
        }
    }


def text_pieces(text: str, rng: random.Random) -> list[str]:
    """`text` cut the way a tokenizer streams it: one to three words at a time, long words in
    pieces, each piece carrying its leading space. The pieces join back to `text` exactly."""
    tokens: list[str] = []
    for word in re.findall(r"\s*\S+|\s+", text):
        while len(word.strip()) > 9:
            cut = len(word) - len(word.lstrip()) + rng.randint(3, 6)
            tokens.append(word[:cut])
            word = word[cut:]
        tokens.append(word)
    pieces = []
    while tokens:
        take = rng.randint(1, 3)
        pieces.append("".join(tokens[:take]))
        del tokens[:take]
    return pieces


def argument_pieces(arguments: str, rng: random.Random) -> list[str]:
    pieces = []
    while arguments:
        take = rng.randint(2, 6)
        pieces.append(arguments[:take])
        arguments = arguments[take:]
    return pieces


def estimate_prompt_tokens(request: dict[str, Any]) -> int:
    """About four characters a token: deterministic, and close enough for budgets in tests."""
    sent = json.dumps(request.get("messages"), ensure_ascii=False)
    sent += json.dumps(request.get("tools") or [], ensure_ascii=False)
    return max(1, math.ceil(len(sent) / 4))


def sse(event: dict[str, Any] | str) -> str:
    compact = (",", ":")  # as providers send it
    data = event if isinstance(event, str) else json.dumps(event, separators=compact)
    return f"data: {data}\n\n"


class Completion:
    """One answer being written: the id, timestamp and tool call ids all its chunks repeat."""

    def __init__(
        self, reply: Reply, *, model: str, prompt_tokens: int, include_usage: bool
    ) -> None:
        self.reply = reply
        self.model = model
        self.prompt_tokens = prompt_tokens
        self.include_usage = include_usage
        self.id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
        self.created = int(time.time())
        # Fresh ids per answer: the chat service keys duplicate-run guards by tool call id,
        # so ids repeated across dev-server restarts would look like a refresh of the same call.
        self.call_ids = [call.id or f"call_{uuid.uuid4().hex[:24]}" for call in reply.tool_calls]

    @property
    def finish_reason(self) -> str:
        return "tool_calls" if self.reply.tool_calls else "stop"

    def usage(self) -> dict[str, int]:
        written = self.reply.text + "".join(c.arguments_json() for c in self.reply.tool_calls)
        completion_tokens = max(1, math.ceil(len(written) / 4))
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": self.prompt_tokens + completion_tokens,
        }

    def body(self) -> dict[str, Any]:
        """The non-streaming `chat.completion`."""
        message: dict[str, Any] = {
            "role": "assistant",
            "content": self.reply.text or None,
            "refusal": None,
        }
        if self.reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments_json()},
                }
                for call_id, call in zip(self.call_ids, self.reply.tool_calls, strict=False)
            ]
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": self.finish_reason,
                }
            ],
            "usage": self.usage(),
        }

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        chunk: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if self.include_usage:
            chunk["usage"] = None  # as OpenAI does: null on every chunk but the last
        return chunk

    def chunks(self) -> Iterator[dict[str, Any]]:
        """The streamed answer without its usage chunk: the role, the text in pieces, each tool
        call (index, id and name first, then its arguments in fragments), the finish_reason."""
        rng = random.Random(repr(self.reply))  # same reply, same pieces
        # Like OpenAI: the role comes alone before text, or with the first tool call.
        first: dict[str, Any] = {"role": "assistant", "content": None}
        if self.reply.text or not self.reply.tool_calls:
            yield self.chunk({"role": "assistant", "content": ""})
            first = {}
        for piece in text_pieces(self.reply.reasoning, rng):
            yield self.chunk({self.reply.reasoning_field: piece})
        for piece in text_pieces(self.reply.text, rng):
            yield self.chunk({"content": piece})
        for index, (call_id, call) in enumerate(
            zip(self.call_ids, self.reply.tool_calls, strict=False)
        ):
            function = {"name": call.name, "arguments": ""}
            head = {"index": index, "id": call_id, "type": "function", "function": function}
            yield self.chunk({**first, "tool_calls": [head]})
            first = {}
            for piece in argument_pieces(call.arguments_json(), rng):
                fragment = {"index": index, "function": {"arguments": piece}}
                yield self.chunk({"tool_calls": [fragment]})
        yield self.chunk({}, self.finish_reason)

    def usage_chunk(self) -> dict[str, Any]:
        """The last chunk when the client asked for `stream_options.include_usage`."""
        return {**self.chunk({}), "choices": [], "usage": self.usage()}

    def error_chunk(self, message: str, code: int | str) -> dict[str, Any]:
        """A mid-stream failure as OpenRouter reports it: HTTP 200 already sent, so the error
        travels in a chunk (the SDK raises `APIError` when it reads one)."""
        return {**self.chunk({"content": ""}, "error"), "error": {"code": code, "message": message}}
