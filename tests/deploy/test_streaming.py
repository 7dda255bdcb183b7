"""The reconnect function as the Lambda Web Adapter runs it (ReadMode=stream): the adapter
starts `run.sh` (uvicorn on $PORT with the function's app.py), waits for the port, and turns
each REST API invocation into plain HTTP, the request context in `x-amzn-request-context`.
(tests/deploy/test_build.py does the same with what `sam build` produced.)

    .venv/bin/python -m pytest tests/deploy/test_streaming.py -q
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from chat_core import registry, tasks
from chat_core.protocol.chunks import TextDelta, TextEnd, TextStart
from chat_core.sessions import get_session_store

from tests.fakes import FakeIssuer

from .conftest import (
    FUNCTIONS,
    SseBody,
    adapter_request,
    read_until,
    resolved_environment,
    sample_event,
    stand_ins,
)

pytestmark = pytest.mark.slow

EVENT = sample_event("task_reconnect")
TASK = EVENT["pathParameters"]["task_id"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def streaming_function(redis_target: Any, issuer: FakeIssuer, tmp_path: Path) -> Iterator[str]:
    """run.sh started the way the adapter starts it, in the function's template environment;
    ready once it answers HTTP at all (the adapter's default readiness check)."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("CHAT_")}
    environment.update(
        resolved_environment("TaskReconnectFunction", stand_ins(redis_target, issuer))
    )
    environment.update(
        PORT=str(port), PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    )
    log = (tmp_path / "uvicorn.log").open("w")
    process = subprocess.Popen(
        [str(FUNCTIONS / "task_reconnect" / "run.sh")], env=environment, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"{url}/", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, (tmp_path / "uvicorn.log").read_text()
                assert time.monotonic() < deadline, "run.sh never listened on $PORT"
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


async def test_a_running_turn_streams_to_its_end_on_one_connection(streaming_function: str) -> None:
    # No token: the reader is anonymous, so the task is one reachable through its id alone.
    await get_session_store().create(None, session_id="s-streaming")
    task = await tasks.create_turn("s-streaming", None, task_id=TASK)  # opens with `start`
    await registry.publish_chunks(TASK, [TextStart(id="t1")])
    request = adapter_request(EVENT)

    body = SseBody([])
    async with httpx.AsyncClient(base_url=streaming_function, timeout=15) as client:
        async with client.stream(**request) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["x-task-id"] == TASK
            lines = response.aiter_lines()
            await read_until(lines, body, '"text-start"')
            # Written a second later, while the connection is open, and read on it: a
            # stream, not a long-poll window (that closes 150 ms after its first entries).
            await asyncio.sleep(1)
            await registry.publish_chunks(
                TASK,
                [
                    TextDelta(id="t1", delta="Streamed "),
                    TextDelta(id="t1", delta="live."),
                    TextEnd(id="t1"),
                ],
            )
            await tasks.finish(task, "completed")
            await read_until(lines, body, "[DONE]")

    assert body.types == ["start", "text-start", "text-delta", "text-delta", "text-end", "finish"]
    assert body.text == "Streamed live."
    assert len(set(body.ids)) == 6


async def test_the_streaming_function_verifies_users_tokens_itself(
    issuer: FakeIssuer, streaming_function: str
) -> None:
    """No authorizer stands in front: the app checks the issuer's signature."""
    session = await get_session_store().create("user-9")
    task = await tasks.create_turn(session.session_id, "user-9")
    await tasks.finish(task, "completed")
    path = f"/api/chat/tasks/{task.task_id}/stream"
    async with httpx.AsyncClient(base_url=streaming_function, timeout=15) as client:
        owner = await client.get(
            path, headers={"authorization": f"Bearer {issuer.token('user-9')}"}
        )
        other = await client.get(
            path, headers={"authorization": f"Bearer {issuer.token('user-1')}"}
        )
        anonymous = await client.get(path)
        forged = await client.get(
            path, headers={"authorization": f"Bearer {issuer.token('user-9', kid='nope')}"}
        )
    assert owner.status_code == 200 and SseBody.parse(owner.text).types == ["start", "finish"]
    assert other.status_code == anonymous.status_code == 404
    assert forged.status_code == 401
