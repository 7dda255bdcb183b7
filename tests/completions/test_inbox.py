"""chat_core.completions.inbox: webhook completions are queued durably, exactly once per
(operation, webhook id); a repeat gets the first answer back."""

from __future__ import annotations

import asyncio
import json

import pytest
from chat_core import keys, tasks
from chat_core.completions.inbox import UnknownOperation, accept_webhook
from chat_core.redis_client import get_redis
from chat_core.sessions import get_session_store
from chat_core.worker.dispatch import set_dispatcher
from chat_core.worker.jobs import DrainCompletions

from tests.chunk_rules import text_of
from tests.completions.flow import (
    operation_stream,
    start_agent_creation,
    webhook,
)
from tests.fakes import Failing

pytestmark = [pytest.mark.both, pytest.mark.redis7, pytest.mark.valkey]


async def test_duplicate_and_repeated_webhooks_give_exactly_one_continuation(
    api, model, agent_generator
):
    op = await start_agent_creation(api, model)
    model.reply_text("Done, exactly once.", stream=True)
    payload = {"success": True, "result": {"agent_id": "a1"}}
    answers = await asyncio.gather(
        *[webhook(api, op["operation_id"], payload, webhook_id="msg_same") for _ in range(10)],
        *[webhook(api, op["operation_id"], payload) for _ in range(3)],
    )
    assert all(200 <= a.status_code < 300 for a in answers)
    chunks = await operation_stream(api, op["task_id"])
    await asyncio.sleep(0.3)  # let any duplicate processing finish, if there were one
    chunks = await operation_stream(api, op["task_id"])
    assert [c["type"] for c in chunks].count("tool-output-available") == 1
    assert text_of(chunks) == "Done, exactly once."
    assert (
        len([r for r in model.chat_requests if r.body.get("stream")]) == 2
    )  # turn + one continuation


async def awaiting_operation(session_user: str = "u1"):
    session = await get_session_store().create(session_user)
    operation = await tasks.create_operation(
        session_id=session.session_id,
        user_id=session_user,
        tool_call_id="c1",
        tool_name="create_agent",
        tool_input={"description": "Chase my unpaid invoices"},
    )
    assert await tasks.await_operation(operation)
    return operation


async def queued() -> list[dict]:
    return [json.loads(fields["data"]) for _, fields in await get_redis().xrange(keys.COMPLETIONS)]


async def test_a_delivery_is_queued_once_and_wakes_a_worker(dispatched):
    operation = await awaiting_operation()
    first = await accept_webhook(operation.operation_id, "msg_1", success=True, result={"a": 1})
    again = await accept_webhook(operation.operation_id, "msg_1", success=True, result={"a": 1})
    assert (first.status, first.queued) == (202, True)
    assert (again.status, again.queued, again.body) == (202, False, first.body)
    assert first.body == {
        "status": "accepted",
        "operation_id": operation.operation_id,
        "task_id": operation.task_id,
    }
    [entry] = await queued()
    assert entry["task_id"] == operation.task_id and entry["result"] == {"a": 1}
    assert entry["webhook_id"] == "msg_1"
    assert dispatched.jobs == [DrainCompletions()]


async def test_a_webhook_for_an_unknown_operation_is_refused(dispatched):
    with pytest.raises(UnknownOperation):
        await accept_webhook("op-nobody-started", "msg_1", success=True)
    assert await get_redis().exists(keys.COMPLETIONS) == 0 and dispatched.jobs == []


async def test_late_news_for_a_finished_task_is_acknowledged_and_queues_nothing(dispatched):
    operation = await awaiting_operation()
    assert await tasks.cancel(operation) == "cancelled"
    answer = await accept_webhook(operation.operation_id, "msg_late", success=True)
    assert (answer.status, answer.body["status"], answer.queued) == (200, "already_finished", False)
    assert await accept_webhook(operation.operation_id, "msg_late", success=True) == answer
    assert await queued() == [] and dispatched.jobs == []


async def test_a_lost_wake_up_leaves_the_completion_queued_for_the_sweeper(model, caplog):
    set_dispatcher(Failing())
    operation = await awaiting_operation()
    answer = await accept_webhook(operation.operation_id, "msg_1", success=False, error="no")
    assert (answer.status, answer.queued) == (202, True)  # the sender is told it arrived
    [entry] = await queued()
    assert entry["success"] is False and entry["error"] == "no"
    assert "the sweeper will pick the completion up" in caplog.text
