"""chat_core.api.events: `GET /events`, the caller's session events as SSE: all of a signed-in
user's sessions, or the one session an anonymous page knows."""

from __future__ import annotations

import asyncio
import json

import pytest
from chat_core.api import events as event_routes
from chat_core.api import sessions, streams

from tests.api.helpers import new_session, serve
from tests.conftest import parse_sse

pytestmark = pytest.mark.both


@pytest.fixture
async def api(model):
    """The events route, with the sessions and streams routes whose changes it announces."""
    async with serve(sessions.router, streams.router, event_routes.router) as client:
        yield client


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


async def events_while(api, path: str, headers: dict[str, str], act) -> list[dict]:
    """The session events `path` streams while `act()` runs (the read ends with its budget)."""
    listener = asyncio.create_task(api.get(path, headers=headers))
    await asyncio.sleep(0.5)  # let it subscribe before anything happens
    await act()
    response = await listener
    assert response.status_code == 200
    return [json.loads(e["data"]) for e in parse_sse(response.text) if "data" in e]


async def test_a_signed_in_user_hears_of_all_their_sessions_and_nobody_elses(
    api, auth, settings_env
):
    settings_env(stream_budget_seconds=2)
    alice, bob = auth("alice"), auth("bob")
    first = (await api.post("/api/chat/sessions", headers=alice)).json()["id"]

    async def act():
        await api.patch(f"/api/chat/sessions/{first}", json={"title": "Taxes"}, headers=alice)
        second = (await api.post("/api/chat/sessions", headers=alice)).json()["id"]
        await api.delete(f"/api/chat/sessions/{second}", headers=alice)
        await api.post("/api/chat/sessions", headers=bob)

    events = await events_while(api, "/api/chat/events", alice, act)
    assert [(e["type"], e.get("title")) for e in events] == [
        ("title_changed", "Taxes"),
        ("session_created", None),
        ("session_deleted", None),
    ]
    assert events[0]["session_id"] == first and events[1]["session_id"] == events[2]["session_id"]


async def test_an_anonymous_page_may_follow_only_a_session_it_can_see(api, auth):
    owned = (await api.post("/api/chat/sessions", headers=auth("alice"))).json()["id"]
    for session_id in ("no-such-session", owned):
        response = await api.get(f"/api/chat/events?session_id={session_id}")
        assert response.status_code == 404
        assert response.json()["detail"]["code"] == "SESSION_NOT_FOUND"


async def test_an_idle_stream_says_it_listens_then_sends_heartbeats_until_its_budget_ends(
    api, settings_env
):
    settings_env(stream_budget_seconds=0.7, heartbeat_seconds=0.2)
    session = await new_session(api)
    response = await api.get(f"/api/chat/events?session_id={session}")
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.startswith(": listening\n\n")
    assert ": heartbeat\n\n" in response.text
    assert parse_sse(response.text) == []  # comments only: no event, no data
