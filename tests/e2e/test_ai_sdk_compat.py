"""What we stream is what the AI SDK's own client accepts and assembles.

    .venv/bin/python -m pytest tests/e2e/test_ai_sdk_compat.py -q

Streams are recorded from the running dev server (a plain turn, a find_agent turn, a failed
turn, a resumed turn, a create_agent operation finished by its webhook) and fed through the
`ai` package pinned in tests/js (parseJsonEventStream + uiMessageChunkSchema +
readUIMessageStream, by tests/js/assemble.mjs). The pinned version validates chunks with
strict schemas, so one extra key anywhere fails these tests; the last test proves it does.
Recorded streams are kept in tests/artifacts/streams/ for a look.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import ARTIFACTS, REPO, DevServer, have_node, require

pytestmark = [pytest.mark.node, pytest.mark.slow]

ASSEMBLE = REPO / "tests" / "js" / "assemble.mjs"
STRICT_VERSIONS = "ai 5.0.0–5.0.216 or 6.0.0–6.0.230"


@pytest.fixture(autouse=True)
def _node() -> None:
    require(
        have_node(),
        "node or tests/js/node_modules missing: run `make test-deps` (npm ci in tests/js)",
    )


def assemble(body: bytes, name: str) -> dict[str, Any]:
    """The AI SDK's reading of a recorded body; fails the test if it refuses it."""
    streams = ARTIFACTS / "streams"
    streams.mkdir(parents=True, exist_ok=True)
    (streams / f"{name}.sse").write_bytes(body)
    result = run_assemble(body)
    assert result.returncode == 0, (
        f"the AI SDK refused the {name} stream:\n{result.stdout}{result.stderr}"
    )
    return json.loads(result.stdout)


def run_assemble(body: bytes) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(ASSEMBLE), "-"],
        check=False,
        input=body.decode(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def sse_chunks(body: bytes) -> list[dict[str, Any]]:
    """Our own plain reading of the same body, to compare with the SDK's."""
    chunks = []
    for event in body.decode().split("\n\n"):
        data = [line[len("data: ") :] for line in event.split("\n") if line.startswith("data: ")]
        if data and data[0] != "[DONE]":
            chunks.append(json.loads("\n".join(data)))
    return chunks


def streamed_text(chunks: list[dict[str, Any]]) -> str:
    return "".join(c["delta"] for c in chunks if c["type"] == "text-delta")


def new_session(server: DevServer) -> str:
    return httpx.post(f"{server.api}/sessions").json()["id"]


def post_turn(server: DevServer, session_id: str, message: str) -> bytes:
    with httpx.stream(
        "POST", f"{server.api}/sessions/{session_id}/stream", json={"message": message}, timeout=60
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
        assert response.headers["content-type"].startswith("text/event-stream")
        return response.read()


def parts_of(message: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [p for p in message["parts"] if p["type"] == kind or p["type"].startswith(kind)]


def stored_answer(server: DevServer, session_id: str) -> str:
    session = httpx.get(f"{server.api}/sessions/{session_id}").json()
    return "".join(m.get("content") or "" for m in session["messages"] if m["role"] == "assistant")


def wait_until_done(server: DevServer, task_id: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while httpx.get(f"{server.api}/tasks/{task_id}").json()["status"] == "running":
        assert time.monotonic() < deadline, f"task {task_id} did not finish"
        time.sleep(0.2)


def read_task(server: DevServer, task_id: str) -> bytes:
    """The whole stream of a task, from 0-0."""
    url = f"{server.api}/tasks/{task_id}/stream"
    with httpx.stream("GET", url, params={"last_message_id": "0-0"}, timeout=30) as response:
        assert response.status_code == 200
        return response.read()


def test_pinned_ai_is_a_strict_version() -> None:
    version = json.loads((REPO / "tests/js/node_modules/ai/package.json").read_text())["version"]
    major, minor, patch = map(int, version.split("-")[0].split("."))
    strict = (major, minor) == (5, 0) and patch <= 216 or (major, minor) == (6, 0) and patch <= 230
    assert strict, f"ai {version} has loose chunk schemas; pin one of {STRICT_VERSIONS}"


def test_plain_turn(dev_server: DevServer) -> None:
    session_id = new_session(dev_server)
    body = post_turn(dev_server, session_id, "Hello there! How does streaming work?")
    result = assemble(body, "plain-turn")
    message, chunks = result["message"], sse_chunks(body)

    assert result["chunks"] == chunks, "the SDK read other chunks than the ones we sent"
    assert result["errors"] == []
    assert message["role"] == "assistant"
    assert message["id"] == chunks[0]["messageId"]
    [text] = parts_of(message, "text")
    assert text["state"] == "done"
    assert text["text"] == streamed_text(chunks) == stored_answer(dev_server, session_id)
    assert text["text"].startswith("Hello, nice to meet you!")
    assert parts_of(message, "data-usage")[0]["data"]["totalTokens"] > 0
    assert chunks[-1] == {"type": "finish"}
    assert body.rstrip().endswith(b"data: [DONE]")


def test_tool_turn(dev_server: DevServer) -> None:
    session_id = new_session(dev_server)
    body = post_turn(dev_server, session_id, "Find an agent for 'newsletters'")
    message = assemble(body, "tool-turn")["message"]

    [tool] = parts_of(message, "tool-find_agent")
    assert tool["state"] == "output-available"
    assert tool["input"] == {"query": "newsletters"}
    assert tool["output"]["agents"], tool["output"]
    assert tool["toolCallId"].startswith("call")
    [text] = parts_of(message, "text")
    assert "newsletters" in text["text"]
    assert text["text"] == stored_answer(dev_server, session_id)
    # The tool ran in the first step, the answer came in the second.
    kinds = [p["type"] for p in message["parts"]]
    assert kinds.index("tool-find_agent") < kinds.index("text")
    assert kinds.count("step-start") == 2


def test_failed_turn(dev_server: DevServer) -> None:
    session_id = new_session(dev_server)
    dev_server.script(
        {
            "kind": "http_error",
            "status": 400,
            "message": "This model does not exist.",
            "stream": True,
        }
    )
    body = post_turn(dev_server, session_id, "Hello there")
    result = assemble(body, "failed-turn")

    assert len(result["errors"]) == 1
    assert "This model does not exist." in result["errors"][0], result["errors"]
    error = next(c for c in result["chunks"] if c["type"] == "error")
    assert set(error) == {"type", "errorText"}
    assert result["chunks"][-1] == {"type": "finish"}
    assert parts_of(result["message"], "text") == []
    status = httpx.get(f"{dev_server.api}/sessions/{session_id}").json()
    assert status["active_stream"] is None


def test_resumed_turn_rebuilds_the_same_message(dev_server: DevServer) -> None:
    """The AI SDK's resume (GET /api/chat/{id}/stream, no cursor) mid-answer replays the
    turn from its start: the SDK assembles the same message as the original reader."""
    session_id = new_session(dev_server)
    dev_server.script({"kind": "reply", "delay_ms": 60, "stream": True})
    original: dict[str, bytes] = {}
    seen_text = threading.Event()

    def read_original() -> None:
        with httpx.stream(
            "POST",
            f"{dev_server.api}/sessions/{session_id}/stream",
            json={"message": "Tell me about resumable streams"},
            timeout=60,
        ) as response:
            received = b""
            for part in response.iter_bytes():
                received += part
                if received.count(b'"text-delta"') >= 3:
                    seen_text.set()
            original["body"] = received

    reader = threading.Thread(target=read_original)
    reader.start()
    assert seen_text.wait(30), "the turn never started streaming text"
    with httpx.stream("GET", f"{dev_server.api}/{session_id}/stream", timeout=60) as response:
        assert response.status_code == 200
        resumed_body = response.read()
    reader.join(60)

    first = assemble(original["body"], "resumed-turn-original")["message"]
    resumed = assemble(resumed_body, "resumed-turn-resumed")["message"]
    assert resumed == first
    assert parts_of(resumed, "text")[0]["text"] == stored_answer(dev_server, session_id)
    # Once the turn is over, the resume path answers 204: "no active stream".
    assert httpx.get(f"{dev_server.api}/{session_id}/stream").status_code == 204


def test_operation_finished_by_webhook(dev_server: DevServer) -> None:
    """create_agent: the turn says the operation started (its tool pending); the operation's own task, read
    after the fake generator's signed webhook, holds the tool's input, its result and the
    model's continuation, and is a whole message on its own."""
    session_id = new_session(dev_server)
    turn = assemble(
        post_turn(dev_server, session_id, "Create an agent that summarizes my newsletters"),
        "operation-turn",
    )
    [tool] = parts_of(turn["message"], "tool-create_agent")
    assert tool["state"] == "input-available"  # pending: the result comes in the operation's task
    [started] = parts_of(turn["message"], "data-operation-started")
    assert started["data"]["toolCallId"] == tool["toolCallId"]
    operation_task = started["data"]["taskId"]

    deadline = time.monotonic() + 30
    while httpx.get(f"{dev_server.api}/tasks/{operation_task}").json()["status"] == "running":
        assert time.monotonic() < deadline, "the operation did not finish after its webhook"
        time.sleep(0.2)
    with httpx.stream(
        "GET", f"{dev_server.api}/tasks/{operation_task}/stream", params={"last_message_id": "0-0"}
    ) as r:
        assert r.status_code == 200
        body = r.read()
    message = assemble(body, "operation-task")["message"]
    [result] = parts_of(message, "tool-create_agent")
    assert result["toolCallId"] == tool["toolCallId"]
    # The operation's stream repeats the input exactly, so both views of the call agree.
    assert result["input"] == tool["input"]
    assert result["state"] == "output-available"
    # Built; an anonymous user has no library to save it to.
    assert result["output"]["type"] == "agent_generated"
    [text] = parts_of(message, "text")
    assert "is ready" in text["text"]

    # A generator that reports failure: the card gets a tool-output-error, the model explains.
    failing = new_session(dev_server)
    turn = assemble(
        post_turn(dev_server, failing, "Create an agent that [fail] at everything"),
        "failing-operation-turn",
    )
    operation_task = parts_of(turn["message"], "data-operation-started")[0]["data"]["taskId"]
    wait_until_done(dev_server, operation_task)
    message = assemble(read_task(dev_server, operation_task), "failing-operation-task")["message"]
    [failed] = parts_of(message, "tool-create_agent")
    assert failed["state"] == "output-error"
    assert "simulated failure" in failed["errorText"]
    assert "did not work" in parts_of(message, "text")[0]["text"]


def test_the_pinned_client_refuses_an_extra_key(tmp_path: Path) -> None:
    """Why the tests above mean something: this client rejects a chunk with one key too many."""
    good = b'data: {"type":"start","messageId":"m1"}\n\ndata: {"type":"text-start","id":"t1"}\n\n'
    assert run_assemble(good).returncode == 0
    extra = good + b'data: {"type":"text-delta","id":"t1","delta":"Hi","seq":1}\n\n'
    refused = run_assemble(extra)
    assert refused.returncode == 1
    assert "seq" in json.loads(refused.stdout)["reason"]
    orphan = b'data: {"type":"start"}\n\ndata: {"type":"text-delta","id":"t9","delta":"Hi"}\n\n'
    assert run_assemble(orphan).returncode == 1
