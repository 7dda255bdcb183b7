"""Odd input and odd moments over HTTP: every answer is JSON with the contract's code, nothing
is lost, and a task follows its session (its owner, its deletion)."""

from __future__ import annotations

import asyncio
import json

import pytest
from chat_core import keys, registry
from chat_core.redis_client import get_redis

from tests.api.test_sessions_api import bearer
from tests.api.test_streams_api import start_slow_turn, wait_until_streaming
from tests.conftest import sse_chunks

pytestmark = pytest.mark.both


@pytest.fixture
def auth(settings_env):
    from tests.api.test_sessions_api import SECRET

    settings_env(jwt_secret=SECRET)
    return bearer


async def finished_task(api) -> str:
    session = (await api.post("/api/chat/sessions")).json()["id"]
    response = await api.post(f"/api/chat/sessions/{session}/stream", json={"message": "Hi"})
    return response.headers["x-task-id"]


# --- numbers and ids ----------------------------------------------------------------------
@pytest.mark.parametrize("offset", ["9223372036854775807", "-1", "1e9", "x"])
async def test_an_offset_out_of_range_is_a_clear_422(api, auth, offset):
    response = await api.get(f"/api/chat/sessions?offset={offset}", headers=auth("alice"))
    assert response.status_code == 422
    assert response.json()["detail"]["code"] == "INVALID_REQUEST"


@pytest.mark.parametrize(
    "cursor",
    ["9" * 4300, "1" * 21 + "-0", "18446744073709551616-0", "1-18446744073709551616", "-5"],
)
async def test_a_cursor_out_of_range_is_refused_with_invalid_cursor(api, cursor):
    task_id = await finished_task(api)
    for request in (
        api.get(f"/api/chat/tasks/{task_id}/stream?last_message_id={cursor}"),
        api.get(f"/api/chat/tasks/{task_id}/stream", headers={"Last-Event-ID": cursor}),
    ):
        response = await request
        assert response.status_code == 422
        assert response.json()["detail"]["code"] == "INVALID_CURSOR"


async def test_the_largest_valid_cursor_is_simply_past_the_end(api):
    task_id = await finished_task(api)
    response = await api.get(
        f"/api/chat/tasks/{task_id}/stream?last_message_id=18446744073709551615-18446744073709551615"
    )
    assert response.status_code == 204


# --- bodies -----------------------------------------------------------------------------
async def test_a_chunked_body_over_the_limit_is_413(api, settings_env):
    settings_env(max_body_bytes=1000)
    session = (await api.post("/api/chat/sessions")).json()["id"]

    async def chunked():
        yield b'{"message": "'
        for _ in range(20):
            yield b"x" * 100
        yield b'"}'

    response = await api.post(
        f"/api/chat/sessions/{session}/stream",
        content=chunked(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["detail"]["code"] == "BODY_TOO_LARGE"
    assert (await api.get(f"/api/chat/sessions/{session}")).json()["messages"] == []


@pytest.mark.parametrize(
    "body",
    [b'{"message": "caf\xc3"}', b'{"message": "\xff\xfe"}', b"[" * 10_000 + b"]" * 10_000],
    ids=["truncated utf-8", "not utf-8", "10,000 deep"],
)
async def test_a_body_that_is_not_json_text_is_422(api, body):
    session = (await api.post("/api/chat/sessions")).json()["id"]
    response = await api.post(
        f"/api/chat/sessions/{session}/stream",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["detail"]["code"] == "INVALID_JSON"
    assert (await api.get(f"/api/chat/sessions/{session}")).json()["messages"] == []


# --- a task follows its session ---------------------------------------------------------
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


async def test_deleting_a_session_stops_its_turn_and_its_tasks_answer_404(api, model):
    session, task_id = await start_slow_turn(api, model)
    reading = asyncio.create_task(api.get(f"/api/chat/tasks/{task_id}/stream"))
    await wait_until_streaming(task_id)
    assert (await api.delete(f"/api/chat/sessions/{session}")).status_code == 204
    # A reader of it is not left hanging: its stream ends (with the turn's `finish`, if it
    # read that before the stream was deleted), or it finds the task gone.
    read = await asyncio.wait_for(reading, 10)
    assert read.status_code in (200, 404)
    for path in (f"/api/chat/tasks/{task_id}", f"/api/chat/tasks/{task_id}/stream"):
        gone = await api.get(path)
        assert gone.status_code == 404 and gone.json()["detail"]["code"] == "TASK_NOT_FOUND"
    assert await get_redis().exists(keys.task_stream(task_id), keys.task_meta(task_id)) == 0


async def test_a_pending_operation_does_not_block_the_next_message(api, model, agent_generator):
    from chat_dev.scripted_model import ToolCall

    session = (await api.post("/api/chat/sessions")).json()["id"]
    model.reply_tool_calls(ToolCall("create_agent", {"description": "Chase invoices"}), stream=True)
    first = await api.post(f"/api/chat/sessions/{session}/stream", json={"message": "Build it"})
    started = next(c for c in sse_chunks(first.text) if c["type"] == "data-operation-started")
    operation_task = started["data"]["taskId"]
    model.reply_text("Meanwhile: hello!", stream=True)
    second = await api.post(f"/api/chat/sessions/{session}/stream", json={"message": "Hi again"})
    assert second.status_code == 200
    assert "Meanwhile: hello!" in "".join(
        c.get("delta", "") for c in sse_chunks(second.text) if c["type"] == "text-delta"
    )
    assert (await registry.get_task(operation_task)).running  # its result is still to come
    assert json.loads((await api.get(f"/api/chat/tasks/{operation_task}")).text)["status"] == (
        "running"
    )
