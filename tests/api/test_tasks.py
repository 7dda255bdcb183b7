"""chat_core.api.tasks: a task's status and cancel, resuming a chat's message in progress
(`/sessions/{id}/stream`, the AI SDK's `/{id}/stream`) and its stop; unknown, foreign and
expired tasks."""

from __future__ import annotations

import asyncio
import json

import pytest
from chat_core import keys, registry, tasks
from chat_core.api import sessions, streams
from chat_core.api import tasks as task_routes
from chat_core.redis_client import get_redis
from chat_core.sessions import get_session_store
from chat_core.tasks import start_turn
from chat_core.worker.dispatch import set_dispatcher

from tests.api.helpers import (
    SECRET,
    bearer,
    messages_of,
    serve,
    start_slow_turn,
    wait_until_streaming,
)
from tests.chunk_rules import assert_valid_turn, text_of
from tests.conftest import sse_chunks


@pytest.fixture
async def api(model):
    """The tasks routes, with the sessions and streams routes that make the tasks."""
    async with serve(sessions.router, streams.router, task_routes.router) as client:
        yield client


@pytest.mark.both
async def test_cancel_ends_the_turn_as_cancelled_and_is_idempotent(api, model):
    session, task_id = await start_slow_turn(api, model)
    response = await api.post(f"/api/chat/tasks/{task_id}/cancel")
    assert response.status_code == 200 and response.json() == {
        "task_id": task_id,
        "status": "cancelled",
    }
    assert (await api.post(f"/api/chat/tasks/{task_id}/cancel")).json()["status"] == "cancelled"
    assert (await api.get(f"/api/chat/tasks/{task_id}")).json()["status"] == "cancelled"
    chunks = sse_chunks((await api.get(f"/api/chat/tasks/{task_id}/stream")).text)
    assert chunks[-1] == {"type": "finish"} and "w79" not in text_of(chunks)
    # The session is free again.
    after = await api.post(f"/api/chat/sessions/{session}/stream", json={"message": "next"})
    assert after.status_code == 200


def test_429_and_cancel_through_the_gateway(gateway, model):
    model.slow_stream(80, text=" ".join(f"t{i}" for i in range(60)))
    session = json.loads(gateway("POST", "/api/chat/sessions")[2])["id"]
    status, headers, _ = gateway(
        "POST", f"/api/chat/sessions/{session}/stream", body={"message": "go"}
    )
    task_id = headers["x-task-id"]
    status, _, body = gateway(
        "POST", f"/api/chat/sessions/{session}/stream", body={"message": "again"}
    )
    assert status == 429 and json.loads(body)["detail"]["code"] == "TURN_IN_PROGRESS"
    status, _, body = gateway("POST", f"/api/chat/tasks/{task_id}/cancel")
    assert status == 200 and json.loads(body)["status"] == "cancelled"
    status, _, body = gateway("GET", f"/api/chat/tasks/{task_id}")
    assert json.loads(body)["status"] == "cancelled"


@pytest.mark.both
async def test_unknown_foreign_and_expired_tasks(api, settings_env):

    settings_env(jwt_secret=SECRET)
    missing = await api.get("/api/chat/tasks/nope/stream")
    assert missing.status_code == 404 and missing.json()["detail"]["code"] == "TASK_NOT_FOUND"
    session = (await api.post("/api/chat/sessions", headers=bearer("alice"))).json()["id"]
    task = await tasks.create_turn(session, "alice")
    mine = await api.get(f"/api/chat/tasks/{task.task_id}", headers=bearer("alice"))
    assert mine.status_code == 200
    for path in (f"/api/chat/tasks/{task.task_id}", f"/api/chat/tasks/{task.task_id}/stream"):
        foreign = await api.get(path, headers=bearer("mallory"))
        assert foreign.status_code == 404 and foreign.json() == missing.json()
    assert (
        await api.post(f"/api/chat/tasks/{task.task_id}/cancel", headers=bearer("mallory"))
    ).status_code == 404
    await get_redis().delete(keys.task_meta(task.task_id))
    expired = await api.get(f"/api/chat/tasks/{task.task_id}/stream", headers=bearer("alice"))
    assert expired.status_code == 410 and expired.json()["detail"]["code"] == "TASK_EXPIRED"


@pytest.mark.both
@pytest.mark.parametrize("path", ["/api/chat/{}/stream", "/api/chat/sessions/{}/stream"])
async def test_the_ai_sdk_resume_answers_the_running_turn_from_its_start(api, model, path):
    session, task_id = await start_slow_turn(api, model, words=30)
    chunks = sse_chunks((await api.get(path.format(session))).text)
    assert_valid_turn(chunks)  # from `start`: the client can rebuild the whole message
    assert text_of(chunks).split() == [f"w{i}" for i in range(30)]
    assert (await api.get(path.format(session))).status_code == 204  # and then nothing runs


@pytest.mark.both
async def test_a_turn_longer_than_stream_max_length_is_resumed_whole(api, settings_env):
    """Task streams are never trimmed: an AI SDK resume, which replays the turn from its
    `start`, and a reader with any old cursor get every entry, however long the turn."""
    from chat_core.protocol import chunks as c
    from chat_core.sessions import get_session_store

    from tests.fakes import Recorder

    settings_env(stream_max_length=100, stream_budget_seconds=1.5)
    session = (await api.post("/api/chat/sessions")).json()["id"]
    set_dispatcher(Recorder())  # the turn runs, and the test writes its content
    stored = await get_session_store().get(session, None)
    task = await tasks.start_turn(stored.session_id, "count to 500", None)
    await registry.publish_chunks(task.task_id, [c.StartStep(), c.TextStart(id="t")])
    for batch in range(10):
        await registry.publish_chunks(
            task.task_id, [c.TextDelta(id="t", delta=f"{batch * 50 + i} ") for i in range(50)]
        )
    assert await get_redis().xlen(keys.task_stream(task.task_id)) == 503  # start + 2 + 500
    resumed = sse_chunks((await api.get(f"/api/chat/{session}/stream")).text)
    assert resumed[0]["type"] == "start"
    assert text_of(resumed).split() == [str(i) for i in range(500)]
    old_cursor = await api.get(f"/api/chat/tasks/{task.task_id}/stream?last_message_id=1-0")
    assert text_of(sse_chunks(old_cursor.text)).split() == [str(i) for i in range(500)]


@pytest.mark.both
async def test_resume_of_a_new_or_foreign_chat_is_204_and_stop_is_idempotent(
    api, model, settings_env
):

    settings_env(jwt_secret=SECRET)
    assert (await api.get("/api/chat/never-posted/stream")).status_code == 204
    owned = (await api.post("/api/chat/sessions", headers=bearer("alice"))).json()["id"]
    assert (
        await api.get(f"/api/chat/{owned}/stream", headers=bearer("mallory"))
    ).status_code == 204
    assert (await api.post(f"/api/chat/{owned}/stop", headers=bearer("mallory"))).status_code == 204
    assert (await api.post("/api/chat/never-posted/stop")).status_code == 204


@pytest.mark.both
async def test_stop_cancels_the_running_turn(api, model):
    session = await get_session_store().create(None, session_id="chat-h")
    model.slow_stream(60, text=" ".join(f"w{i}" for i in range(200)))
    task = await start_turn(session.session_id, "count", None)
    await wait_until_streaming(task.task_id)
    assert (await api.post("/api/chat/chat-h/stop")).status_code == 204
    for _ in range(100):
        if not (await registry.get_task(task.task_id)).running:
            break
        await asyncio.sleep(0.05)
    assert (await registry.get_task(task.task_id)).status == "cancelled"
    assert (await api.post("/api/chat/chat-h/stop")).status_code == 204
    [_, answer] = await messages_of(api, "chat-h")
    assert "w199" not in str(answer["parts"])
