"""chat_core.api.sessions: create, list, get (with the running task), rename, delete and
claim sessions over HTTP; a session's tasks follow it."""

from __future__ import annotations

import asyncio

import pytest
from chat_core import keys, registry, tasks
from chat_core.api import sessions, streams
from chat_core.api import tasks as task_routes
from chat_core.fanout import readers_have_room
from chat_core.redis_client import get_redis
from chat_core.sessions import get_session_store
from chat_core.worker.runner import run_job

from tests.api.helpers import serve, start_slow_turn, wait_until_streaming
from tests.conftest import sse_chunks


@pytest.fixture
async def api(model):
    """The sessions routes, with the streams and tasks routes of the sessions' turns."""
    async with serve(sessions.router, streams.router, task_routes.router) as client:
        yield client


async def test_create_get_and_list_own_sessions(api, auth):
    alice = auth("alice")
    first = (await api.post("/api/chat/sessions", headers=alice)).json()
    second = (await api.post("/api/chat/sessions", headers=alice)).json()
    assert first["user_id"] == "alice" and set(first) == {"id", "created_at", "user_id"}
    await api.post("/api/chat/sessions", headers=auth("bob"))

    listing = (await api.get("/api/chat/sessions", headers=alice)).json()
    assert listing["total"] == 2
    assert [s["id"] for s in listing["sessions"]] == [second["id"], first["id"]]  # newest first
    page = (await api.get("/api/chat/sessions?limit=1&offset=1", headers=alice)).json()
    assert [s["id"] for s in page["sessions"]] == [first["id"]] and page["total"] == 2

    got = (await api.get(f"/api/chat/sessions/{first['id']}", headers=alice)).json()
    assert got["id"] == first["id"] and got["messages"] == [] and got["active_stream"] is None


async def test_another_users_session_is_not_found_exactly_like_a_missing_one(api, auth):
    session = (await api.post("/api/chat/sessions", headers=auth("alice"))).json()["id"]
    theirs = await api.get(f"/api/chat/sessions/{session}", headers=auth("mallory"))
    missing = await api.get("/api/chat/sessions/does-not-exist", headers=auth("mallory"))
    anonymous = await api.get(f"/api/chat/sessions/{session}")
    assert theirs.status_code == missing.status_code == anonymous.status_code == 404
    assert (
        theirs.json()
        == missing.json()
        == {"detail": {"code": "SESSION_NOT_FOUND", "message": "No such chat session."}}
    )
    assert (
        await api.delete(f"/api/chat/sessions/{session}", headers=auth("mallory"))
    ).status_code == 404
    assert (
        await api.post(
            f"/api/chat/sessions/{session}/stream", json={"message": "hi"}, headers=auth("mallory")
        )
    ).status_code == 404


async def test_anonymous_sessions_are_reachable_by_id_and_can_be_claimed(api, auth):
    session = (await api.post("/api/chat/sessions")).json()
    assert session["user_id"] is None
    assert (await api.get(f"/api/chat/sessions/{session['id']}")).status_code == 200
    claimed = await api.patch(
        f"/api/chat/sessions/{session['id']}/assign-user", headers=auth("carol")
    )
    assert claimed.status_code == 200
    assert (await api.get("/api/chat/sessions", headers=auth("carol"))).json()["total"] == 1
    # Now it is Carol's: anonymous readers and others lose it, and it cannot be claimed again.
    assert (await api.get(f"/api/chat/sessions/{session['id']}")).status_code == 404
    again = await api.patch(f"/api/chat/sessions/{session['id']}/assign-user", headers=auth("dave"))
    assert again.status_code == 404


async def test_rename_sets_the_title_for_its_owner_only(api, auth):
    session = (await api.post("/api/chat/sessions", headers=auth("alice"))).json()["id"]
    path = f"/api/chat/sessions/{session}"
    renamed = await api.patch(path, json={"title": "Tax questions"}, headers=auth("alice"))
    assert renamed.status_code == 200 and renamed.json()["title"] == "Tax questions"
    assert (await api.get(path, headers=auth("alice"))).json()["title"] == "Tax questions"
    other = await api.patch(path, json={"title": "Mine now"}, headers=auth("mallory"))
    assert other.status_code == 404 and other.json()["detail"]["code"] == "SESSION_NOT_FOUND"
    empty = await api.patch(path, json={"title": ""}, headers=auth("alice"))
    assert empty.status_code == 422 and empty.json()["detail"]["code"] == "INVALID_REQUEST"
    assert (await api.get(path, headers=auth("alice"))).json()["title"] == "Tax questions"


async def test_delete_answers_204_and_the_session_is_gone(api, auth):
    session = (await api.post("/api/chat/sessions", headers=auth("alice"))).json()["id"]
    deleted = await api.delete(f"/api/chat/sessions/{session}", headers=auth("alice"))
    assert deleted.status_code == 204 and deleted.content == b""
    assert (
        await api.get(f"/api/chat/sessions/{session}", headers=auth("alice"))
    ).status_code == 404


@pytest.mark.both
@pytest.mark.parametrize("offset", ["9223372036854775807", "-1", "1e9", "x"])
async def test_an_offset_out_of_range_is_a_clear_422(api, auth, offset):
    response = await api.get(f"/api/chat/sessions?offset={offset}", headers=auth("alice"))
    assert response.status_code == 422
    assert response.json()["detail"]["code"] == "INVALID_REQUEST"


@pytest.mark.both
async def test_session_shows_the_running_task_and_leaves_its_messages_to_the_replay(api, model):
    session, task_id = await start_slow_turn(api, model)
    got = (await api.get(f"/api/chat/sessions/{session}")).json()
    assert got["active_stream"]["task_id"] == task_id
    assert got["active_stream"]["last_message_id"] == await registry.last_entry_id(task_id)
    # The answer is left to the replay; the question that started it stays.
    assert [(m["role"], m["content"]) for m in got["messages"]] == [("user", "count slowly")]


@pytest.mark.both
async def test_a_task_follows_its_session_when_an_anonymous_session_is_claimed(api, model, auth):
    session, task_id = await start_slow_turn(api, model)
    assert (await api.get(f"/api/chat/tasks/{task_id}")).status_code == 200  # id holder
    claimed = await api.patch(f"/api/chat/sessions/{session}/assign-user", headers=auth("alice"))
    assert claimed.status_code == 200
    for method, path in (
        ("GET", f"/api/chat/tasks/{task_id}"),
        ("GET", f"/api/chat/tasks/{task_id}/stream"),
        ("POST", f"/api/chat/tasks/{task_id}/cancel"),
    ):
        anonymous = await api.request(method, path)
        assert anonymous.status_code == 404, path
        assert anonymous.json()["detail"]["code"] == "TASK_NOT_FOUND"
    assert (await registry.get_task(task_id)).running  # the refused cancel changed nothing
    mine = await api.get(f"/api/chat/tasks/{task_id}", headers=auth("alice"))
    assert mine.status_code == 200 and mine.json()["session_id"] == session
    await api.post(f"/api/chat/tasks/{task_id}/cancel", headers=auth("alice"))


@pytest.mark.both
async def test_deleting_a_session_stops_its_turn_and_its_tasks_answer_404(
    api, dispatched, model, settings_env
):
    # One reader slot, so the test sees when the reader holds it; a short read budget, after
    # which a reader that missed the turn's end reconnects.
    settings_env(max_readers_per_process=1, stream_budget_seconds=3)
    model.slow_stream(60, text=" ".join(f"w{i}" for i in range(80)))
    session = (await api.post("/api/chat/sessions")).json()["id"]
    stored = await get_session_store().get(session, None)
    task_id = (await tasks.start_turn(stored.session_id, "count slowly", None)).task_id
    worker = asyncio.create_task(run_job(dispatched.jobs[-1]))
    await wait_until_streaming(task_id)
    reading = asyncio.create_task(api.get(f"/api/chat/tasks/{task_id}/stream"))
    while readers_have_room():  # until the reader is reading
        await asyncio.sleep(0.01)

    assert (await api.delete(f"/api/chat/sessions/{session}")).status_code == 204
    async with asyncio.timeout(30):  # a hang guard only
        assert await worker in ("cancelled", "lost")  # the turn stopped, not completed
        read = await reading
    # The reader is not left hanging: its stream ends, with the turn's `finish` if it read
    # that before the stream was deleted (else at its budget), and nothing after it.
    chunks = sse_chunks(read.text)
    assert read.status_code == 200 and chunks[0]["type"] == "start"
    assert "finish" not in [c["type"] for c in chunks[:-1]]
    for path in (f"/api/chat/tasks/{task_id}", f"/api/chat/tasks/{task_id}/stream"):
        gone = await api.get(path)
        assert gone.status_code == 404 and gone.json()["detail"]["code"] == "TASK_NOT_FOUND"
    assert await get_redis().exists(keys.task_stream(task_id), keys.task_meta(task_id)) == 0
