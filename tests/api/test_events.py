"""chat_core.api.events: `GET /events`, the caller's session events as SSE."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.api.helpers import new_session
from tests.conftest import parse_sse

pytestmark = pytest.mark.both


async def test_session_events_reach_an_anonymous_page(api, model, settings_env):
    settings_env(stream_budget_seconds=2.5)
    session = await new_session(api)

    async def listen():
        return await api.get(f"/api/chat/events?session_id={session}")

    listener = asyncio.create_task(listen())
    await asyncio.sleep(0.4)
    await api.post(
        f"/api/chat/sessions/{session}/stream", json={"message": "Plan a picnic in the park"}
    )
    events = [json.loads(e["data"]) for e in parse_sse((await listener).text) if "data" in e]
    types = [e["type"] for e in events]
    assert "task_started" in types and "task_finished" in types and "title_changed" in types
    assert all(e["session_id"] == session for e in events)
    anonymous_without_session = await api.get("/api/chat/events")
    assert anonymous_without_session.status_code == 401
