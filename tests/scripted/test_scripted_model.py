"""The scripted model, seen through the real `openai` SDK over real HTTP: what a client of an
OpenAI-compatible provider would see, for scripted behaviours and for the default brain."""

from __future__ import annotations

import json
import random
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
import pytest
from chat_dev.scripted_brain import agent_intent, answer, search_query, title_for
from chat_dev.scripted_model import Drop, ScriptedModelServer, ToolCall
from chat_dev.scripted_wire import text_pieces
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


async def test_a_request_for_a_summary_gets_one_of_the_users_requests(model, client):
    transcript = (
        "user: Find me an agent for tax returns\n"
        "assistant: I found two.\n"
        "user: Which one is cheaper?"
    )
    summary_system = {"role": "system", "content": "Summarise this conversation briefly."}
    reply = await complete(client, [summary_system, {"role": "user", "content": transcript}])
    text = reply.choices[0].message.content
    assert text.startswith("Summary:")
    assert "agent for tax returns" in text and "Which one is cheaper?" in text
    assert "I found two" not in text


async def test_server_survives_failures_and_answers_the_next_request(model, client):
    model.drop_stream(after_chunks=1)
    model.reply_error(500)
    model.reply_text("Back to normal.")

    with pytest.raises(openai.APIConnectionError):
        await stream(client, USER_HI)
    with pytest.raises(openai.InternalServerError):
        await stream(client, USER_HI)
    assert (await stream(client, USER_HI)).text == "Back to normal."


async def test_slow_stream_completes_with_its_delay_between_chunks(model, client):
    text = "One two three four five six seven eight nine ten."
    model.slow_stream(40, text=text)

    started = time.monotonic()
    seen = await stream(client, USER_HI)
    elapsed = time.monotonic() - started

    assert seen.text == text
    assert seen.finish_reasons == ["stop"]
    # A lower bound: proves the pause was applied, says nothing about speed.
    assert elapsed >= 0.04 * (seen.chunks - 1) * 0.9


async def test_invalid_request_is_answered_400(model):
    async with httpx.AsyncClient() as http:
        response = await http.post(f"{model.base_url}/chat/completions", json={"model": "m"})

    assert response.status_code == 400
    assert "messages" in response.json()["error"]["message"]


# --- the brain ---------------------------------------------------------------------------


async def test_brain_calls_find_agent_with_the_quoted_query(model, client):
    seen = await stream(
        client,
        [{"role": "user", "content": MONEY_REQUEST}],
        tools=[tool("find_agent"), tool("create_agent")],
    )

    assert [call.name for call in seen.calls.values()] == ["find_agent"]
    assert json.loads(seen.calls[0].arguments) == {"query": "moneny printing agent"}
    assert seen.finish_reasons == ["tool_calls"]


async def test_brain_never_calls_a_tool_that_is_not_offered(model, client):
    seen = await stream(client, [{"role": "user", "content": MONEY_REQUEST}], tools=[tool("other")])

    assert seen.calls == {}
    assert seen.finish_reasons == ["stop"]
    assert "search for an agent, but that tool is not available" in seen.text


async def test_brain_calls_create_agent_with_the_request(model, client):
    request = "Create an agent that searches the web for cheap flights every morning"

    seen = await stream(
        client,
        [{"role": "user", "content": request}],
        tools=[tool("find_agent"), tool("create_agent")],
    )

    assert seen.calls[0].name == "create_agent"
    assert json.loads(seen.calls[0].arguments) == {"description": request}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MONEY_REQUEST, "moneny printing agent"),
        ('Search for an agent "weekly newsletter writer"', "weekly newsletter writer"),
        ("Can you find me an agent that writes blog posts?", "writes blog posts"),
        ("I'm looking for agents to summarise meetings", "summarise meetings"),
    ],
)
def test_search_query_extraction(text, expected):
    assert agent_intent(text) == "find"
    assert search_query(text) == expected


def test_the_verb_said_first_decides_the_intent():
    assert agent_intent("Create an agent that searches the web") == "create"
    assert agent_intent("Find an agent that makes invoices") == "find"
    assert agent_intent("Find me a good restaurant") is None


async def test_brain_answers_small_talk_with_a_streamed_paragraph(model, client):
    seen = await stream(client, [{"role": "user", "content": "What is the capital of Portugal?"}])

    assert "What is the capital of Portugal?" in seen.text
    assert seen.text.count(". ") >= 2
    assert len(seen.text_deltas) >= 10
    assert seen.calls == {}


async def test_brain_answer_is_the_same_for_the_same_message(model, client):
    first = await stream(client, [{"role": "user", "content": "Tell me a story"}])
    second = await stream(client, [{"role": "user", "content": "Tell me a story"}])

    assert first.text == second.text
    assert first.text_deltas == second.text_deltas


async def test_title_request_gets_a_short_title(model, client):
    result = await complete(
        client,
        [{"role": "system", "content": TITLE_SYSTEM}, {"role": "user", "content": MONEY_REQUEST}],
    )

    assert result.choices[0].message.content == "Find Moneny Printing Agent"


@pytest.mark.parametrize(
    "message",
    [
        "hi",
        "What's the weather like in Lisbon today?",
        "Explain AWS Lambda response streaming and how Redis streams make resumable SSE work "
        "across reconnects with cursors",
        "Supercalifragilisticexpialidocious antidisestablishmentarianism "
        "pneumonoultramicroscopicsilicovolcanoconiosis",
    ],
)
def test_titles_are_three_to_six_words_in_title_case_within_50_chars(message):
    title = title_for(message)

    assert 3 <= len(title.split()) <= 6
    assert len(title) <= 50
    assert all(word[0].isupper() for word in title.split())


def test_title_only_for_non_streaming_requests():
    messages = [{"role": "system", "content": TITLE_SYSTEM}, {"role": "user", "content": "hi"}]

    assert answer({"messages": messages}).text == title_for("hi")
    assert answer({"messages": messages, "stream": True}).text != title_for("hi")


def tool_turn(name: str, arguments: dict, output: Any, *, call_id: str = "call_1") -> list[dict]:
    return [
        {"role": "user", "content": "please"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(arguments)},
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": call_id,
            "content": output if isinstance(output, str) else json.dumps(output),
        },
    ]


async def test_brain_names_the_agents_find_agent_found(model, client):
    agents = {
        "agents": [
            {"name": "Money Printer", "description": "Turns invoices into cash flow.", "id": "a1"},
            {"name": "Ledger Bot", "description": "Keeps your books.", "id": "a2"},
        ]
    }

    seen = await stream(
        client,
        tool_turn("find_agent", {"query": "moneny printing agent"}, agents),
        tools=[tool("find_agent")],
    )

    assert seen.calls == {}  # a tool result is answered, never followed by another call
    assert "Money Printer" in seen.text and "Ledger Bot" in seen.text
    assert "moneny printing agent" in seen.text


@pytest.mark.parametrize(
    "output",
    [
        {"agents": []},
        {"type": "no_results", "query": "unicorns", "suggestions": ["finance", "writing"]},
    ],
)
async def test_brain_says_when_find_agent_found_nothing(model, client, output):
    seen = await stream(client, tool_turn("find_agent", {"query": "unicorns"}, output))

    assert "couldn't find any agents" in seen.text
    assert "unicorns" in seen.text
    assert "no_results" not in seen.text


async def test_brain_says_a_long_operation_has_started(model, client):
    started = {"type": "operation_started", "operation_id": "op1", "tool_name": "create_agent"}

    seen = await stream(client, tool_turn("create_agent", {"description": "x"}, started))

    assert "started" in seen.text
    assert "when it finishes" in seen.text or "as soon as it finishes" in seen.text


@pytest.mark.parametrize(
    "output",
    [
        {"error": "The marketplace is unreachable"},
        {"error": {"message": "The marketplace is unreachable"}},
        "Error: The marketplace is unreachable",
    ],
)
async def test_brain_explains_a_failed_tool(model, client, output):
    seen = await stream(client, tool_turn("find_agent", {"query": "x"}, output))

    assert "did not work" in seen.text
    assert "The marketplace is unreachable" in seen.text


async def test_brain_summarises_other_json_results(model, client):
    seen = await stream(client, tool_turn("get_weather", {}, {"city": "Lisbon", "celsius": 21}))

    assert "get_weather" in seen.text
    assert "Lisbon" in seen.text and "21" in seen.text


def call(call_id: str, name: str) -> dict[str, Any]:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": "{}"}}


def test_brain_answers_every_result_of_the_latest_tool_calls():
    messages = [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "tool_calls": [
                call("c1", "find_agent"),
                call("c2", "get_weather"),
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": '{"agents": [{"name": "Scout"}]}'},
        {"role": "tool", "tool_call_id": "c2", "content": json.dumps({"city": "Porto"})},
    ]

    text = answer({"messages": messages}).text

    assert "Scout" in text and "Porto" in text


@pytest.mark.parametrize("seed", range(20))
def test_text_pieces_join_back_exactly(seed):
    rng = random.Random(seed)
    alphabet = ["a", "b", "longwordwithoutspaces", " ", "  ", "\n", "é", "🚀", "\t"]
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))

    assert "".join(text_pieces(text, random.Random(seed))) == text


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
