"""chat_core.api.webhook: the completion webhook over HTTP, every refusal and the one accepted
path."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from chat_core import keys, registry, tasks
from chat_core.api import webhook
from chat_core.redis_client import get_redis

from tests.api.helpers import serve
from tests.fakes import WEBHOOK_SECRET, signed_headers

pytestmark = pytest.mark.both


@pytest.fixture
async def api(model):
    """The webhook route alone, as the webhook function serves it."""
    async with serve(webhook.router) as client:
        yield client


@pytest.fixture
async def operation(api, settings_env):
    settings_env(webhook_secret=WEBHOOK_SECRET)
    return await new_operation()


async def new_operation(call: str = "call_w"):
    task = await tasks.create_operation(
        session_id="s-webhook",
        user_id="u1",
        tool_call_id=call,
        tool_name="create_agent",
        tool_input={},
    )
    await tasks.await_operation(task)
    return task


def url(operation_id: str) -> str:
    return f"/api/chat/operations/{operation_id}/complete"


async def post(api, operation_id: str, payload: dict | bytes, **sign) -> httpx.Response:
    """A signed delivery; a dict payload names the operation it is for, as a sender must."""
    if isinstance(payload, dict):
        payload = json.dumps({"operation_id": operation_id, **payload}).encode()
    body = payload
    return await api.post(url(operation_id), content=body, headers=signed_headers(body, **sign))


async def queued() -> int:
    return await get_redis().xlen(keys.COMPLETIONS)


async def test_an_accepted_completion_is_queued_durably_and_applied(api, operation, dispatched):
    response = await post(
        api, operation.operation_id, {"success": True, "result": {"agent_id": "a1"}}
    )
    assert response.status_code == 202
    assert response.json() == {
        "status": "accepted",
        "operation_id": operation.operation_id,
        "task_id": operation.task_id,
    }
    [(_, fields)] = await get_redis().xrange(keys.COMPLETIONS)
    entry = json.loads(fields["data"])
    assert (entry["operation_id"], entry["success"], entry["result"]) == (
        operation.operation_id,
        True,
        {"agent_id": "a1"},
    )
    # Applied before the answer: the continuation was handed to a worker.
    assert [job.kind for job in dispatched.jobs] == ["continue_operation"]
    assert (await registry.get_task(operation.task_id)).phase == "queued"


async def test_a_repeated_webhook_id_gets_the_first_answer_and_changes_nothing(
    api, operation, monkeypatch
):
    monkeypatch.setattr("chat_core.completions.inbox.wake_worker", lambda: asyncio.sleep(0))
    body = json.dumps({"operation_id": operation.operation_id, "success": True}).encode()
    headers = signed_headers(body, webhook_id="msg_repeat")
    answers = await asyncio.gather(
        *(api.post(url(operation.operation_id), content=body, headers=headers) for _ in range(10))
    )
    assert {a.status_code for a in answers} == {202}
    assert len({a.text for a in answers}) == 1
    assert await queued() == 1
    # Even once the operation has finished, a repeat gets the first answer back.
    await tasks.finish(operation, "cancelled")
    again = await api.post(url(operation.operation_id), content=body, headers=headers)
    assert (again.status_code, again.text) == (202, answers[0].text)
    # And once the operation itself has expired, while its dedupe record lives on.
    await get_redis().delete(keys.operation(operation.operation_id))
    again = await api.post(url(operation.operation_id), content=body, headers=headers)
    assert (again.status_code, again.text) == (202, answers[0].text)
    assert await queued() == 1


async def test_a_signed_delivery_cannot_be_re_posted_to_another_operation(
    api, operation, monkeypatch
):
    monkeypatch.setattr("chat_core.completions.inbox.wake_worker", lambda: asyncio.sleep(0))
    victim = await new_operation("call_victim")
    body = json.dumps({"operation_id": operation.operation_id, "success": True}).encode()
    headers = signed_headers(body, webhook_id="msg_for_x")
    replayed = await api.post(url(victim.operation_id), content=body, headers=headers)
    assert replayed.status_code == 422
    assert replayed.json()["detail"]["code"] == "OPERATION_MISMATCH"
    assert await queued() == 0
    # The genuine delivery still completes its own operation.
    genuine = await api.post(url(operation.operation_id), content=body, headers=headers)
    assert genuine.status_code == 202 and genuine.json()["task_id"] == operation.task_id
    assert (
        json.loads((await get_redis().xrange(keys.COMPLETIONS))[0][1]["data"])["operation_id"]
        == operation.operation_id
    )


async def test_one_webhook_id_is_answered_per_operation(api, operation, monkeypatch):
    monkeypatch.setattr("chat_core.completions.inbox.wake_worker", lambda: asyncio.sleep(0))
    other = await new_operation("call_other")
    first = await post(api, operation.operation_id, {"success": True}, webhook_id="msg_shared")
    second = await post(api, other.operation_id, {"success": True}, webhook_id="msg_shared")
    assert (first.json()["task_id"], second.json()["task_id"]) == (operation.task_id, other.task_id)
    assert await queued() == 2


async def test_no_secret_configured_answers_503(api, operation, settings_env):
    settings_env(webhook_secret="")
    response = await post(api, operation.operation_id, {"success": True})
    assert response.status_code == 503
    assert response.json()["detail"]["code"] == "WEBHOOK_NOT_CONFIGURED"


@pytest.mark.parametrize(
    ("case", "headers"),
    [
        ("missing", lambda body: {"content-type": "application/json"}),
        (
            "another secret",
            lambda body: signed_headers(
                body, secret="whsec_" + "b3RoZXItc2VjcmV0LW90aGVyLXNlY3JldA=="
            ),
        ),
        (
            "stale",
            lambda body: signed_headers(body, timestamp=datetime.now(UTC) - timedelta(minutes=6)),
        ),
        (
            "from the future",
            lambda body: signed_headers(body, timestamp=datetime.now(UTC) + timedelta(minutes=6)),
        ),
        ("tampered", lambda body: signed_headers(b'{"success": false}')),
    ],
)
async def test_a_missing_or_wrong_signature_answers_401(api, operation, case, headers):
    body = json.dumps({"success": True}).encode()
    response = await api.post(url(operation.operation_id), content=body, headers=headers(body))
    assert response.status_code == 401, case
    assert response.json()["detail"]["code"] == "INVALID_SIGNATURE"
    assert await queued() == 0


async def test_an_unknown_operation_answers_404(api, operation):
    response = await post(api, "no-such-operation", {"success": True})
    assert response.status_code == 404
    assert response.json()["detail"]["code"] == "OPERATION_NOT_FOUND"


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b'{"result": 1}',
        {"success": "maybe"},
        {"success": "yes"},
        {"success": 1},
        b'{"success": true}',  # names no operation
        b"[]",
    ],
)
async def test_a_body_that_is_not_a_completion_answers_422(api, operation, payload):
    response = await post(api, operation.operation_id, payload)
    assert response.status_code == 422
    assert response.json()["detail"]["code"] == "INVALID_COMPLETION"
    assert await queued() == 0


async def test_a_body_over_the_limit_answers_413(api, operation, settings_env):
    settings_env(max_webhook_body_bytes=1000)
    response = await post(api, operation.operation_id, {"success": True, "result": "x" * 2000})
    assert response.status_code == 413
    assert response.json()["detail"]["code"] == "BODY_TOO_LARGE"
    assert await queued() == 0


async def test_news_about_a_finished_operation_is_acknowledged_without_effect(api, operation):
    await tasks.finish(operation, "cancelled")
    response = await post(api, operation.operation_id, {"success": True})
    assert response.status_code == 200 and response.json()["status"] == "already_finished"
    assert await queued() == 0
