"""The same flows through Mangum with API Gateway events: buffered long-poll reads, the way
the HTTP API functions serve them on AWS. The worker runs beside, as its own Lambda would."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from chat_core import aws
from chat_core.api.app import ALL_ROUTERS, create_app
from chat_core.worker.dispatch import set_dispatcher
from chat_core.worker.runner import run_job

from tests.api.gateway import http_api_event
from tests.chunk_rules import assert_valid_turn
from tests.conftest import parse_sse


class WorkerLambda:
    """Each job runs in its own thread and event loop, like an async-invoked worker."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []

    async def dispatch(self, job) -> None:
        thread = threading.Thread(target=asyncio.run, args=(run_job(job),), daemon=True)
        thread.start()
        self.threads.append(thread)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(30)


@pytest.fixture
def gateway(model, settings_env):
    settings_env(read_mode="buffered", long_poll_seconds=1.5, long_poll_linger_ms=100)
    worker = WorkerLambda()
    set_dispatcher(worker)
    handler = aws.http_handler(create_app(*ALL_ROUTERS))

    def call(method, path, **kw):
        response = handler(http_api_event(method, path, **kw), None)
        return response["statusCode"], response.get("headers", {}), response.get("body") or ""

    yield call
    worker.join()


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


def test_claims_from_the_api_gateway_authorizer_identify_the_caller(gateway):
    status, _, body = gateway(
        "POST", "/api/chat/sessions", claims={"sub": "gw-user", "iss": "https://issuer"}
    )
    assert status == 200 and json.loads(body)["user_id"] == "gw-user"
    session = json.loads(body)["id"]
    assert gateway("GET", f"/api/chat/sessions/{session}", claims={"sub": "gw-user"})[0] == 200
    assert gateway("GET", f"/api/chat/sessions/{session}", claims={"sub": "someone-else"})[0] == 404
    listing = json.loads(gateway("GET", "/api/chat/sessions", claims={"sub": "gw-user"})[2])
    assert listing["total"] == 1
