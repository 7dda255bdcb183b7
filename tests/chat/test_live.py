"""Seed 002's two tests against a real model. They run only with OPEN_ROUTER_API_KEY;
their always-on twins against the scripted model are in test_turn.py."""

import pytest
from chat_core.chat.service import stream_chat_completion
from chat_core.sessions import get_session_store

from tests.conftest import LIVE_API_KEY, set_env

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not LIVE_API_KEY, reason="OPEN_ROUTER_API_KEY is not set"),
]


@pytest.fixture
async def live_session(redis_target, monkeypatch):
    set_env(monkeypatch, llm_api_key=LIVE_API_KEY, llm_base_url="https://openrouter.ai/api/v1")
    return await get_session_store().create("live-user")


async def test_stream_chat_completion(live_session):
    text = ""
    async for chunk in stream_chat_completion(  # a failure would raise TurnFailed
        live_session.session_id, "Hello, how are you?", user_id="live-user"
    ):
        text += getattr(chunk, "delta", "") if chunk.type == "text-delta" else ""
    assert text


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
