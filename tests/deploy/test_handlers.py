"""Each Lambda handler, run with its sample event from events/, in its template environment,
against real Redis and moto's DynamoDB and Lambda: what a caller would see.

    .venv/bin/python -m pytest tests/deploy/test_handlers.py -q
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from chat_core import keys, registry, tasks
from chat_core.aws import run
from chat_core.completions.consumer import ensure_group
from chat_core.observability import logger
from chat_core.protocol.chunks import (
    TextDelta,
    TextEnd,
    TextStart,
)
from chat_core.redis_client import get_redis
from chat_core.sessions import ChatMessage, get_session_store
from chat_core.sessions.models import OPERATION_PENDING
from chat_core.worker.jobs import ContinueOperation, RunTurn, SessionRef, parse_job
from pydantic import ValidationError

from tests.chunk_rules import assert_valid_turn
from tests.fakes import FakeIssuer

from .conftest import (
    WEBHOOK_SECRET,
    WORKER,
    SseBody,
    header,
    http_event,
    load_handler,
    sample_event,
    template,
)

STREAM_START = sample_event("stream_start")
USER = "8c1d4e2a-3b5f-4f6e-9a7b-1c2d3e4f5a6b"
SESSION = STREAM_START["pathParameters"]["session_id"]
TASK = sample_event("task_reconnect")["pathParameters"]["task_id"]
OPERATION = sample_event("webhook")["pathParameters"]["operation_id"]
AGENT_ARGUMENTS = json.dumps({"description": "files my tax returns"})
ANSWER = "The Tax Return Helper agent can prepare and file your return for you."

T = TypeVar("T")
ISSUER: FakeIssuer


@pytest.fixture(autouse=True)
def _issuer(issuer: FakeIssuer) -> None:
    global ISSUER
    ISSUER = issuer


def signed_in(event: dict[str, Any], user: str = USER, **changes: Any) -> dict[str, Any]:
    """The event as that user sends it: with a Bearer token from the identity provider."""
    return http_event(event, token=ISSUER.token(user), **changes)


pytestmark = [
    pytest.mark.usefixtures("aws", "lambda_loop"),
    # Powertools says so on every invocation that added no metric of its own.
    pytest.mark.filterwarnings("ignore:No application metrics to publish:UserWarning"),
]


def on_loop(call: Callable[[], Awaitable[T]]) -> T:
    """Run `call()` on the handlers' loop: the clients it uses belong to that loop."""

    async def inside() -> T:
        return await call()

    return run(inside())


def create_session(*messages: ChatMessage) -> None:
    async def create() -> None:
        store = get_session_store()
        await store.create(USER, session_id=SESSION)
        if messages:
            await store.append_messages(SESSION, list(messages))

    run(create())


def reconnect_event(task_id: str, cursor: str | None = None) -> dict[str, Any]:
    """How a client resumes: the task's stream, after the last id it saw (Last-Event-ID)."""
    return signed_in(
        sample_event("task_reconnect"),
        path_parameters={"task_id": task_id},
        query={},
        headers={"last-event-id": cursor},
    )


def assert_sse(response: dict[str, Any]) -> SseBody:
    assert response["statusCode"] == 200, response
    assert header(response, "content-type").startswith("text/event-stream")
    assert header(response, "x-vercel-ai-ui-message-stream") == "v1"
    assert header(response, "cache-control") == "no-cache"
    return SseBody.parse(response["body"])


def read_to_the_end(task_id: str, cursor: str, context: Any, limit: int = 40) -> SseBody:
    """Reconnect after every window, as EventSource does, until `[DONE]`; then once more,
    which must answer 204 (that is what stops EventSource). Returns everything read."""
    handler = load_handler("task_reconnect").handler
    seen = SseBody([])
    for _ in range(limit):
        body = assert_sse(handler(reconnect_event(task_id, cursor), context("task_reconnect")))
        seen.events += body.events
        cursor = seen.ids[-1] if seen.ids else cursor
        if body.done:
            after = handler(reconnect_event(task_id, cursor), context("task_reconnect"))
            assert after["statusCode"] == 204, after
            return seen
    raise AssertionError(f"no [DONE] after {limit} windows: {seen.types}")


def assert_whole_turn(body: SseBody, text: str) -> None:
    assert_valid_turn(body.chunks)  # what an AI SDK client accepts
    assert "error" not in body.types
    assert body.text == text
    assert [data for _, data in body.events].count("[DONE]") == 1
    assert body.events[-1][1] == "[DONE]"
    ids = [tuple(map(int, i.split("-"))) for i in body.ids]
    assert ids == sorted(set(ids)), "each entry exactly once, in order"


# --- stream start -----------------------------------------------------------------------------
@pytest.mark.slow
def test_stream_start_answers_a_first_window_and_reconnects_read_the_rest(
    model, deploy_env, context
) -> None:
    # In-process dispatch: the turn runs in the loop the handlers drive, so this test can
    # follow one turn through buffered windows without a worker function. The Lambda
    # dispatcher has its own test below.
    deploy_env("StreamStartFunction", dispatch="inprocess", read_mode="buffered")
    model.reply_text(ANSWER, delay_ms=120, stream=True)
    create_session()

    response = load_handler("stream_start").handler(
        signed_in(STREAM_START), context("stream_start")
    )

    first = assert_sse(response)
    task_id = header(response, "x-task-id")
    assert task_id
    # Buffered long-poll: the window answers soon after the first entries instead of
    # holding the request (25 s in the template, longer than the whole answer takes) or
    # waiting for the whole answer: it ends before `finish`.
    assert first.types[0] == "start"
    assert "finish" not in first.types and not first.done

    deploy_env("TaskReconnectFunction", dispatch="inprocess", read_mode="buffered")
    rest = read_to_the_end(task_id, first.ids[-1], context)
    assert_whole_turn(SseBody(first.events + rest.events), ANSWER)


@pytest.mark.both  # ElastiCache Serverless is a Redis 7 cluster: run there too
@pytest.mark.redis7
def test_stream_start_dispatches_the_worker_function_and_the_turn_completes_there(
    aws, model, deploy_env, context
) -> None:
    # What AWS does: stream start invokes the worker asynchronously and reads; the worker
    # runs the turn in its own invocation; the client reconnects to read the rest.
    # ReadMode=buffered: Mangum's first window (the streaming mode has its own tests).
    deploy_env("StreamStartFunction", long_poll_seconds=1, read_mode="buffered")
    model.reply_text(ANSWER, stream=True)
    create_session()

    response = load_handler("stream_start").handler(
        signed_in(STREAM_START), context("stream_start")
    )
    first = assert_sse(response)
    task_id = header(response, "x-task-id")
    assert "finish" not in first.types  # nothing has run the turn yet

    [invocation] = aws.invocations
    assert (invocation.function_name, invocation.invocation_type, invocation.status) == (
        WORKER,
        "Event",
        202,
    )
    job = parse_job(invocation.payload)
    assert isinstance(job, RunTurn) and job.message_id  # the assistant message's id
    assert job == RunTurn(
        task_id=task_id,
        context={"url": "https://chat.example.com/agents"},
        message_id=job.message_id,
        session=SessionRef(session_id=SESSION, user_id=USER),  # read beside the claim
    )
    # The sample worker event is exactly what the dispatcher sends, for its task.
    assert json.loads(invocation.payload) == {
        **sample_event("worker"),
        "task_id": task_id,
        "message_id": job.message_id,
    }

    deploy_env("WorkerFunction")
    outcome = load_handler("worker").handler(json.loads(invocation.payload), context("worker"))
    assert outcome == {"job": "run_turn", "outcome": "completed"}

    deploy_env("TaskReconnectFunction", read_mode="buffered")
    replay = assert_sse(
        load_handler("task_reconnect").handler(
            reconnect_event(task_id, "0-0"), context("task_reconnect")
        )
    )
    assert_whole_turn(replay, ANSWER)


# --- task reconnect ---------------------------------------------------------------------------
def test_task_reconnect_replays_a_task_from_the_sample_cursor(deploy_env, context) -> None:
    deploy_env("TaskReconnectFunction", read_mode="buffered")
    create_session()

    async def finished_task() -> None:
        task = await tasks.create_turn(SESSION, USER, task_id=TASK)  # opens with `start`
        await registry.publish_chunks(
            TASK,
            [
                TextStart(id="t1"),
                TextDelta(id="t1", delta="Hello "),
                TextDelta(id="t1", delta="again."),
                TextEnd(id="t1"),
            ],
        )
        await tasks.finish(task, "completed")

    run(finished_task())
    handler = load_handler("task_reconnect").handler

    body = assert_sse(handler(signed_in(sample_event("task_reconnect")), context("task_reconnect")))
    assert body.types == ["start", "text-start", "text-delta", "text-delta", "text-end", "finish"]
    assert body.text == "Hello again."
    assert body.events[-1][1] == "[DONE]"
    assert len(set(body.ids)) == 6
    assert logger.get_correlation_id() == TASK

    # At the end of a finished task: 204, which tells EventSource to stop reconnecting.
    assert (
        handler(reconnect_event(TASK, body.ids[-1]), context("task_reconnect"))["statusCode"] == 204
    )
    # Someone else's task does not exist for them.
    stranger = handler(
        signed_in(sample_event("task_reconnect"), "someone-else"), context("task_reconnect")
    )
    assert stranger["statusCode"] == 404
    assert json.loads(stranger["body"])["detail"]["code"] == "TASK_NOT_FOUND"


# --- sessions ---------------------------------------------------------------------------------
def test_sessions_sample_creates_an_anonymous_session(deploy_env, context) -> None:
    deploy_env("SessionsFunction")
    response = load_handler("sessions").handler(sample_event("sessions"), context("sessions"))
    assert response["statusCode"] == 200, response
    created = json.loads(response["body"])
    assert created["user_id"] is None
    saved = on_loop(lambda: get_session_store().get(created["id"], None))
    assert saved is not None and saved.user_id is None


def session_event(user: str | None) -> dict[str, Any]:
    event = http_event(
        sample_event("sessions"),
        method="GET",
        route="/api/chat/sessions/{session_id}",
        path_parameters={"session_id": SESSION},
    )
    return signed_in(event, user) if user else event


def test_sessions_returns_the_callers_session(deploy_env, context) -> None:
    deploy_env("SessionsFunction")
    create_session(
        ChatMessage(role="user", content="Hi"),
        ChatMessage(role="assistant", content="Hello! How can I help?"),
    )
    handler = load_handler("sessions").handler

    response = handler(session_event(USER), context("sessions"))
    assert response["statusCode"] == 200, response
    session = json.loads(response["body"])
    assert (session["id"], session["user_id"], session["active_stream"]) == (SESSION, USER, None)
    assert [(m["role"], m["content"]) for m in session["messages"]] == [
        ("user", "Hi"),
        ("assistant", "Hello! How can I help?"),
    ]

    for other in ("someone-else", None):
        stranger = handler(session_event(other), context("sessions"))
        assert stranger["statusCode"] == 404
        assert json.loads(stranger["body"])["detail"]["code"] == "SESSION_NOT_FOUND"


def test_sessions_function_answers_health_without_a_token(deploy_env, context) -> None:
    deploy_env("SessionsFunction")
    event = http_event(
        sample_event("sessions"), method="GET", route="/api/chat/health", path_parameters={}
    )
    response = load_handler("sessions").handler(event, context("sessions"))
    assert response["statusCode"] == 200, response
    assert json.loads(response["body"]) == {"status": "healthy", "redis": "ok"}


# --- identity (no gateway authorizer: the functions verify the provider's tokens) --------------
def create_as(token: str | None, context: Any) -> dict[str, Any]:
    event = sample_event("sessions")
    response = load_handler("sessions").handler(
        http_event(event, token=token) if token else event, context("sessions")
    )
    return {"status": response["statusCode"], **json.loads(response["body"] or "{}")}


def test_tokens_are_verified_against_the_issuers_keys(deploy_env, context, issuer) -> None:
    deploy_env("SessionsFunction")
    other = FakeIssuer(issuer="https://elsewhere.example/")  # never started: only signs

    assert create_as(None, context)["user_id"] is None  # no token: anonymous
    assert create_as(issuer.token("ada"), context)["user_id"] == "ada"
    expired = create_as(issuer.token("ada", exp=int(time.time()) - 60), context)
    assert (expired["status"], expired["detail"]["code"]) == (401, "TOKEN_EXPIRED")
    wrong_issuer = create_as(issuer.token("ada", iss=other.issuer), context)
    assert (wrong_issuer["status"], wrong_issuer["detail"]["code"]) == (401, "INVALID_TOKEN")
    forged = create_as(issuer.token("ada", key=other.private_key), context)
    assert (forged["status"], forged["detail"]["code"]) == (401, "INVALID_TOKEN")
    # The audience is configured here, so a token without one is refused.
    no_aud = create_as(issuer.token("ada", aud=None), context)
    assert (no_aud["status"], no_aud["detail"]["code"]) == (401, "INVALID_TOKEN")


def test_a_cognito_access_token_without_aud_passes_on_its_claims(
    deploy_env, context, issuer
) -> None:
    """Cognito access tokens carry no `aud`; the deployment checks `client_id` instead."""
    deploy_env(
        "SessionsFunction", jwt_audience="", jwt_required_claims="token_use=access,client_id=app-1"
    )

    def access_token(**claims: Any) -> str:
        return issuer.token("ada", aud=None, token_use="access", **claims)

    assert create_as(access_token(client_id="app-1"), context)["user_id"] == "ada"
    wrong_client = create_as(access_token(client_id="app-2"), context)
    assert (wrong_client["status"], wrong_client["detail"]["code"]) == (401, "INVALID_TOKEN")
    id_token = create_as(issuer.token("ada", aud=None, token_use="id", client_id="app-1"), context)
    assert id_token["status"] == 401


def test_a_verified_token_and_the_keys_are_cached(deploy_env, context, issuer) -> None:
    deploy_env("SessionsFunction", jwt_jwks_url=issuer.jwks_url + "?cached")  # a fresh key cache
    token = issuer.token("grace")
    before = issuer.fetches
    assert create_as(token, context)["user_id"] == "grace"
    assert create_as(issuer.token("alan"), context)["user_id"] == "alan"
    assert create_as(token, context)["user_id"] == "grace"
    assert issuer.fetches - before == 1


# --- webhook ----------------------------------------------------------------------------------
def signed(event: dict[str, Any]) -> dict[str, Any]:
    """The sample re-signed now with the deployment's secret (Standard Webhooks), as its
    sender would sign it."""
    body = event["body"]
    webhook_id, timestamp = event["headers"]["webhook-id"], str(int(time.time()))
    key = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_"))
    signature = base64.b64encode(
        hmac.new(key, f"{webhook_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    )
    return http_event(
        event,
        headers={"webhook-timestamp": timestamp, "webhook-signature": f"v1,{signature.decode()}"},
    )


def create_operation() -> registry.TaskRecord:
    """A delegated operation waiting for its webhook, as `chat.operations.start` leaves a
    create_agent call: its own task, opening with the tool's input, awaiting."""

    async def create() -> registry.TaskRecord:
        task = await tasks.create_operation(
            session_id=SESSION,
            user_id=USER,
            tool_call_id="call_agent",
            tool_name="create_agent",
            tool_input=json.loads(AGENT_ARGUMENTS),
        )
        await tasks.await_operation(task)
        return task

    return run(create())


def webhook_event(operation: registry.TaskRecord) -> dict[str, Any]:
    """The sample webhook event, for this operation (its id is in the path and the body)."""
    return json.loads(
        json.dumps(sample_event("webhook")).replace(OPERATION, operation.operation_id)
    )


def test_webhook_accepts_a_signed_completion_and_dispatches_the_continuation(
    aws, deploy_env, context
) -> None:
    deploy_env("WebhookFunction")
    operation = create_operation()
    handler = load_handler("webhook").handler

    response = handler(signed(webhook_event(operation)), context("webhook"))
    assert response["statusCode"] == 202, response
    assert json.loads(response["body"]) == {
        "status": "accepted",
        "operation_id": operation.operation_id,
        "task_id": operation.task_id,
    }
    # Applied in the request: the continuation goes straight to a worker, and the entry
    # queued as the safety net is acknowledged.
    [follow_up] = aws.invocations
    assert (follow_up.function_name, follow_up.invocation_type) == (WORKER, "Event")
    assert parse_job(follow_up.payload) == ContinueOperation(
        task_id=operation.task_id, session=SessionRef(session_id=SESSION, user_id=USER)
    )
    pending = on_loop(lambda: get_redis().xpending(keys.COMPLETIONS, keys.COMPLETIONS_GROUP))
    assert pending["pending"] == 0

    # A redelivery of the same webhook-id: the same answer, nothing queued or woken again.
    again = handler(signed(webhook_event(operation)), context("webhook"))
    assert (again["statusCode"], again["body"]) == (202, response["body"])
    assert len(aws.invocations) == 1
    assert on_loop(lambda: get_redis().xlen(keys.COMPLETIONS)) == 1

    # The sample as stored: signed with another secret, long ago.
    assert handler(webhook_event(operation), context("webhook"))["statusCode"] == 401
    tampered = signed(webhook_event(operation))
    tampered["body"] = tampered["body"].replace("Tax return helper", "Something else")
    assert handler(tampered, context("webhook"))["statusCode"] == 401


@pytest.mark.both  # ElastiCache Serverless is a Redis 7 cluster: run there too
@pytest.mark.redis7
@pytest.mark.slow
def test_webhook_completion_reaches_the_conversation_through_the_worker(
    aws, model, deploy_env, context
) -> None:
    deploy_env("WebhookFunction")
    create_session(
        ChatMessage(role="user", content="Build me an agent that files my tax returns"),
        ChatMessage(
            role="assistant",
            tool_calls=[
                {
                    "id": "call_agent",
                    "type": "function",
                    "function": {"name": "create_agent", "arguments": AGENT_ARGUMENTS},
                }
            ],
        ),
        ChatMessage(  # as the turn leaves it while the operation runs
            role="tool", tool_call_id="call_agent", content=json.dumps({"type": OPERATION_PENDING})
        ),
    )
    operation = create_operation()
    accepted = load_handler("webhook").handler(signed(webhook_event(operation)), context("webhook"))
    assert accepted["statusCode"] == 202

    deploy_env("WorkerFunction")
    model.reply_text("Your Tax return helper agent is ready.", stream=True)
    # The webhook applied the result and dispatched the continuation as a job of its own.
    [follow_up] = aws.invocations
    outcome = load_handler("worker").handler(json.loads(follow_up.payload), context("worker"))
    assert outcome == {"job": "continue_operation", "outcome": "completed"}

    deploy_env("TaskReconnectFunction", read_mode="buffered")
    body = assert_sse(
        load_handler("task_reconnect").handler(
            reconnect_event(operation.task_id, "0-0"), context("task_reconnect")
        )
    )
    result = json.loads(sample_event("webhook")["body"])["result"]
    outputs = [c for c in body.chunks if c["type"] == "tool-output-available"]
    assert outputs == [
        {"type": "tool-output-available", "toolCallId": "call_agent", "output": result}
    ]
    assert body.text == "Your Tax return helper agent is ready."
    assert body.done
    assert_valid_turn(body.chunks)
    assert run(registry.get_task(operation.task_id)).status == "completed"

    # The model continued from the result, which replaced the pending tool message.
    tool_message = next(m for m in model.streamed_requests[-1].messages if m["role"] == "tool")
    assert json.loads(tool_message["content"]) == result


# --- worker -----------------------------------------------------------------------------------
def test_worker_runs_the_sample_job_to_a_completed_task(model, deploy_env, context) -> None:
    deploy_env("WorkerFunction")
    model.reply_text(ANSWER, stream=True)
    create_session(ChatMessage(role="user", content="Which agent files tax returns?", task_id=TASK))
    run(tasks.create_turn(SESSION, USER, task_id=TASK))

    outcome = load_handler("worker").handler(sample_event("worker"), context("worker"))

    assert outcome == {"job": "run_turn", "outcome": "completed"}
    assert logger.get_correlation_id() == TASK
    task = run(registry.get_task(TASK))
    assert task.status == "completed"
    saved = on_loop(lambda: get_session_store().get(SESSION, USER))
    assert [(m.role, m.content) for m in saved.messages][-1] == ("assistant", ANSWER)
    # The page context of the request reached the model.
    assert "https://chat.example.com/agents" in json.dumps(model.streamed_requests[-1].messages)


def test_worker_fails_loudly_on_a_payload_that_is_not_a_job(deploy_env, context) -> None:
    # Raising makes the invocation fail, so the event lands in the failure queue.
    deploy_env("WorkerFunction")
    with pytest.raises(ValidationError):
        load_handler("worker").handler({"kind": "reticulate_splines"}, context("worker"))


# --- sweeper ----------------------------------------------------------------------------------
def leave_stuck_state() -> None:
    """A turn nobody picked up (its 1 s lease runs out), and a completion that a
    crashed worker read and never acknowledged, out of deliveries."""

    create_session()

    async def leave() -> None:
        await tasks.create_turn(SESSION, USER, task_id=TASK)  # leased for 1 s: see the callers
        await ensure_group()
        client = get_redis()
        await client.xadd(keys.COMPLETIONS, {"data": "{not json"})
        await client.xreadgroup(
            keys.COMPLETIONS_GROUP, "worker-crashed", {keys.COMPLETIONS: ">"}, count=1
        )

    run(leave())
    time.sleep(1.1)


def dead_letter_metric(lines: list[dict[str, Any]]) -> tuple[dict[str, Any], float]:
    [emf] = [line for line in lines if "_aws" in line and "DeadLetters" in line]
    values = emf["DeadLetters"]
    return emf, sum(values) if isinstance(values, list) else values


@pytest.mark.both  # ElastiCache Serverless is a Redis 7 cluster: run there too
@pytest.mark.redis7
@pytest.mark.slow
def test_sweeper_fails_abandoned_tasks_dead_letters_poison_completions_and_reports(
    deploy_env, context, powertools_output
) -> None:
    deploy_env(
        "SweeperFunction",
        completions_max_deliveries=1,
        completions_claim_idle_ms=0,
        worker_lease_seconds=1,
    )
    leave_stuck_state()

    report = load_handler("sweeper").handler(sample_event("sweeper"), context("sweeper"))

    assert json.loads(json.dumps(report)) == report  # Lambda can return it
    assert (report["failed_tasks"], report["claimed"], report["dead_lettered"]) == (1, 1, 1)
    lines = powertools_output()
    [log] = [line for line in lines if line.get("message") == "sweep finished"]
    assert (log["failed_tasks"], log["dead_lettered"]) == (1, 1)
    assert log["correlation_id"] == sample_event("sweeper")["id"]

    # The DeadLetters alarm watches the metric this run emitted, and it breaches.
    emf, dead_letters = dead_letter_metric(lines)
    alarm = template()["Resources"]["DeadLettersAlarm"]["Properties"]
    assert alarm["MetricName"] == "DeadLetters"
    assert dead_letters > alarm["Threshold"]
    assert [[d["Name"] for d in alarm["Dimensions"]]] == emf["_aws"]["CloudWatchMetrics"][0][
        "Dimensions"
    ]
    environment = template()["Globals"]["Function"]["Environment"]["Variables"]
    assert alarm["Namespace"] == environment["POWERTOOLS_METRICS_NAMESPACE"]
    assert alarm["Dimensions"][0]["Value"] == environment["POWERTOOLS_SERVICE_NAME"]

    # What the user sees on reconnecting to the abandoned turn.
    deploy_env("TaskReconnectFunction", read_mode="buffered")
    body = assert_sse(
        load_handler("task_reconnect").handler(
            signed_in(sample_event("task_reconnect")), context("task_reconnect")
        )
    )
    assert body.types == ["start", "error", "finish"]
    assert "could not be started in time" in body.chunks[1]["errorText"]
    assert body.done


@pytest.mark.slow
def test_sweeper_counts_each_dead_letter_once(deploy_env, context, powertools_output) -> None:
    deploy_env(
        "SweeperFunction",
        completions_max_deliveries=1,
        completions_claim_idle_ms=0,
        worker_lease_seconds=1,
    )
    leave_stuck_state()
    report = load_handler("sweeper").handler(sample_event("sweeper"), context("sweeper"))
    assert dead_letter_metric(powertools_output())[1] == report["dead_lettered"] == 1
