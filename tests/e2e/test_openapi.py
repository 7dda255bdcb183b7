"""The served `/openapi.json` judged by tools nobody here wrote, against the dev server.

    .venv/bin/python -m pytest tests/e2e/test_openapi.py -q

- openapi-python-client generates a client from it; the client's typed calls create, list,
  read and delete sessions, read the conversation as UIMessages, and get the typed errors
  (401, 404, 422, 429) back.
- schemathesis sends a bounded number of generated requests to every operation and checks
  each answer against the spec (status declared, content type, headers, body schema, every
  SSE event against its chunk schema) and that none is a server error.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from .conftest import ARTIFACTS, DevServer, start_dev_server

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
SLOW = {"kind": "reply", "delay_ms": 150, "stream": True}


@pytest.fixture
def generated(dev_server: DevServer, tmp_path: Path) -> Iterator[ModuleType]:
    """`openapi-python-client generate` from the served spec, imported as `chat_client`."""
    (tmp_path / "config.yml").write_text("post_hooks: []\n")  # no formatter run needed
    done = subprocess.run(
        [str(BIN / "openapi-python-client"), "generate", "--url", f"{dev_server.url}/openapi.json",
         "--meta", "none", "--output-path", str(tmp_path / "chat_client"),
         "--config", str(tmp_path / "config.yml")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Warning" not in done.stdout + done.stderr, done.stdout + done.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module("chat_client")
    finally:
        sys.path.remove(str(tmp_path))
        for name in [n for n in sys.modules if n == "chat_client" or n.startswith("chat_client.")]:
            del sys.modules[name]


def test_a_generated_client_works_against_the_dev_server(
    dev_server: DevServer, generated: ModuleType
) -> None:
    from chat_client import AuthenticatedClient, Client
    from chat_client.api.dev import login
    from chat_client.api.sessions import (
        create_session,
        delete_session,
        get_messages,
        get_session,
        list_sessions,
    )
    from chat_client.api.streams import stream_turn
    from chat_client.api.tasks import cancel
    from chat_client.models import (
        CancelResult,
        ErrorResponse,
        LoginRequest,
        SessionCreated,
        SessionDetail,
        SessionList,
        StreamRequest,
        UIMessages,
    )

    anonymous = Client(base_url=dev_server.url, raise_on_unexpected_status=True)
    token = login.sync(client=anonymous, body=LoginRequest(user_id="ada")).token
    ada = AuthenticatedClient(base_url=dev_server.url, token=token, raise_on_unexpected_status=True)

    created = create_session.sync(client=ada)
    assert isinstance(created, SessionCreated) and created.user_id == "ada"
    other = create_session.sync(client=anonymous)
    assert isinstance(other, SessionCreated) and other.user_id is None

    listed = list_sessions.sync(client=ada)
    assert isinstance(listed, SessionList)
    assert listed.total == 1 and [s.id for s in listed.sessions] == [created.id]

    turn = stream_turn.sync_detailed(created.id, client=ada, body=StreamRequest(message="Hello"))
    assert turn.status_code == 200 and turn.content.rstrip().endswith(b"data: [DONE]")
    detail = get_session.sync(created.id, client=ada)
    assert isinstance(detail, SessionDetail) and detail.active_stream is None
    assert [m.role.value for m in detail.messages] == ["user", "assistant"]
    assert detail.messages[0].content == "Hello"
    history = get_messages.sync(created.id, client=ada)  # what useChat({ messages }) takes
    assert isinstance(history, UIMessages)
    assert [m.role.value for m in history.messages] == ["user", "assistant"]
    assert [p.type_ for p in history.messages[0].parts] == ["text"]
    assert history.messages[0].parts[0].additional_properties["text"] == "Hello"
    assert "text" in [p.type_ for p in history.messages[1].parts]

    # Typed errors: each is the ErrorResponse model with its code.
    missing = get_session.sync("no-such-session", client=ada)
    assert isinstance(missing, ErrorResponse) and missing.detail.code == "SESSION_NOT_FOUND"
    invalid = list_sessions.sync_detailed(client=ada, limit=1000)
    assert invalid.status_code == 422 and isinstance(invalid.parsed, ErrorResponse)
    assert (
        invalid.parsed.detail.code == "INVALID_REQUEST" and "limit" in invalid.parsed.detail.message
    )
    signed_out = list_sessions.sync_detailed(client=anonymous)
    assert signed_out.status_code == 401 and signed_out.parsed.detail.code == "UNAUTHENTICATED"
    forged = AuthenticatedClient(base_url=dev_server.url, token="not-a-jwt")
    bad_token = create_session.sync_detailed(client=forged)
    assert bad_token.status_code == 401 and bad_token.parsed.detail.code == "INVALID_TOKEN"

    # 429 while a turn runs: a slow answer is read on another thread meanwhile.
    dev_server.script(SLOW)
    started = threading.Event()
    task_ids: list[str] = []

    def first_turn() -> None:
        with httpx.stream(
            "POST",
            f"{dev_server.api}/sessions/{created.id}/stream",
            headers={"Authorization": f"Bearer {token}"},
            json={"message": "Tell me a long story"},
            timeout=60,
        ) as response:
            task_ids.append(response.headers["x-task-id"])
            started.set()
            response.read()

    reader = threading.Thread(target=first_turn)
    reader.start()
    try:
        assert started.wait(30)
        busy = stream_turn.sync_detailed(created.id, client=ada, body=StreamRequest(message="Hi"))
        assert busy.status_code == 429 and isinstance(busy.parsed, ErrorResponse)
        assert busy.parsed.detail.code == "TURN_IN_PROGRESS"
        stopped = cancel.sync(task_ids[0], client=ada)
        assert isinstance(stopped, CancelResult) and stopped.task_id == task_ids[0]
    finally:
        reader.join(60)

    deleted = delete_session.sync_detailed(created.id, client=ada)
    assert deleted.status_code == 204
    gone = get_session.sync(created.id, client=ada)
    assert isinstance(gone, ErrorResponse) and gone.detail.code == "SESSION_NOT_FOUND"
    assert list_sessions.sync(client=ada).total == 0


CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance"
)


def test_schemathesis_finds_no_server_error_and_no_answer_outside_the_spec(
    redis_target, tmp_path: Path
) -> None:
    server = start_dev_server(
        tmp_path,
        ARTIFACTS / "logs" / "schemathesis-devserver.log",
        {
            "CHAT_REDIS_URL": redis_target.url,
            "CHAT_REDIS_MODE": redis_target.mode,
            # Reads of a running turn and of /events end soon; clients reconnect.
            "CHAT_STREAM_BUDGET_SECONDS": "2",
            "CHAT_DEV_MODEL_DELAY_MS": "1",
        },
    )
    try:
        token = httpx.post(f"{server.url}/dev/login", json={"user_id": "fuzzer"}).json()["token"]
        run = subprocess.run(
            [str(BIN / "schemathesis"), "run", f"{server.url}/openapi.json",
             "--checks", CHECKS,
             "--max-examples", "5", "--seed", "1", "--generation-database", "none",
             "--workers", "1", "--request-timeout", "20", "--no-color",
             # Its deliveries would go to whatever callback URL the fuzzer made up.
             "--exclude-path", "/dev/agent-generator",
             "-H", f"Authorization: Bearer {token}"],
            cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
    finally:
        server.stop()
    output = run.stdout + run.stderr
    (ARTIFACTS / "logs" / "schemathesis.txt").write_text(output)
    assert run.returncode == 0, output[-6000:]
    cases = re.search(r"(\d+) generated, (\d+) passed", output)
    assert cases, output[-3000:]
    generated, passed = map(int, cases.groups())
    assert 100 <= generated <= 800 and passed == generated, output[-3000:]
    assert server.process.returncode == 0, server.log()[-3000:]
    assert "Traceback" not in server.log(), server.log()[-4000:]
