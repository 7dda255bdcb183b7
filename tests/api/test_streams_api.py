"""Starting, reading, resuming and cancelling turns over HTTP (streaming mode, in-process)."""

from __future__ import annotations

import asyncio
import json

import pytest
from chat_core import keys, registry, tasks
from chat_core.api.app import ALL_ROUTERS, create_app
from chat_core.redis_client import get_redis

from tests.chunk_rules import assert_valid_turn, text_of
from tests.conftest import parse_sse, sse_chunks

pytestmark = pytest.mark.both


async def new_session(api) -> str:
    return (await api.post("/api/chat/sessions")).json()["id"]


async def full_turn(api, message: str = "Hello there") -> tuple[str, list[dict]]:
    session = await new_session(api)
    response = await api.post(f"/api/chat/sessions/{session}/stream", json={"message": message})
    assert response.status_code == 200
    return response.headers["x-task-id"], parse_sse(response.text)


async def wait_until_streaming(task_id: str) -> None:
    for _ in range(200):
        entries = await get_redis().xrange(keys.task_stream(task_id))
        if any('"text-delta"' in f["data"] for _, f in entries):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the turn never started streaming")


async def start_slow_turn(api, model, words: int = 80) -> tuple[str, str]:
    """A turn still running when this returns: (session id, task id)."""
    model.slow_stream(60, text=" ".join(f"w{i}" for i in range(words)))
    session = await new_session(api)
    from chat_core.sessions import get_session_store

    task = await tasks.start_turn(
        await get_session_store().get(session, None), "count slowly", None
    )
    await wait_until_streaming(task.task_id)
    return session, task.task_id


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


async def test_a_turn_replayed_from_every_cursor_gives_the_rest_without_gaps_or_duplicates(api):
    task_id, events = await full_turn(api)
    events = events[:-1]
    for i, event in enumerate(events[:-1]):
        use_header = i % 2 == 0
        response = await api.get(
            f"/api/chat/tasks/{task_id}/stream",
            params={} if use_header else {"last_message_id": event["id"]},
            headers={"Last-Event-ID": event["id"]} if use_header else {},
        )
        replayed = parse_sse(response.text)
        assert replayed[:-1] == events[i + 1 :], f"cursor {i}"
        assert replayed[-1] == {"data": "[DONE]"}
    full = parse_sse((await api.get(f"/api/chat/tasks/{task_id}/stream?last_message_id=0-0")).text)
    assert full[:-1] == events
    at_end = await api.get(
        f"/api/chat/tasks/{task_id}/stream", headers={"Last-Event-ID": events[-1]["id"]}
    )
    assert at_end.status_code == 204  # finished and nothing after the cursor: EventSource stops


async def asgi_read_then_drop(app, path: str, events_wanted: int) -> list[dict]:
    """A real streaming read at the ASGI level that hangs up after a few events."""
    received = bytearray()
    hang_up = asyncio.Event()

    async def receive():
        await hang_up.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.body":
            received.extend(message.get("body", b""))
            if received.count(b"\n\n") >= events_wanted:
                hang_up.set()

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 1), "server": ("testserver", 80),
    }  # fmt: skip
    await asyncio.wait_for(app(scope, receive, send), 20)
    events = parse_sse(received.decode())
    return [e for e in events if "id" in e][:events_wanted]


async def test_a_reader_that_drops_mid_turn_and_reconnects_with_its_last_id_misses_nothing(
    api, model
):
    _, task_id = await start_slow_turn(api, model)
    first_part = await asgi_read_then_drop(
        create_app(*ALL_ROUTERS), f"/api/chat/tasks/{task_id}/stream", 5
    )
    assert len(first_part) == 5
    response = await api.get(
        f"/api/chat/tasks/{task_id}/stream", headers={"Last-Event-ID": first_part[-1]["id"]}
    )
    rest = parse_sse(response.text)
    full = parse_sse((await api.get(f"/api/chat/tasks/{task_id}/stream")).text)
    assert first_part + rest == full
    assert text_of(sse_chunks(response.text + "")) and rest[-1] == {"data": "[DONE]"}


async def test_session_shows_the_running_task_and_leaves_its_messages_to_the_replay(api, model):
    session, task_id = await start_slow_turn(api, model)
    got = (await api.get(f"/api/chat/sessions/{session}")).json()
    assert got["active_stream"]["task_id"] == task_id
    assert got["active_stream"]["last_message_id"] == await registry.last_entry_id(task_id)
    # The answer is left to the replay; the question that started it stays.
    assert [(m["role"], m["content"]) for m in got["messages"]] == [("user", "count slowly")]


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


@pytest.mark.parametrize("path", ["/api/chat/{}/stream", "/api/chat/sessions/{}/stream"])
async def test_the_ai_sdk_resume_answers_the_running_turn_from_its_start(api, model, path):
    session, task_id = await start_slow_turn(api, model, words=30)
    chunks = sse_chunks((await api.get(path.format(session))).text)
    assert_valid_turn(chunks)  # from `start`: the client can rebuild the whole message
    assert text_of(chunks).split() == [f"w{i}" for i in range(30)]
    assert (await api.get(path.format(session))).status_code == 204  # and then nothing runs


async def test_an_ai_sdk_chat_id_of_another_user_is_not_found(api, settings_env):
    from tests.api.test_sessions_api import SECRET, bearer

    settings_env(jwt_secret=SECRET)
    owned = (await api.post("/api/chat/sessions", headers=bearer("alice"))).json()["id"]
    hi = {"id": "m1", "role": "user", "parts": [{"type": "text", "text": "hi"}]}
    body = {"id": owned, "messages": [hi]}
    response = await api.post("/api/chat", json=body, headers=bearer("mallory"))
    assert response.status_code == 404 and response.json()["detail"]["code"] == "SESSION_NOT_FOUND"


# --- every error status --------------------------------------------------------------------
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


async def test_an_ai_sdk_request_without_a_user_message_is_invalid(api):
    body = {
        "id": "c1",
        "messages": [{"id": "a1", "role": "assistant", "parts": [{"type": "text", "text": "hi"}]}],
    }
    response = await api.post("/api/chat", json=body)
    assert response.status_code == 422 and response.json()["detail"]["code"] == "NO_USER_MESSAGE"


async def test_unknown_foreign_and_expired_tasks(api, settings_env):
    from tests.api.test_sessions_api import SECRET, bearer

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


async def test_a_malformed_cursor_is_refused(api):
    task_id, _ = await full_turn(api)
    response = await api.get(
        f"/api/chat/tasks/{task_id}/stream", headers={"Last-Event-ID": "yesterday"}
    )
    assert response.status_code == 422 and response.json()["detail"]["code"] == "INVALID_CURSOR"


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


async def test_past_the_reader_cap_readers_get_503_with_retry_after_and_the_turn_goes_on(
    api, model, settings_env
):
    settings_env(max_readers_per_process=2)
    session, task_id = await start_slow_turn(api, model, words=20)
    holders = [registry.subscribe(task_id) for _ in range(2)]  # the process's two readers

    busy = await api.get(f"/api/chat/tasks/{task_id}/stream")
    assert busy.status_code == 503 and busy.headers["retry-after"] == "2"
    assert busy.json()["detail"]["code"] == "READERS_BUSY"
    other = await new_session(api)
    refused = await api.post(f"/api/chat/sessions/{other}/stream", json={"message": "hi"})
    assert refused.status_code == 503 and refused.headers["retry-after"] == "2"
    refused_session = (await api.get(f"/api/chat/sessions/{other}")).json()
    assert refused_session["active_stream"] is None and refused_session["messages"] == []

    for holder in holders:
        await holder.close()
    response = await api.get(f"/api/chat/tasks/{task_id}/stream")  # after the wait: all of it
    chunks = sse_chunks(response.text)
    assert_valid_turn(chunks)
    assert text_of(chunks).split() == [f"w{i}" for i in range(20)]


async def test_a_turn_longer_than_stream_max_length_is_resumed_whole(api, settings_env):
    """Task streams are never trimmed: an AI SDK resume, which replays the turn from its
    `start`, and a reader with any old cursor get every entry, however long the turn."""
    from chat_core.protocol import chunks as c
    from chat_core.sessions import get_session_store
    from chat_core.worker.dispatch import set_dispatcher

    from tests.chat.test_worker import Recorder

    settings_env(stream_max_length=100, stream_budget_seconds=1.5)
    session = (await api.post("/api/chat/sessions")).json()["id"]
    set_dispatcher(Recorder())  # the turn runs, and the test writes its content
    stored = await get_session_store().get(session, None)
    task = await tasks.start_turn(stored, "count to 500", None)
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
