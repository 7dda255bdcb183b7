"""chat_core.chat.service: one chat turn against the scripted OpenAI-compatible model, spoken
to over real HTTP.

The turn only produces content (the task it runs in frames it with `start` and `finish`;
see tests/worker/test_runner.py); a failure is `TurnFailed`, which `run_turn` shows here as
the `error` chunk the task would append. The first two tests are the always-on twins of
seed 002's live tests, which run against a real model only with OPEN_ROUTER_API_KEY (the
last two of this module).
"""

from __future__ import annotations

import asyncio
import json

import pytest
from chat_core import background
from chat_core.chat.context import SUMMARY_HEADING
from chat_core.chat.service import INTERRUPTED_MARK, TurnFailed, stream_chat_completion
from chat_core.sessions import get_session_store
from chat_core.sessions.models import ChatMessage
from chat_dev.scripted_model import ToolCall

from tests.chunk_rules import assert_valid_content, text_of
from tests.conftest import LIVE_API_KEY, set_env


async def run_turn(
    session_id: str, message: str | None, user_id: str | None = "u1", **kw
) -> list[dict]:
    chunks = []
    try:
        async for c in stream_chat_completion(session_id, message, user_id=user_id, **kw):
            chunks.append(json.loads(c.to_json()))
    except TurnFailed as failure:
        chunks.append({"type": "error", "errorText": str(failure)})
    return chunks


@pytest.fixture
async def session(model):
    return await get_session_store().create("u1")


async def test_a_plain_turn_ends_without_error(session):
    chunks = await run_turn(session.session_id, "Hello, how are you?")
    assert_valid_content(chunks)
    assert "error" not in [c["type"] for c in chunks]
    assert text_of(chunks).strip()


async def test_the_agent_search_prompt_produces_tool_output_and_stored_usage(session, model):
    chunks = await run_turn(
        session.session_id,
        "Please find me an agent that can help me with my business. Use the query 'moneny printing agent'",
    )
    assert_valid_content(chunks)
    assert "error" not in [c["type"] for c in chunks]
    outputs = [c for c in chunks if c["type"] == "tool-output-available"]
    assert outputs and outputs[0]["output"]["type"] == "agents_found"
    assert "money-making" in outputs[0]["output"]["agents"][0]["categories"]
    stored = await get_session_store().get(session.session_id, "u1")
    assert stored.usage and all(u.total_tokens > 0 for u in stored.usage)
    # The model saw the query, then the tool's result in its next call (the title's call
    # beside the turn may come in between).
    calls = [r for r in model.chat_requests if r.streaming]
    assert calls[-1].messages[-1]["role"] == "tool"
    assert "find_agent" in calls[0].tool_names


async def test_chunks_follow_the_ai_sdk_order_and_are_saved(session, model):
    model.reply_tool_calls(
        ToolCall("find_agent", {"query": "newsletter"}), text="Let me look.", stream=True
    )
    chunks = await run_turn(session.session_id, "find an agent for my newsletter")
    assert_valid_content(chunks)
    types = [c["type"] for c in chunks]
    # tool-input-start comes as soon as the call's name is known, before the input is complete
    assert (
        types.index("tool-input-start")
        < types.index("tool-input-available")
        < types.index("tool-output-available")
    )
    assert types.count("start-step") == 2 and types.count("finish-step") == 2
    usage = [c for c in chunks if c["type"] == "data-usage"]
    assert len(usage) == 1 and usage[0]["data"]["totalTokens"] > 0

    stored = await get_session_store().get(session.session_id, "u1")
    roles = [m.role for m in stored.messages]
    assert roles == ["user", "assistant", "tool", "assistant"]
    call = stored.messages[1].tool_calls[0]
    assert call["function"]["name"] == "find_agent" and json.loads(
        call["function"]["arguments"]
    ) == {"query": "newsletter"}
    assert stored.messages[2].tool_call_id == call["id"]
    assert stored.messages[3].content == text_of(chunks[types.index("finish-step") :])


async def test_the_first_message_gets_a_short_title_without_delaying_the_stream(session):
    await run_turn(session.session_id, "Can you help me plan a two week trip to Rome in May?")
    await background.drain()
    title = (await get_session_store().get(session.session_id, "u1")).title
    assert title and len(title) <= 50 and 3 <= len(title.split()) <= 6


async def test_a_turn_on_a_missing_or_foreign_session_is_an_error(session):
    chunks = await run_turn(session.session_id, "hi", user_id="someone-else")
    assert [c["type"] for c in chunks] == ["error"]
    assert "does not exist" in chunks[0]["errorText"]


# --- retries -------------------------------------------------------------------------------
async def test_rate_limits_and_server_errors_are_retried_invisibly(session, model):
    model.reply_error(429, retry_after=0, stream=True)
    model.reply_error(503, stream=True)
    model.reply_text("Third time lucky.", stream=True)
    chunks = await run_turn(session.session_id, "hello")
    assert_valid_content(chunks)
    assert text_of(chunks) == "Third time lucky."
    assert [c["type"] for c in chunks].count("start-step") == 1  # nothing of the failures shows
    assert len([r for r in model.chat_requests if r.body.get("stream")]) == 3


async def test_when_retries_run_out_the_user_reads_why(session, model, settings_env):
    settings_env(llm_max_retries=2)
    for _ in range(3):
        model.reply_error(429, stream=True)
    chunks = await run_turn(session.session_id, "hello")
    assert [c["type"] for c in chunks] == ["start-step", "finish-step", "error"]
    assert "too many requests" in chunks[2]["errorText"]


async def test_other_errors_are_not_retried(session, model):
    model.reply_error(400, message="messages: too long", stream=True)
    model.reply_text("never used", stream=True)
    chunks = await run_turn(session.session_id, "hello")
    errors = [c for c in chunks if c["type"] == "error"]
    assert len(errors) == 1 and "could not process this conversation" in errors[0]["errorText"]
    assert len([r for r in model.chat_requests if r.body.get("stream")]) == 1


async def test_a_stream_broken_after_text_restarts_cleanly_with_a_new_step(session, model):
    model.drop_stream(after_chunks=4, text="This answer will be cut off half way through.")
    model.reply_text("A complete answer.", stream=True)
    chunks = await run_turn(session.session_id, "hello")
    assert_valid_content(chunks)
    types = [c["type"] for c in chunks]
    assert types.count("start-step") == 2  # the broken attempt's step was closed
    assert text_of(chunks).endswith("A complete answer.")
    stored = await get_session_store().get(session.session_id, "u1")
    assert stored.messages[-1].content == "A complete answer."  # only the answer that finished


# --- tools -----------------------------------------------------------------------------------
async def test_invalid_tool_arguments_become_a_tool_error_the_model_sees(session, model):
    model.reply_tool_calls(ToolCall("find_agent", {"limit": 99}), stream=True)
    model.reply_text("Sorry, let me try differently.", stream=True)
    chunks = await run_turn(session.session_id, "find an agent")
    assert_valid_content(chunks)
    error = next(c for c in chunks if c["type"] == "tool-output-error")
    assert "query" in error["errorText"]
    tool_message = model.streamed_requests[-1].messages[-1]
    assert tool_message["role"] == "tool" and "query" in tool_message["content"]


async def test_tool_rounds_are_bounded_and_the_last_round_offers_no_tools(
    session, model, settings_env
):
    settings_env(max_tool_rounds=3)
    for i in range(2):
        model.reply_tool_calls(ToolCall("find_agent", {"query": f"round {i}"}), stream=True)
    model.reply_text("Enough searching.", stream=True)
    chunks = await run_turn(session.session_id, "search forever")
    assert_valid_content(chunks)
    streamed = [r for r in model.chat_requests if r.body.get("stream")]
    assert [bool(r.body.get("tools")) for r in streamed] == [True, True, False]
    assert text_of(chunks).endswith("Enough searching.")


# --- cancellation ------------------------------------------------------------------------------
async def test_cancelling_mid_stream_saves_the_partial_answer_as_interrupted(session, model):
    model.slow_stream(150, text="one two three four five six seven eight nine ten eleven twelve")
    seen: list[dict] = []

    async def consume() -> None:
        async for chunk in stream_chat_completion(session.session_id, "count", user_id="u1"):
            seen.append(json.loads(chunk.to_json()))

    consumer = asyncio.create_task(consume())
    while len([c for c in seen if c["type"] == "text-delta"]) < 2:
        await asyncio.sleep(0.02)
    consumer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consumer
    stored = await get_session_store().get(session.session_id, "u1")
    last = stored.messages[-1]
    assert last.role == "assistant" and last.content.endswith(INTERRUPTED_MARK)
    assert last.content.startswith(text_of(seen))
    assert "twelve" not in last.content


# --- context window ------------------------------------------------------------------------------
async def test_the_context_is_trimmed_oldest_first_keeping_tool_calls_with_their_results(
    session, model, settings_env
):
    settings_env(context_window_tokens=2_500, max_output_tokens=500)
    store = get_session_store()
    old = [
        ChatMessage(role="user", content=f"old question {i} " + "blah " * 300) for i in range(10)
    ]
    call = {
        "id": "call_keep",
        "type": "function",
        "function": {"name": "find_agent", "arguments": "{}"},
    }
    recent = [
        ChatMessage(role="assistant", content=None, tool_calls=[call]),
        ChatMessage(role="tool", tool_call_id="call_keep", content='{"agents": []}'),
        ChatMessage(role="assistant", content="Nothing found."),
    ]
    await store.append_messages(session.session_id, old + recent)
    await run_turn(session.session_id, "and now?")
    sent = [r for r in model.chat_requests if r.body.get("stream")][-1].messages
    assert sent[0]["role"] == "system"
    assert sent[1]["role"] == "system" and sent[1]["content"].startswith(SUMMARY_HEADING)
    assert "old question 0" in sent[1]["content"]  # summarized (by the model)...
    user_turns = [m["content"] for m in sent if m["role"] == "user"]
    assert not any(c.startswith("old question 0") for c in user_turns)  # ...not sent whole
    assert len(user_turns) < 11
    ids = [m.get("tool_call_id") for m in sent if m["role"] == "tool"]
    calls = [c["id"] for m in sent for c in m.get("tool_calls") or []]
    assert ids == calls == ["call_keep"]
    assert sent[-1] == {"role": "user", "content": "and now?"}


# --- against a real model (seed 002), only with OPEN_ROUTER_API_KEY ----------------------------
live_model = pytest.mark.skipif(not LIVE_API_KEY, reason="OPEN_ROUTER_API_KEY is not set")


@pytest.fixture
async def live_session(redis_target, monkeypatch):
    set_env(monkeypatch, llm_api_key=LIVE_API_KEY, llm_base_url="https://openrouter.ai/api/v1")
    return await get_session_store().create("live-user")


@pytest.mark.live
@live_model
async def test_stream_chat_completion(live_session):
    text = ""
    async for chunk in stream_chat_completion(  # a failure would raise TurnFailed
        live_session.session_id, "Hello, how are you?", user_id="live-user"
    ):
        text += getattr(chunk, "delta", "") if chunk.type == "text-delta" else ""
    assert text


@pytest.mark.live
@live_model
async def test_stream_chat_completion_with_tool_calls(live_session):
    had_tool_calls = False
    async for chunk in stream_chat_completion(  # a failure would raise TurnFailed
        live_session.session_id,
        "Please find me an agent that can help me with my business. Use the query 'moneny printing agent'",
        user_id="live-user",
    ):
        had_tool_calls |= chunk.type == "tool-output-available"
    assert had_tool_calls
    session = await get_session_store().get(live_session.session_id, "live-user")
    assert session and session.usage
