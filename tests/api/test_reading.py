"""chat_core.api.reading: reading a task from a cursor, streaming (a reader that drops and
reconnects) and buffered (long polls through Mangum, as the HTTP API functions serve them),
the cursor's checks, and the reader cap."""

from __future__ import annotations

import asyncio
import json

import pytest
from chat_core import registry, tasks
from chat_core.api import reading
from chat_core.api.app import ALL_ROUTERS, create_app
from chat_core.api.errors import ApiError
from starlette.requests import Request

from tests.api.helpers import full_turn, new_session, start_slow_turn
from tests.chunk_rules import assert_valid_turn, text_of
from tests.conftest import parse_sse, sse_chunks


async def finished_task(api) -> str:
    session = (await api.post("/api/chat/sessions")).json()["id"]
    response = await api.post(f"/api/chat/sessions/{session}/stream", json={"message": "Hi"})
    return response.headers["x-task-id"]


@pytest.mark.both
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


@pytest.mark.both
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


def test_a_turn_read_by_long_polls_arrives_whole_without_gaps_or_duplicates(gateway, model):
    model.slow_stream(40, text=" ".join(f"t{i}" for i in range(60)))
    status, _, body = gateway("POST", "/api/chat/sessions")
    session = json.loads(body)["id"]
    status, headers, body = gateway(
        "POST", f"/api/chat/sessions/{session}/stream", body={"message": "count"}
    )
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    task_id = headers["x-task-id"]
    events = parse_sse(body)
    polls = 1
    while not events or events[-1] != {"data": "[DONE]"}:
        last = [e for e in events if "id" in e][-1]["id"]
        status, _, body = gateway(
            "GET", f"/api/chat/tasks/{task_id}/stream", headers={"last-event-id": last}
        )
        assert status == 200
        events += parse_sse(body)
        polls += 1
        assert polls < 40
    assert polls > 1  # the window closed before the answer was done: the reader reconnected
    chunks = [json.loads(e["data"]) for e in events if "id" in e]
    assert_valid_turn(chunks)
    ids = [e["id"] for e in events if "id" in e]
    assert len(ids) == len(set(ids)) and ids == sorted(
        ids, key=lambda i: tuple(map(int, i.split("-")))
    )
    status, _, full = gateway(
        "GET", f"/api/chat/tasks/{task_id}/stream", query={"last_message_id": "0-0"}
    )
    assert parse_sse(full) == events
    status, _, _ = gateway(
        "GET", f"/api/chat/tasks/{task_id}/stream", headers={"last-event-id": ids[-1]}
    )
    assert status == 204


@pytest.mark.both
async def test_a_malformed_cursor_is_refused(api):
    task_id, _ = await full_turn(api)
    response = await api.get(
        f"/api/chat/tasks/{task_id}/stream", headers={"Last-Event-ID": "yesterday"}
    )
    assert response.status_code == 422 and response.json()["detail"]["code"] == "INVALID_CURSOR"


@pytest.mark.both
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


@pytest.mark.both
async def test_the_largest_valid_cursor_is_simply_past_the_end(api):
    task_id = await finished_task(api)
    response = await api.get(
        f"/api/chat/tasks/{task_id}/stream?last_message_id=18446744073709551615-18446744073709551615"
    )
    assert response.status_code == 204


@pytest.mark.both
async def test_a_task_whose_session_is_deleted_while_it_is_read_is_not_found(api):
    # The reader has found the task finished; its session's deletion then removes the
    # stream before the reader looks at it. That reader is told what a later one is: 404
    # (not a 204, "finished, nothing after your cursor").
    task_id, _ = await full_turn(api)
    task = await registry.get_task(task_id)
    await tasks.end_session(task.session_id, [task_id])
    with pytest.raises(ApiError) as gone:
        await reading.task_stream_response(task, "0-0")
    assert (gone.value.status, gone.value.code) == (404, "TASK_NOT_FOUND")


def test_the_query_cursor_wins_over_the_header_and_a_bare_time_is_its_first_entry():
    with_header = Request({"type": "http", "headers": [(b"last-event-id", b"5-1")]})
    assert reading.resolve_cursor(with_header, "7") == "7-0"
    assert reading.resolve_cursor(with_header, None) == "5-1"
    assert reading.resolve_cursor(Request({"type": "http", "headers": []}), None) == "0-0"


@pytest.mark.both
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
