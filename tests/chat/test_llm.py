"""chat_core.chat.llm: what the turn does with the provider's failures and what it tells the
provider, against the scripted model over real HTTP."""

from __future__ import annotations

import asyncio
import json

import pytest
from chat_core import background
from chat_core.chat.llm import (
    MODEL_NOT_AVAILABLE_REGION,
    complete,
    get_llm_client,
    open_stream,
    provider_metadata,
    reset_llm_clients,
)
from chat_core.chat.service import TurnFailed, stream_chat_completion
from chat_core.sessions import get_session_store
from chat_dev.scripted_model import ScriptedModelServer

from tests.chunk_rules import assert_valid_content, text_of
from tests.conftest import sse_chunks


async def run_turn(session_id: str, message: str, user_id: str | None) -> list[dict]:
    """The turn's content, and its failure as the `error` its task would append."""
    chunks = []
    try:
        async for c in stream_chat_completion(session_id, message, user_id):
            chunks.append(json.loads(c.to_json()))
    except TurnFailed as failure:
        chunks.append({"type": "error", "errorText": str(failure)})
    return chunks


async def test_an_overload_reported_mid_stream_is_retried_and_the_answer_arrives(model):
    session = await get_session_store().create("u1")
    model.overloaded_mid_stream(after_chunks=2, text="This first try breaks off")
    model.reply_text("Here is the whole answer.", stream=True)
    chunks = await run_turn(session.session_id, "Hello", "u1")
    assert_valid_content(chunks)
    assert "error" not in [c["type"] for c in chunks]
    # The words of the broken attempt stay as the user saw them; the retry follows them.
    assert text_of(chunks).endswith("Here is the whole answer.")
    assert len([r for r in model.chat_requests if r.streaming]) == 2
    stored = await get_session_store().get(session.session_id, "u1")
    assert stored.messages[-1].content == "Here is the whole answer."


async def test_an_internal_error_mid_stream_is_retried_too(model):
    session = await get_session_store().create("u1")
    model.stream_error("Internal server error", after_chunks=0)
    model.reply_text("Recovered.", stream=True)
    chunks = await run_turn(session.session_id, "Hello", "u1")
    assert "error" not in [c["type"] for c in chunks] and text_of(chunks) == "Recovered."


async def test_other_mid_stream_errors_are_not_retried(model):
    session = await get_session_store().create("u1")
    model.stream_error("Content policy violation", after_chunks=0)
    chunks = await run_turn(session.session_id, "Hello", "u1")
    assert [c["type"] for c in chunks][-1:] == ["error"]
    assert len([r for r in model.chat_requests if r.streaming]) == 1


@pytest.mark.parametrize(
    "message",
    [
        "This model is not available in your region.",
        "Country, region, or territory not supported",
    ],
)
async def test_a_region_block_is_a_readable_coded_error_over_http(api, model, message):
    model.reply_error(403, message=message, stream=True)
    session = (await api.post("/api/chat/sessions")).json()["id"]
    response = await api.post(f"/api/chat/sessions/{session}/stream", json={"message": "Hi"})
    chunks = sse_chunks(response.text)
    errors = [c for c in chunks if c["type"] == "error"]
    assert len(errors) == 1 and MODEL_NOT_AVAILABLE_REGION in errors[0]["errorText"]
    assert "region" in errors[0]["errorText"] and "administrator" in errors[0]["errorText"]
    assert len([r for r in model.chat_requests if r.streaming]) == 1  # never retried
    task = (await api.get(f"/api/chat/tasks/{response.headers['x-task-id']}")).json()
    assert task["status"] == "failed"


@pytest.mark.parametrize("user_id", ["u1", None])
async def test_every_model_call_says_whose_it_is(model, user_id):
    """The turn's calls (with a tool round) and the title call all carry the session id,
    and the user id when there is one."""
    session = await get_session_store().create(user_id)
    chunks = await run_turn(
        session.session_id, "Please find me an agent. Use the query 'tax returns'", user_id
    )
    assert_valid_content(chunks)
    await background.drain()
    calls = model.chat_requests
    assert {r.streaming for r in calls} == {True, False}  # turn rounds and the title
    assert len([r for r in calls if r.streaming]) == 2
    for request in calls:
        assert request.body["session_id"] == session.session_id
        assert request.body.get("user") == user_id


async def test_open_stream_sends_what_create_would_and_streams_its_chunks_as_json(model):
    request = {
        "model": "some/model",
        "messages": [{"role": "user", "content": "Hi"}],
        "stream": True,
        "max_tokens": 50,
        **provider_metadata("u1", "s1"),
    }
    model.reply_text("Hello there.", stream=True)
    stream = await open_stream(request)
    async with stream:
        events = [e async for e in stream]
    # Events are the chunks' JSON, as the model sent them.
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])
    model.reply_text("Hello there.", stream=True)
    created = await get_llm_client().chat.completions.create(**request)
    async with created:
        assert (
            "".join([e.choices[0].delta.content or "" async for e in created if e.choices]) == text
        )
    raw, typed = model.chat_requests[-2:]
    assert text == "Hello there."
    assert raw.body == typed.body  # the same JSON: `user`, and OpenRouter's `session_id` flat
    assert raw.body["session_id"] == "s1" and raw.body["user"] == "u1"


async def test_complete_sends_what_create_would_and_returns_the_reply_as_json(model):
    request = {
        "model": "some/title-model",
        "messages": [{"role": "user", "content": "Name this chat"}],
        "max_tokens": 20,
        **provider_metadata("u1", "s1"),
    }
    model.reply_text("Trip to Rome", stream=False)
    reply = await complete(request)
    model.reply_text("Trip to Rome", stream=False)
    created = await get_llm_client().chat.completions.create(**request)
    assert reply["choices"][0]["message"]["content"] == "Trip to Rome"
    assert created.choices[0].message.content == "Trip to Rome"
    raw, typed = model.chat_requests[-2:]
    assert raw.body == typed.body and raw.body["session_id"] == "s1"


def connections_to(port: int) -> int:
    """This host's open TCP connections whose far end is `port` (Linux: /proc/net/tcp)."""
    established = "01"
    with open("/proc/net/tcp") as table:
        rows = [line.split() for line in table.readlines()[1:]]
    return sum(row[3] == established and int(row[2].split(":")[1], 16) == port for row in rows)


async def test_a_burst_of_calls_leaves_only_the_configured_idle_connections_open(
    model, settings_env
):
    """Every call looks at each idle connection: a burst must not leave a hundred behind."""
    with ScriptedModelServer() as own:  # no other test's client holds connections to it
        settings_env(llm_base_url=own.base_url, llm_keepalive_connections=3)
        reset_llm_clients()

        async def call() -> None:
            stream = await open_stream(
                {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": True}
            )
            async with stream:
                async for _ in stream:
                    await asyncio.sleep(0.01)  # the calls overlap: each needs a connection

        await asyncio.gather(*(call() for _ in range(12)))
        assert connections_to(own.port) == 3
        await call()  # and the next call reuses one of them
        assert connections_to(own.port) == 3
        await get_llm_client().close()
