"""chat_dev.scripted_wire: the OpenAI wire format the scripted model speaks. Text cut into
pieces that join back exactly, chunks in the order a streaming client expects."""

from __future__ import annotations

import json
import random

import httpx
import pytest
from chat_dev.scripted_brain import Reply, ToolCall
from chat_dev.scripted_wire import Completion, error_body, text_pieces

from tests.dev.sdk import USER_HI


async def test_usage_chunk_comes_last_with_empty_choices(model):
    model.reply_text("Hello there.")
    payload = {
        "model": "m",
        "messages": USER_HI,
        "stream": True,
        "stream_options": {"include_usage": True},
    }

    async with httpx.AsyncClient() as http:
        response = await http.post(f"{model.base_url}/chat/completions", json=payload)

    data_lines = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert response.headers["content-type"].startswith("text/event-stream")
    assert data_lines[-1] == "[DONE]"
    last = json.loads(data_lines[-2])
    assert last["choices"] == [] and last["usage"]["total_tokens"] > 0
    assert all(json.loads(line)["usage"] is None for line in data_lines[:-2])


@pytest.mark.parametrize("seed", range(20))
def test_text_pieces_join_back_exactly(seed):
    rng = random.Random(seed)
    alphabet = ["a", "b", "longwordwithoutspaces", " ", "  ", "\n", "é", "🚀", "\t"]
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))

    assert "".join(text_pieces(text, random.Random(seed))) == text


def completion(reply: Reply) -> Completion:
    return Completion(reply, model="m", prompt_tokens=12, include_usage=True)


def test_a_streamed_answer_rebuilds_into_the_non_streaming_one() -> None:
    reply = Reply(
        text="Let me look that up for you.",
        tool_calls=(ToolCall("find_agent", {"query": "tax returns"}), ToolCall("other", "{}")),
    )
    answer = completion(reply)
    text, calls = "", {}
    for chunk in answer.chunks():
        delta = chunk["choices"][0]["delta"]
        text += delta.get("content") or ""
        for piece in delta.get("tool_calls", []):
            call = calls.setdefault(piece["index"], {"id": None, "name": None, "arguments": ""})
            call["id"] = call["id"] or piece.get("id")
            call["name"] = call["name"] or piece["function"].get("name")
            call["arguments"] += piece["function"].get("arguments", "")
    message = answer.body()["choices"][0]["message"]
    assert text == message["content"] == reply.text
    assert [
        {"id": c["id"], "name": c["function"]["name"], "arguments": c["function"]["arguments"]}
        for c in message["tool_calls"]
    ] == [calls[0], calls[1]]
    assert json.loads(calls[0]["arguments"]) == {"query": "tax returns"}


def test_the_finish_reason_and_usage_close_the_stream() -> None:
    answer = completion(Reply(tool_calls=(ToolCall("find_agent", {}),)))
    *_, last = answer.chunks()
    assert last["choices"][0]["finish_reason"] == "tool_calls"
    usage = answer.usage_chunk()["usage"]
    assert usage["prompt_tokens"] == 12
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


@pytest.mark.parametrize("status", [400, 401, 429, 503, 418])
def test_errors_have_openais_shape(status: int) -> None:
    error = error_body(status)["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["message"]
    assert error_body(status, "custom", code="x")["error"] | {"type": None} == {
        "message": "custom",
        "type": None,
        "param": None,
        "code": "x",
    }
