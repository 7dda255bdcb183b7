"""Fixtures of the deployment tests: the template, the handlers, the sample events, and a
Lambda-like world to run them in (real Redis, DynamoDB and Lambda from moto).

    def test_x(aws, lambda_loop, deploy_env, context):
        deploy_env("SessionsFunction")          # the template's environment for that function
        response = load_handler("sessions").handler(sample_event("sessions"), context("sessions"))

Each handler module is loaded from its file (functions/ is not a package). A handler runs
on `chat_core.aws`'s event loop, as in Lambda; every test gets a fresh one.
"""

from __future__ import annotations

import asyncio
import copy
import importlib.util
import io
import json
import logging
import os
import re
import threading
import uuid
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from chat_core import aws as lambda_runtime
from chat_core import background, redis_client
from chat_core.observability import configure_lambda_logging, logger
from chat_core.sessions.dynamodb_table import create_table
from chat_core.settings import get_settings
from chat_core.worker.dispatch import InProcessDispatcher, set_dispatcher
from chat_core.worker.runner import run_job
from moto import mock_aws
from moto.dynamodb.responses import DynamoHandler
from samtranslator.yaml_helper import yaml_parse

from tests.fakes import FakeIssuer

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
FUNCTIONS = ROOT / "functions"
EVENTS = ROOT / "events"

# folder under functions/ → logical id in template.yaml
FUNCTION_IDS = {
    "stream_start": "StreamStartFunction",
    "task_reconnect": "TaskReconnectFunction",
    "sessions": "SessionsFunction",
    "webhook": "WebhookFunction",
    "worker": "WorkerFunction",
    "sweeper": "SweeperFunction",
}
HTTP_FUNCTIONS = ("stream_start", "task_reconnect", "sessions", "webhook")
# Uvicorn behind the Lambda Web Adapter (ReadMode=stream), or Mangum (ReadMode=buffered).
STREAMING_FUNCTIONS = ("stream_start", "task_reconnect")
# What the template's conditions are in the default deployment (parameter defaults, plus
# an issuer, which every test that verifies tokens has).
DEFAULT_CONDITIONS = {
    "Streaming": True,
    "CreateCache": False,
    "UseSecretsManager": False,
    "HasPublicBaseUrl": False,
    "HasAlarmTopic": False,
    "HasIssuer": True,
    "HasJwksUrl": False,
    "SetApiGatewayLogRole": True,
    "Tracing": False,
}

TABLE = "chat-sessions-deploy-test"
WORKER = "chat-test-worker"
WEBHOOK_SECRET = "whsec_dGhpcyBpcyBvbmx5IGEgdGVzdCBzZWNyZXQ="
PUBLIC_BASE_URL = "https://chat.example.com"


@cache
def template() -> dict[str, Any]:
    return yaml_parse(TEMPLATE.read_text())


def sample_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / f"{name}.json").read_text())


@cache
def load_handler(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"lambda_function_{name}", FUNCTIONS / name / "app.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def function_environment(logical_id: str) -> dict[str, Any]:
    """What the function's environment holds once deployed: Globals, then its own."""
    tpl = template()
    shared = tpl["Globals"]["Function"]["Environment"]["Variables"]
    own = tpl["Resources"][logical_id]["Properties"].get("Environment", {}).get("Variables", {})
    return {**shared, **own}


# --- REST API events ------------------------------------------------------------------------
def http_event(
    base: dict[str, Any],
    *,
    route: str | None = None,
    path_parameters: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str | None] | None = None,
    token: str | None = None,
    method: str | None = None,
) -> dict[str, Any]:
    """A variant of a sample REST API (payload 1.0) event, consistent the way API Gateway
    would make it: the resource's placeholders filled from `path_parameters`; `token` sent
    as `Authorization: Bearer` (the functions verify it themselves)."""
    event = copy.deepcopy(base)
    context = event["requestContext"]
    if method:
        event["httpMethod"] = context["httpMethod"] = method
    resource = route or event["resource"]
    params = path_parameters if path_parameters is not None else event.get("pathParameters") or {}
    path = resource
    for name, value in params.items():
        path = path.replace(f"{{{name}}}", value)
    event["resource"] = context["resourcePath"] = resource
    event["path"] = path
    context["path"] = f"/{context['stage']}{path}"
    event["pathParameters"] = dict(params) or None
    if query is not None:
        event["queryStringParameters"] = dict(query) or None
        event["multiValueQueryStringParameters"] = {k: [v] for k, v in query.items()} or None
    changes = dict(headers or {})
    if token is not None:
        changes["Authorization"] = f"Bearer {token}"
    for name, value in changes.items():
        for existing in [k for k in event["headers"] if k.lower() == name.lower()]:
            del event["headers"][existing]
            event["multiValueHeaders"].pop(existing, None)
        if value is not None:
            event["headers"][name] = value
            event["multiValueHeaders"][name] = [value]
    return event


@dataclass
class SseBody:
    """A buffered SSE body as a client parses it."""

    events: list[tuple[str | None, str]]  # (id, data); comments (heartbeats) are dropped

    @classmethod
    def parse(cls, body: str) -> SseBody:
        events: list[tuple[str | None, str]] = []
        for block in body.replace("\r\n", "\n").split("\n\n"):
            entry_id, data = None, []
            for line in block.split("\n"):
                if line.startswith("id:"):
                    entry_id = line[3:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
            if data:
                events.append((entry_id, "\n".join(data)))
        return cls(events)

    @property
    def chunks(self) -> list[dict[str, Any]]:
        return [json.loads(data) for _, data in self.events if data != "[DONE]"]

    @property
    def types(self) -> list[str]:
        return [chunk["type"] for chunk in self.chunks]

    @property
    def done(self) -> bool:
        return any(data == "[DONE]" for _, data in self.events)

    @property
    def ids(self) -> list[str]:
        return [entry_id for entry_id, data in self.events if data != "[DONE]" and entry_id]

    @property
    def text(self) -> str:
        return "".join(c["delta"] for c in self.chunks if c["type"] == "text-delta")


def adapter_request(event: dict[str, Any], **headers: str) -> dict[str, Any]:
    """A REST API event as the Lambda Web Adapter forwards it to the app (httpx arguments):
    plain HTTP, the request context in `x-amzn-request-context`."""
    skip = ("host", "content-length", "accept-encoding")
    forwarded = {k: v for k, v in event["headers"].items() if k.lower() not in skip}
    forwarded["x-amzn-request-context"] = json.dumps(event["requestContext"])
    query = "&".join(f"{k}={v}" for k, v in (event.get("queryStringParameters") or {}).items())
    return {
        "method": event["httpMethod"],
        "url": event["path"] + (f"?{query}" if query else ""),
        "headers": {**forwarded, **headers},
        "content": (event.get("body") or "").encode(),
    }


async def read_until(lines: AsyncIterator[str], body: SseBody, stop: str) -> None:
    """Read SSE lines into `body` until an event whose data contains `stop`."""
    block: list[str] = []
    async for line in lines:
        if line:
            block.append(line)
            continue
        parsed = SseBody.parse("\n".join(block))
        block = []
        body.events += parsed.events
        if any(stop in data for _, data in parsed.events):
            return
    raise AssertionError(f"the stream ended before {stop!r}: {body.types}")


def header(response: dict[str, Any], name: str) -> str | None:
    for key, value in response.get("headers", {}).items():
        if key.lower() == name.lower():
            return value
    return None


# --- Lambda-like runtime --------------------------------------------------------------------
@dataclass
class FakeContext:
    function_name: str
    memory_limit_in_mb: int = 1024
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = "2026/11/21/[$LATEST]0123456789abcdef"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


@pytest.fixture
def context() -> Callable[[str], FakeContext]:
    return lambda name: FakeContext(function_name=f"chat-test-{name}")


@pytest.fixture(autouse=True)
def lambda_logging() -> Iterator[None]:
    """The layer's loggers as a handler module configures them at import (Powertools JSON),
    and as a library leaves them again afterwards, for the tests that run next."""
    layer = logging.getLogger("chat_core")
    handlers, propagate, level = layer.handlers[:], layer.propagate, layer.level
    configure_lambda_logging()
    yield
    layer.handlers, layer.propagate = handlers, propagate
    layer.setLevel(level)


@pytest.fixture
def powertools_output(
    capsys: pytest.CaptureFixture[str],
) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The JSON lines a function writes to CloudWatch: Powertools log records (its handler
    holds the stdout of import time, so it is pointed here) and EMF metric documents."""
    stream = io.StringIO()
    handler = logger.registered_handler
    previous = handler.setStream(stream)
    capsys.readouterr()

    def lines() -> list[dict[str, Any]]:
        text = stream.getvalue() + capsys.readouterr().out
        return [json.loads(line) for line in text.splitlines() if line.startswith("{")]

    yield lines
    handler.setStream(previous)


@pytest.fixture
def lambda_loop() -> Iterator[asyncio.AbstractEventLoop]:
    """A fresh `chat_core.aws` loop, current (Mangum uses the current loop; `run()` uses
    this one): the previous test's clients died with its loop."""
    lambda_runtime.event_loop().close()
    loop = lambda_runtime.event_loop()
    yield loop
    loop.run_until_complete(_settle())
    loop.close()
    asyncio.set_event_loop(None)


async def _settle() -> None:
    await background.drain(timeout=5)
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)
    await redis_client.close_redis()


@dataclass
class Invocation:
    function_name: str
    invocation_type: str
    payload: bytes
    status: int | None = None


@dataclass
class AwsWorld:
    invocations: list[Invocation]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsWorld]:
    """moto's DynamoDB with the sessions table, and moto's Lambda (the simple backend, which
    answers an async invoke with 202 and runs nothing) with the worker function. Invokes are
    recorded through boto3's own event hooks on the default session, which the dispatcher's
    client is made from."""
    invocations: list[Invocation] = []

    def on_params(params: dict[str, Any], **_: Any) -> None:
        payload = params.get("Payload", b"")
        invocations.append(
            Invocation(
                params["FunctionName"],
                params.get("InvocationType", "RequestResponse"),
                payload.encode() if isinstance(payload, str) else bytes(payload),
            )
        )

    def on_response(parsed: dict[str, Any], **_: Any) -> None:
        invocations[-1].status = parsed.get("StatusCode")

    # DynamoDB applies each request atomically; moto does not when called from several
    # threads (the stores run boto3 in threads), so one request at a time restores it.
    one_at_a_time = threading.Lock()
    call_action = DynamoHandler.call_action

    def atomic_call_action(handler: DynamoHandler) -> Any:
        with one_at_a_time:
            return call_action(handler)

    monkeypatch.setattr(DynamoHandler, "call_action", atomic_call_action)
    with mock_aws(config={"lambda": {"use_docker": False}}):
        session = boto3.Session(region_name="us-east-1")
        session.events.register("provide-client-params.lambda.Invoke", on_params)
        session.events.register("after-call.lambda.Invoke", on_response)
        monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)
        create_table(session.client("dynamodb"), TABLE)
        put_secrets(session.client("ssm"))
        _create_worker(session)
        yield AwsWorld(invocations)


LLM_API_KEY = "test-key"


def put_secrets(ssm: Any) -> None:
    """The one-time secret setup of the README, at the template's default names."""
    parameters = template()["Parameters"]
    for name, value in (("WebhookSecretName", WEBHOOK_SECRET), ("LlmApiKeyName", LLM_API_KEY)):
        ssm.put_parameter(
            Name=parameters[name]["Default"], Value=value, Type="SecureString", Overwrite=True
        )


def _create_worker(session: boto3.Session) -> None:
    role = session.client("iam").create_role(
        RoleName="chat-test-worker-role",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.write(FUNCTIONS / "worker" / "app.py", "app.py")
    session.client("lambda").create_function(
        FunctionName=WORKER,
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": code.getvalue()},
        Timeout=900,
    )


def resolve(value: Any, values: dict[str, str], conditions: dict[str, bool]) -> Any:
    """A template value as deployed: Fn::If by `conditions`, Refs to parameters by `values`
    or their defaults; None for AWS::NoValue; anything else as it is."""
    if isinstance(value, dict) and set(value) == {"Fn::If"}:
        condition, yes, no = value["Fn::If"]
        return resolve(yes if conditions[condition] else no, values, conditions)
    if isinstance(value, dict) and set(value) == {"Ref"}:
        name = value["Ref"]
        if name == "AWS::NoValue":
            return None
        if name in values:
            return values[name]
        parameter = template()["Parameters"].get(name, {})
        if "Default" in parameter:
            return parameter["Default"]
    if isinstance(value, dict) and isinstance(value.get("Fn::Sub"), str):
        text = value["Fn::Sub"]
        for name in re.findall(r"\$\{([\w:.]+)\}", text):
            known = resolve({"Ref": name}, values, conditions)
            if not isinstance(known, (str, int)):
                return value
            text = text.replace(f"${{{name}}}", str(known))
        return text
    return value


def resolved_environment(
    logical_id: str, values: dict[str, str], conditions: dict[str, bool] | None = None
) -> dict[str, str]:
    """The function's environment with `values` standing in for what only a deployment
    knows (variables, parameters and resource references), and parameter defaults where
    they exist."""
    conditions = {**DEFAULT_CONDITIONS, **(conditions or {})}
    resolved: dict[str, str] = {}
    for name, value in function_environment(logical_id).items():
        value = values[name] if name in values else resolve(value, values, conditions)
        if isinstance(value, (dict, list)):
            raise AssertionError(f"{logical_id}: no test stand-in for {name} = {value!r}")
        if value is not None:
            resolved[name] = str(value)
    return resolved


def stand_ins(redis_target: Any, issuer: Any = None) -> dict[str, str]:
    """Values for what only a deployment knows, as of now (the `model` fixture sets the
    scripted model's URL and key). The secrets are read where the template says they are
    kept, as deployed: the `aws` fixture puts them into (moto's) Parameter Store."""
    jwt = (
        {
            "CHAT_JWT_JWKS_URL": issuer.jwks_url,
            "CHAT_JWT_ISSUER": issuer.issuer,
            "CHAT_JWT_AUDIENCE": issuer.audience,
        }
        if issuer
        else {}
    )
    return {
        "POWERTOOLS_SERVICE_NAME": "chat",
        "CHAT_REDIS_URL": redis_target.url,
        "CHAT_REDIS_MODE": redis_target.mode,
        "CHAT_DYNAMODB_TABLE": TABLE,
        "CHAT_WORKER_FUNCTION": WORKER,
        "CHAT_LLM_BASE_URL": os.environ.get("CHAT_LLM_BASE_URL", "http://127.0.0.1:9/v1"),
        "CHAT_PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "CHAT_JWT_ISSUER": "https://issuer.example/",
        **jwt,
    }


@pytest.fixture(scope="session")
def issuer_server() -> Iterator[FakeIssuer]:
    with FakeIssuer() as provider:
        yield provider


@pytest.fixture
def issuer(issuer_server: FakeIssuer) -> FakeIssuer:
    """The identity provider whose keys the functions verify tokens against."""
    return issuer_server


@pytest.fixture
def deploy_env(
    monkeypatch: pytest.MonkeyPatch, redis_target: Any, issuer: FakeIssuer
) -> Callable[..., dict[str, str]]:
    """Apply a function's CHAT_* environment from template.yaml, as deployed, with this
    test's stand-ins (its Redis, the moto table and worker, the scripted model);
    `overrides` (setting names) win. The rest of the environment is read at import."""

    def apply(logical_id: str, **overrides: object) -> dict[str, str]:
        environment = resolved_environment(logical_id, stand_ins(redis_target, issuer))
        applied = {k: v for k, v in environment.items() if k.startswith("CHAT_")}
        applied.update({f"CHAT_{name.upper()}": str(value) for name, value in overrides.items()})
        for name, value in applied.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        # In-process dispatch: this test process hosts the worker, as the dev server does.
        inprocess = applied.get("CHAT_DISPATCH") == "inprocess"
        set_dispatcher(InProcessDispatcher(run_job) if inprocess else None)
        return applied

    return apply
