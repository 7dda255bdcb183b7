"""chat_core.worker.dispatch: an async Lambda invoke (moto) with the job's JSON as its payload,
or an asyncio task of this process; a job that cannot be handed over is a DispatchError,
never a silent loss."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from chat_core import background
from chat_core.worker.dispatch import (
    DispatchError,
    InProcessDispatcher,
    LambdaDispatcher,
    get_dispatcher,
    set_dispatcher,
)
from chat_core.worker.jobs import DrainCompletions, RunTurn, parse_job
from moto import mock_aws

WORKER = "chat-test-worker"


@pytest.fixture(autouse=True)
def fresh_dispatcher() -> Iterator[None]:
    set_dispatcher(None)
    yield
    set_dispatcher(None)


@pytest.fixture
def aws_lambda() -> Iterator[tuple[Any, list[dict[str, Any]]]]:
    """A Lambda client (moto) with the worker function, and every Invoke it is sent."""
    sent: list[dict[str, Any]] = []
    with mock_aws(config={"lambda": {"use_docker": False}}):
        session = boto3.Session(region_name="us-east-1")
        session.events.register(
            "provide-client-params.lambda.Invoke", lambda params, **_: sent.append(dict(params))
        )
        role = session.client("iam").create_role(
            RoleName="worker-role",
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
        )["Role"]["Arn"]
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("app.py", "def handler(event, context):\n    return None\n")
        client = session.client("lambda")
        client.create_function(
            FunctionName=WORKER,
            Runtime="python3.12",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": code.getvalue()},
        )
        yield client, sent


async def test_a_job_is_invoked_asynchronously_with_its_json(aws_lambda) -> None:
    client, sent = aws_lambda
    job = RunTurn(task_id="t1", message_id="msg-1")
    await LambdaDispatcher(WORKER, client=client).dispatch(job)
    [invoke] = sent
    assert invoke["FunctionName"] == WORKER and invoke["InvocationType"] == "Event"
    assert parse_job(invoke["Payload"]) == job


async def test_a_lambda_service_that_cannot_be_reached_is_a_dispatch_error() -> None:
    unreachable = boto3.client(
        "lambda",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:1",  # nothing listens there
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1}, connect_timeout=1),
    )
    with pytest.raises(DispatchError, match=f"could not invoke {WORKER}"):
        await LambdaDispatcher(WORKER, client=unreachable).dispatch(DrainCompletions())


async def test_a_job_over_the_async_payload_limit_is_refused_before_invoking(aws_lambda) -> None:
    client, sent = aws_lambda
    job = RunTurn(task_id="t1", context={"page": "x" * 1_100_000})
    with pytest.raises(DispatchError, match="1 MB async limit"):
        await LambdaDispatcher(WORKER, client=client).dispatch(job)
    assert sent == []


async def test_in_process_a_job_runs_as_a_task_of_this_process() -> None:
    ran: list[object] = []

    async def run(job) -> None:
        ran.append(job)

    await InProcessDispatcher(run).dispatch(RunTurn(task_id="t1"))
    await background.drain()
    assert ran == [RunTurn(task_id="t1")]


async def test_in_process_a_job_takes_its_first_step_before_its_caller_goes_on() -> None:
    steps: list[str] = []

    async def run(job) -> None:
        steps.append("the job's first round trips sent")
        await asyncio.sleep(0.01)
        steps.append("the job went on")

    await InProcessDispatcher(run).dispatch(RunTurn(task_id="t1"))
    steps.append("the caller acknowledges")
    await background.drain()
    assert steps == [
        "the job's first round trips sent",
        "the caller acknowledges",
        "the job went on",
    ]


def test_the_settings_choose_the_dispatcher(settings_env) -> None:
    settings_env(dispatch="lambda", worker_function=WORKER)
    dispatcher = get_dispatcher()
    assert isinstance(dispatcher, LambdaDispatcher) and dispatcher.function_name == WORKER
    assert get_dispatcher() is dispatcher


def test_a_dispatcher_that_cannot_exist_says_why(settings_env) -> None:
    settings_env(dispatch="lambda")
    with pytest.raises(DispatchError, match="CHAT_WORKER_FUNCTION"):
        get_dispatcher()
    settings_env(dispatch="inprocess")
    with pytest.raises(DispatchError, match="runs no worker"):
        get_dispatcher()
