"""chat_dev.scripted_model, seen through the real `openai` SDK over real HTTP: what a client of
an OpenAI-compatible provider would see for scripted behaviours, failures, recording and the
control API. What the default brain answers is in test_scripted_brain.py, the wire format's
pieces in test_scripted_wire.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket

import httpx
import openai
import pytest
from chat_dev.scripted_brain import title_for
from chat_dev.scripted_model import Drop, ScriptedModelServer, ToolCall

from tests.dev.sdk import TITLE_SYSTEM, USER_HI, Streamed, complete, stream, tool

# --- streaming ---------------------------------------------------------------------------

LONG_TEXT = (
    "Streaming answers arrive in small pieces, extraordinarily often mid-word,\n\n"
    "and   the client   glues them back together — exactly. ¿Qué tal? 🚀 Done."
)


async def test_streamed_text_reassembles_from_small_deltas(model, client):
    model.reply_text(LONG_TEXT)

    seen = await stream(client, USER_HI)

    assert seen.text == LONG_TEXT
    assert len(seen.text_deltas) >= 8
    assert all(len(delta.split()) <= 3 for delta in seen.text_deltas)
    assert seen.finish_reasons == ["stop"]
    assert seen.calls == {}


async def test_scripted_tool_call_is_parsed_by_the_sdk_stream(model, client):
    model.reply_tool_calls(ToolCall("find_agent", {"query": "invoice helper", "limit": 5}))

    seen = await stream(client, USER_HI, tools=[tool("find_agent")])

    assert list(seen.calls) == [0]
    call = seen.calls[0]
    assert call.id and call.id.startswith("call_")
    assert call.name == "find_agent"
    assert json.loads(call.arguments) == {"query": "invoice helper", "limit": 5}
    assert call.deltas > 3  # the arguments came in fragments, after the head delta
    assert seen.finish_reasons == ["tool_calls"]
    assert seen.text == ""


async def test_two_tool_calls_in_one_answer_use_their_own_indexes(model, client):
    model.reply_tool_calls(
        ToolCall("find_agent", {"query": "tax"}),
        ToolCall("create_agent", {"description": "files my taxes"}, id="call_fixed"),
        text="Let me look.",
    )

    seen = await stream(client, USER_HI)

    assert seen.text == "Let me look."
    assert sorted(seen.calls) == [0, 1]
    first, second = seen.calls[0], seen.calls[1]
    assert (first.name, json.loads(first.arguments)) == ("find_agent", {"query": "tax"})
    assert (second.name, json.loads(second.arguments)) == (
        "create_agent",
        {"description": "files my taxes"},
    )
    assert second.id == "call_fixed"
    assert first.id != second.id
    assert seen.finish_reasons == ["tool_calls"]


async def test_tool_call_ids_are_fresh_for_every_answer(model, client):
    model.reply_tool_calls(ToolCall("find_agent", {"query": "a"}))
    model.reply_tool_calls(ToolCall("find_agent", {"query": "a"}))

    first = await stream(client, USER_HI)
    second = await stream(client, USER_HI)

    assert first.calls[0].id != second.calls[0].id


async def test_scripted_arguments_string_is_sent_as_is(model, client):
    model.reply_tool_calls(ToolCall("find_agent", '{"query": "unterminated'))

    seen = await stream(client, USER_HI)

    assert seen.calls[0].arguments == '{"query": "unterminated'


async def test_usage_arrives_only_when_asked_for(model, client):
    model.reply_text("Four words of text.")
    model.reply_text("Four words of text.")

    without = await stream(client, USER_HI)
    with_usage = await stream(client, USER_HI, stream_options={"include_usage": True})

    assert without.usage == []
    assert len(with_usage.usage) == 1
    usage = with_usage.usage[0]
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert with_usage.text == without.text == "Four words of text."


async def test_non_streaming_answer_carries_text_tool_calls_and_usage(model, client):
    model.reply_tool_calls(ToolCall("find_agent", {"query": "x"}), text="Searching.")

    result = await complete(client, USER_HI)

    choice = result.choices[0]
    assert choice.message.content == "Searching."
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls[0].function.name == "find_agent"
    assert json.loads(choice.message.tool_calls[0].function.arguments) == {"query": "x"}
    assert result.usage.total_tokens > 0
    assert result.model == "test-model"


# --- failures ----------------------------------------------------------------------------


async def test_429_raises_rate_limit_error_with_retry_after(model, client):
    model.reply_error(429, retry_after=2, message="Slow down, please.")

    with pytest.raises(openai.RateLimitError) as raised:
        await complete(client, USER_HI)

    assert raised.value.status_code == 429
    assert raised.value.response.headers["retry-after"] == "2"
    assert raised.value.body["message"] == "Slow down, please."
    assert raised.value.body["code"] == "rate_limit_exceeded"


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
        (400, openai.BadRequestError),
        (401, openai.AuthenticationError),
    ],
)
async def test_http_errors_raise_the_sdk_exception_for_their_status(
    model, client, status, error_type
):
    model.reply_error(status)

    with pytest.raises(error_type) as raised:
        await stream(client, USER_HI)

    assert raised.value.status_code == status


async def test_broken_stream_raises_while_iterating(model, client):
    model.drop_stream(after_chunks=3, text="This answer will be cut off before it ends properly.")
    seen = Streamed()

    with pytest.raises(openai.APIConnectionError):
        await stream(client, USER_HI, seen)

    assert len(seen.text_deltas) == 2  # the role chunk, then two pieces of text
    assert seen.text and "properly." not in seen.text
    assert seen.finish_reasons == []


async def test_broken_non_streaming_answer_raises(model, client):
    model.enqueue(Drop())

    with pytest.raises(openai.APIConnectionError):
        await complete(client, USER_HI)


async def test_error_inside_the_stream_raises_api_error(model, client):
    model.stream_error("Provider disconnected unexpectedly", after_chunks=2)
    seen = Streamed()

    with pytest.raises(openai.APIError) as raised:
        await stream(client, USER_HI, seen)

    assert "Provider disconnected unexpectedly" in str(raised.value)
    assert seen.finish_reasons == []


async def test_an_overload_mid_stream_raises_api_error_after_some_text(model, client):
    model.overloaded_mid_stream(after_chunks=2, text="Well, this begins and then breaks")
    seen = Streamed()

    with pytest.raises(openai.APIError) as raised:
        await stream(client, USER_HI, seen)

    assert not isinstance(raised.value, openai.APIStatusError)  # HTTP 200 was already sent
    assert "Overloaded" in str(raised.value) and raised.value.body["code"] == "overloaded_error"
    assert seen.text and seen.finish_reasons == []


async def test_the_system_prompt_received_is_recorded(model, client):
    messages = [{"role": "system", "content": "You are terse."}, *USER_HI]
    await stream(client, messages)
    await complete(client, USER_HI)
    assert [r.system_prompt for r in model.chat_requests] == ["You are terse.", None]
    assert [r.streaming for r in model.chat_requests] == [True, False]


async def test_server_survives_failures_and_answers_the_next_request(model, client):
    model.drop_stream(after_chunks=1)
    model.reply_error(500)
    model.reply_text("Back to normal.")

    with pytest.raises(openai.APIConnectionError):
        await stream(client, USER_HI)
    with pytest.raises(openai.InternalServerError):
        await stream(client, USER_HI)
    assert (await stream(client, USER_HI)).text == "Back to normal."


async def test_slow_stream_completes_whole(model, client):
    text = "One two three four five six seven eight nine ten."
    model.slow_stream(40, text=text)

    seen = await stream(client, USER_HI)

    assert seen.text == text
    assert seen.finish_reasons == ["stop"]


async def test_a_slow_stream_holds_its_next_chunk_back_while_other_requests_are_answered(
    model, client
):
    # A pause far longer than the test: after the first chunk, a whole other request is
    # answered before the next one comes (without the pause it would be there already).
    model.slow_stream(600_000, text="One two three four five.")
    response = await client.chat.completions.create(
        model="test-model", messages=USER_HI, stream=True
    )
    chunks = aiter(response)
    await anext(chunks)
    following = asyncio.create_task(anext(chunks))
    other = asyncio.create_task(complete(client, USER_HI))
    done, _ = await asyncio.wait({following, other}, return_when=asyncio.FIRST_COMPLETED)
    assert done == {other} and other.result().choices[0].message.content
    following.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await following
    await response.close()


async def test_invalid_request_is_answered_400(model):
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{model.base_url}/chat/completions", json={"model": "m"})

    assert response.status_code == 400
    assert "messages" in response.json()["error"]["message"]


# --- recording and control ---------------------------------------------------------------


async def test_requests_are_recorded_as_sent(model, client):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}]

    await stream(
        client, messages, tools=[tool("find_agent")], stream_options={"include_usage": True}
    )
    await client.models.list()

    assert [(r.method, r.path) for r in model.requests] == [
        ("POST", "/v1/chat/completions"),
        ("GET", "/v1/models"),
    ]
    sent = model.chat_requests[0]
    assert sent.messages == messages
    assert sent.tool_names == ["find_agent"]
    assert sent.body["stream"] is True
    assert sent.body["stream_options"] == {"include_usage": True}
    assert sent.body["model"] == "test-model"


async def test_models_list(model, client):
    models = await client.models.list()

    assert [m.id for m in models.data] == ["scripted-model"]


async def test_queued_behaviours_are_used_in_order_then_the_brain(model, client):
    model.reply_text("first")
    model.reply_text("second")

    assert (await stream(client, USER_HI)).text == "first"
    assert (await stream(client, USER_HI)).text == "second"
    assert (await stream(client, USER_HI)).text.startswith("Hello")
    assert model.pending() == []


async def test_a_streaming_behaviour_is_not_taken_by_a_title_request(model, client):
    model.reply_tool_calls(ToolCall("find_agent", {"query": "q"}), stream=True)

    title = await complete(
        client, [{"role": "system", "content": TITLE_SYSTEM}, {"role": "user", "content": "hi"}]
    )
    turn = await stream(client, USER_HI)

    assert title.choices[0].message.content == title_for("hi")
    assert turn.calls[0].name == "find_agent"


async def test_http_control_queues_lists_records_and_resets(model, client):
    behaviours = [
        {"kind": "reply", "text": "Scripted over HTTP."},
        {"kind": "reply", "tool_calls": [{"name": "find_agent", "arguments": {"query": "q"}}]},
        {"kind": "http_error", "status": 429, "retry_after": 1},
    ]
    async with httpx.AsyncClient(base_url=model.url) as http:
        queued = await http.post("/_scripted/queue", json=behaviours)
        pending = (await http.get("/_scripted/queue")).json()["pending"]

        assert queued.json() == {"queued": 3, "pending": 3}
        assert [b["kind"] for b in pending] == ["reply", "reply", "http_error"]

        assert (await stream(client, USER_HI)).text == "Scripted over HTTP."
        assert json.loads((await stream(client, USER_HI)).calls[0].arguments) == {"query": "q"}
        with pytest.raises(openai.RateLimitError):
            await stream(client, USER_HI)

        recorded = (await http.get("/_scripted/requests")).json()["requests"]
        assert len(recorded) == 3
        assert recorded[0]["path"] == "/v1/chat/completions"
        assert recorded[0]["body"]["messages"] == USER_HI

        await http.post("/_scripted/queue", json={"kind": "reply", "text": "never used"})
        reset = await http.post("/_scripted/reset")
        assert reset.status_code == 204
        assert (await http.get("/_scripted/queue")).json() == {"pending": []}
        assert (await http.get("/_scripted/requests")).json() == {"requests": []}


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "nonsense"},
        {"kind": "http_error", "status": 200},
        {"kind": "reply", "txt": "typo"},
        {"kind": "drop", "after_chunks": -1},
    ],
)
async def test_http_control_refuses_invalid_behaviours(model, bad):
    async with httpx.AsyncClient(base_url=model.url) as http:
        response = await http.post("/_scripted/queue", json=bad)

    assert response.status_code == 422
    assert model.pending() == []


async def test_http_control_can_script_drops_and_stream_errors(model, client):
    async with httpx.AsyncClient(base_url=model.url) as http:
        await http.post(
            "/_scripted/queue",
            json=[
                {"kind": "drop", "after_chunks": 2, "text": "cut short here"},
                {"kind": "stream_error", "message": "upstream overloaded"},
            ],
        )

    with pytest.raises(openai.APIConnectionError):
        await stream(client, USER_HI)
    with pytest.raises(openai.APIError, match="upstream overloaded"):
        await stream(client, USER_HI)


def test_server_lifecycle_uses_a_free_port_and_releases_it():
    with ScriptedModelServer() as server:
        port = server.port
        response = httpx.get(f"{server.base_url}/models")
        assert response.status_code == 200
        assert server.base_url == f"http://127.0.0.1:{port}/v1"

    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    with pytest.raises(RuntimeError):
        server.base_url  # noqa: B018


def test_server_on_a_given_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]

    with ScriptedModelServer(port=free_port) as server:
        assert httpx.get(f"http://127.0.0.1:{free_port}/v1/models").status_code == 200
        assert server.port == free_port
