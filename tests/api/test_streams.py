"""chat_core.api.streams: starting a turn with `POST /sessions/{id}/stream` and the AI SDK's
`POST /api/chat` (following the client's conversation: edits, regenerations, bad input)."""

from __future__ import annotations

import json

import pytest
from chat_core import registry, tasks
from chat_core.api import sessions, streams
from chat_core.api import tasks as task_routes

from tests.api.helpers import (
    SECRET,
    bearer,
    full_turn,
    messages_of,
    new_session,
    post,
    serve,
    start_slow_turn,
    user,
)
from tests.chunk_rules import assert_valid_turn
from tests.conftest import sse_chunks

pytestmark = pytest.mark.both


@pytest.fixture
async def api(model):
    """The streams routes, with the sessions and tasks routes the tests read results from."""
    async with serve(sessions.router, streams.router, task_routes.router) as client:
        yield client


async def test_the_stream_carries_ids_headers_and_done(api):
    task_id, events = await full_turn(api)
    assert events[-1] == {"data": "[DONE]"}
    assert all("id" in e for e in events[:-1])
    chunks = [json.loads(e["data"]) for e in events[:-1]]
    assert_valid_turn(chunks)
    response = await api.get(f"/api/chat/tasks/{task_id}/stream")
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"


async def test_a_second_message_while_a_turn_runs_gets_429_and_is_not_saved(api, model):
    session, task_id = await start_slow_turn(api, model)
    response = await api.post(
        f"/api/chat/sessions/{session}/stream", json={"message": "and another"}
    )
    assert response.status_code == 429
    assert (
        response.json()["detail"]["code"] == "TURN_IN_PROGRESS"
        and task_id in response.json()["detail"]["message"]
    )
    await api.post(f"/api/chat/tasks/{task_id}/cancel")
    contents = [
        m["content"] for m in (await api.get(f"/api/chat/sessions/{session}")).json()["messages"]
    ]
    assert "and another" not in contents


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


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 422, "INVALID_JSON"),
        (json.dumps({"message": ""}).encode(), 422, "INVALID_REQUEST"),
        (json.dumps({"text": "wrong field"}).encode(), 422, "INVALID_REQUEST"),
        (json.dumps({"message": "x" * 10_001}).encode(), 413, "MESSAGE_TOO_LARGE"),
        (
            json.dumps({"message": "hi", "context": {"content": "y" * 300_000}}).encode(),
            413,
            "BODY_TOO_LARGE",
        ),
    ],
)
async def test_bad_input_gets_a_clear_error_and_nothing_is_saved(api, body, status, code):
    session = await new_session(api)
    response = await api.post(
        f"/api/chat/sessions/{session}/stream",
        content=body,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == status and response.json()["detail"]["code"] == code
    assert (await api.get(f"/api/chat/sessions/{session}")).json()["messages"] == []
    assert (await tasks.active_task(session))[0] is None


async def test_the_ai_sdk_transport_works_unchanged(api, model):
    body = {
        "id": "chat-from-the-browser",
        "messages": [
            {
                "id": "m1",
                "role": "user",
                "parts": [{"type": "text", "text": "Hi! What can you do?"}],
            },
        ],
        "trigger": "submit-message",
        "messageId": None,
    }
    response = await api.post("/api/chat", json=body)
    assert response.status_code == 200
    first = sse_chunks(response.text)
    assert_valid_turn(first)
    session = (await api.get("/api/chat/sessions/chat-from-the-browser")).json()
    assert [m["content"] for m in session["messages"]][0] == "Hi! What can you do?"
    # The client posts the whole history; the server keeps its own and takes the last user
    # message. The client's copy of the answer is known by its id (the stream's messageId).
    answer_id = first[0]["messageId"]
    body["messages"] += [
        {
            "id": answer_id,
            "role": "assistant",
            "parts": [{"type": "text", "text": "(client copy)"}],
        },
        {"id": "m3", "role": "user", "parts": [{"type": "text", "text": "Tell me more"}]},
    ]
    assert (await api.post("/api/chat", json=body)).status_code == 200
    contents = [
        m["content"]
        for m in (await api.get("/api/chat/sessions/chat-from-the-browser")).json()["messages"]
    ]
    assert (
        contents.count("Hi! What can you do?") == 1
        and "Tell me more" in contents
        and "(client copy)" not in contents
    )
    # Nothing is running now: the resume probe answers 204.
    assert (await api.get("/api/chat/chat-from-the-browser/stream")).status_code == 204


async def test_an_ai_sdk_chat_id_of_another_user_is_not_found(api, settings_env):

    settings_env(jwt_secret=SECRET)
    owned = (await api.post("/api/chat/sessions", headers=bearer("alice"))).json()["id"]
    hi = {"id": "m1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}
    body = {"id": owned, "messages": [hi]}
    response = await api.post("/api/chat", json=body, headers=bearer("mallory"))
    assert response.status_code == 404 and response.json()["detail"]["code"] == "SESSION_NOT_FOUND"


async def test_an_ai_sdk_request_without_a_user_message_is_invalid(api):
    body = {
        "id": "c1",
        "messages": [{"id": "a1", "role": "assistant", "parts": [{"type": "text", "text": "hi"}]}],
    }
    response = await api.post("/api/chat", json=body)
    assert response.status_code == 422 and response.json()["detail"]["code"] == "NO_USER_MESSAGE"


async def test_regenerate_replaces_the_answer_and_edit_rewinds(api, model):
    first = sse_chunks((await post(api, "chat-c", [user("One", "u1")])).text)
    answer = {"id": first[0]["messageId"], "role": "assistant", "parts": []}
    await post(api, "chat-c", [user("One", "u1"), answer, user("Two", "u2")])
    assert len(await messages_of(api, "chat-c")) == 4

    model.reply_text("Regenerated.", stream=True)
    body = {"id": "chat-c", "messages": [user("One", "u1")], "trigger": "regenerate-message"}
    body["messageId"] = first[0]["messageId"]
    again = sse_chunks((await api.post("/api/chat", json=body)).text)
    history = await messages_of(api, "chat-c")
    assert [m["id"] for m in history] == ["u1", again[0]["messageId"]]
    assert [p["text"] for p in history[1]["parts"] if p["type"] == "text"] == ["Regenerated."]

    model.reply_text("Edited answer.", stream=True)
    await post(api, "chat-c", [user("One, edited", "u1")], messageId="u1")
    history = await messages_of(api, "chat-c")
    assert history[0] == user("One, edited", "u1") and len(history) == 2
    session = (await api.get("/api/chat/sessions/chat-c")).json()
    assert [m["content"] for m in session["messages"]] == ["One, edited", "Edited answer."]


@pytest.mark.parametrize(
    ("messages", "detail"),
    [
        ([{"role": "user", "parts": [{"type": "text", "text": "no id"}]}], "messages.0.id"),
        ([{"id": "u1", "role": "user", "parts": "text"}], "messages.0.parts"),
        ([{"id": "u1", "role": "user", "parts": [{"text": "no type"}]}], "messages.0.parts.0.type"),
        ([{"id": "u1", "role": "robot", "parts": []}], "messages.0.role"),
    ],
)
async def test_messages_that_are_not_ui_messages_are_refused(api, messages, detail):
    response = await post(api, "chat-d", messages)
    assert response.status_code == 422
    assert response.json()["detail"]["code"] == "INVALID_REQUEST"
    assert response.json()["detail"]["message"].startswith(detail)
    assert (await api.get("/api/chat/sessions/chat-d")).status_code == 404  # nothing saved


async def test_no_messages_is_no_user_message(api):
    response = await post(api, "chat-d", [])
    assert response.status_code == 422
    assert response.json()["detail"]["code"] == "NO_USER_MESSAGE"


async def test_an_unknown_message_id_and_another_chats_message_are_not_found(api, model):
    await post(api, "chat-e", [user("Mine", "e1")])
    await post(api, "chat-f", [user("Other", "f1")])
    before = await messages_of(api, "chat-e")
    for message_id in ("no-such-message", "f1"):  # f1 belongs to chat-f
        response = await post(api, "chat-e", [user("Edited", message_id)], messageId=message_id)
        assert response.status_code == 404
        assert response.json()["detail"]["code"] == "MESSAGE_NOT_FOUND"
    body = {"id": "chat-e", "messages": [user("Mine", "e1")], "trigger": "regenerate-message"}
    response = await api.post("/api/chat", json={**body, "messageId": "nope"})
    assert response.status_code == 404
    assert await messages_of(api, "chat-e") == before  # nothing lost


async def test_a_history_the_server_does_not_have_is_refused(api, model):
    await post(api, "chat-g", [user("One", "g1")])
    made_up = {"id": "invented", "role": "assistant", "parts": [{"type": "text", "text": "?"}]}
    response = await post(api, "chat-g", [user("One", "g1"), made_up, user("Two", "g2")])
    assert response.status_code == 422
    assert response.json()["detail"]["code"] == "HISTORY_MISMATCH"
    assert len(await messages_of(api, "chat-g")) == 2
